"""The DeepCTR comparison's summary and report: ratios per pair, the verdict
against the target, and the markdown section of ``docs/benchmarks.md``.

Pure functions of the workers' results (standard library only).
"""

import pathlib
import statistics
from collections.abc import Sequence

from deepctr_settings import EQUAL_EPOCHS
from deepctr_settings import EQUAL_STEPS_PER_CALL
from deepctr_settings import MODELS
from deepctr_settings import SIDES
from deepctr_settings import TARGET_RATIO
from doc_sections import update_doc_section
from machine_info import cpu_description


def ratio_summary(mtrec_values: Sequence[float], deepctr_values: Sequence[float]):
    """mtrec ÷ DeepCTR per pair: ``{"min", "median", "max", "per_pair"}``.

    Args:
      mtrec_values, deepctr_values: one number per pair, in pair order (higher
        is better, e.g. examples/s).
    """
    if len(mtrec_values) != len(deepctr_values) or not mtrec_values:
        raise ValueError(
            "`mtrec_values` and `deepctr_values` must be non-empty and of the "
            f"same length (one per pair). Received: {len(mtrec_values)} and "
            f"{len(deepctr_values)} values"
        )
    ratios = [m / d for m, d in zip(mtrec_values, deepctr_values, strict=True)]
    return {
        "min": round(min(ratios), 3),
        "median": round(statistics.median(ratios), 3),
        "max": round(max(ratios), 3),
        "per_pair": [round(r, 3) for r in ratios],
    }


def _import_memory(runs: Sequence[dict]) -> dict:
    """Medians of the memory after the imports and of the peak above it.

    Empty for runs recorded before the worker measured it.
    """
    if not all("import_rss_mb" in r for r in runs):
        return {}
    return {
        "import_rss_mb": _median([r["import_rss_mb"] for r in runs], 1),
        "rss_above_import_mb": _median([r["rss_above_import_mb"] for r in runs], 1),
        "optional_modules_imported": runs[0]["optional_modules_imported"],
    }


def _median(values: Sequence[float], digits: int = 3) -> float:
    return round(statistics.median(values), digits)


def summarise(runs: Sequence[dict], models: Sequence[str], cores: Sequence[int]):
    """Per core count and model: ratios over pairs and each side's medians.

    Args:
      runs: worker results with ``cores``, ``model``, ``side``, ``pair``,
        ``train_examples_per_second``, ``inference_examples_per_second``,
        ``peak_rss_mb``, ``build_seconds``, ``first_epoch_seconds``,
        ``steady_epoch_seconds``, ``import_seconds`` and ``test_auc``.

    Returns:
      ``{str(cores): {model: summary}}``; a summary holds ``pairs``,
      ``train_ratio``, ``inference_ratio`` (:func:`ratio_summary`),
      ``peak_rss_ratio`` and per side (``deepctr``, ``mtrec``) the medians,
      the test AUC per task (median, min, max) and the parameter count.
    """
    out: dict[str, dict] = {}
    for n in cores:
        out[str(n)] = {}
        for model in models:
            by_side = {
                side: sorted(
                    (
                        r
                        for r in runs
                        if r["cores"] == n and r["model"] == model and r["side"] == side
                    ),
                    key=lambda r: r["pair"],
                )
                for side in SIDES
            }
            pairs = sorted(
                {r["pair"] for r in by_side["deepctr"]}
                & {r["pair"] for r in by_side["mtrec"]}
            )
            if not pairs:
                continue
            paired = {
                side: [r for r in by_side[side] if r["pair"] in pairs] for side in SIDES
            }

            def values(side: str, key: str) -> list[float]:
                return [r[key] for r in paired[side]]  # noqa: B023

            entry = {
                "pairs": len(pairs),
                "train_ratio": ratio_summary(
                    values("mtrec", "train_examples_per_second"),
                    values("deepctr", "train_examples_per_second"),
                ),
                "inference_ratio": ratio_summary(
                    values("mtrec", "inference_examples_per_second"),
                    values("deepctr", "inference_examples_per_second"),
                ),
            }
            for kind in ("train", "inference"):
                key = f"equal_{kind}_examples_per_second"
                if all(key in r for r in runs):
                    entry[f"equal_{kind}_ratio"] = ratio_summary(
                        values("mtrec", key), values("deepctr", key)
                    )
            if all("xla_inference_examples_per_second" in r for r in runs):
                xla = values("mtrec", "xla_inference_examples_per_second")
                entry["xla_inference_ratio"] = ratio_summary(
                    xla, values("deepctr", "xla_inference_examples_per_second")
                )
                entry["xla_to_default_inference_ratio"] = ratio_summary(
                    xla, values("deepctr", "inference_examples_per_second")
                )
            # Lower is better for memory: mtrec ÷ DeepCTR below 1 is less memory.
            entry["peak_rss_ratio"] = ratio_summary(
                values("mtrec", "peak_rss_mb"), values("deepctr", "peak_rss_mb")
            )
            if all("import_rss_mb" in r for r in runs):
                entry["rss_above_import_ratio"] = ratio_summary(
                    values("mtrec", "rss_above_import_mb"),
                    values("deepctr", "rss_above_import_mb"),
                )
            floor = _floor_summary(paired)
            if floor:
                entry["matmul_floor"] = floor
            for side in SIDES:
                tasks = list(paired[side][0]["test_auc"])
                entry[side] = {
                    "train_examples_per_second": _median(
                        values(side, "train_examples_per_second"), 0
                    ),
                    "inference_examples_per_second": _median(
                        values(side, "inference_examples_per_second"), 0
                    ),
                    "fit_steps_per_call": paired[side][0].get("fit_steps_per_call", 1),
                    "predict_steps_per_call": paired[side][0].get(
                        "predict_steps_per_call", 1
                    ),
                    "peak_rss_mb": _median(values(side, "peak_rss_mb"), 1),
                    **_import_memory(paired[side]),
                    "import_seconds": _median(values(side, "import_seconds")),
                    "build_seconds": _median(values(side, "build_seconds")),
                    "first_epoch_seconds": _median(values(side, "first_epoch_seconds")),
                    "first_epoch_overhead_seconds": _median(
                        [
                            r["first_epoch_seconds"] - r["steady_epoch_seconds"]
                            for r in paired[side]
                        ]
                    ),
                    "test_auc": {
                        t: {
                            "median": _median(
                                [r["test_auc"][t] for r in paired[side]], 4
                            ),
                            "min": round(
                                min(r["test_auc"][t] for r in paired[side]), 4
                            ),
                            "max": round(
                                max(r["test_auc"][t] for r in paired[side]), 4
                            ),
                        }
                        for t in tasks
                    },
                    "parameters": paired[side][0]["parameters"],
                    **_xla_medians(paired[side]),
                }
            out[str(n)][model] = entry
    return out


def _xla_medians(runs: Sequence[dict]) -> dict:
    """One side's medians of the predict passes through XLA and of the
    default passes' first (tracing) pass; empty for runs recorded before the
    worker measured XLA."""
    if not all("xla_inference_examples_per_second" in r for r in runs):
        return {}
    return {
        "xla_inference_examples_per_second": _median(
            [r["xla_inference_examples_per_second"] for r in runs], 0
        ),
        "first_predict_seconds": _median([r["first_predict_seconds"] for r in runs]),
        "xla_first_predict_seconds": _median(
            [r["xla_first_predict_seconds"] for r in runs]
        ),
    }


def _floor_summary(paired: dict) -> dict:
    """The matmul floor over the pairs (``matmul_floor.py``, measured by
    mtrec's worker): its medians, the ceiling it puts on the ratio to
    DeepCTR (floor ÷ DeepCTR per pair) and mtrec's share of it (mtrec ÷
    floor). Empty for runs recorded before the worker measured it."""
    floors = [r.get("matmul_floor") for r in paired["mtrec"]]
    if not floors or not all(floors):
        return {}
    out = {
        "gemm": floors[0]["gemm"],
        "flops_per_example": floors[0]["flops_per_example"],
        "gemm_gflops": _median([f["gemm_gflops"] for f in floors], 2),
    }
    for kind in ("train", "inference"):
        key = f"{kind}_examples_per_second"
        bound = [f[key] for f in floors]
        out[key] = _median(bound, 0)
        out[f"{kind}_ceiling_ratio"] = ratio_summary(
            bound, [r[key] for r in paired["deepctr"]]
        )
        out[f"{kind}_share"] = ratio_summary([r[key] for r in paired["mtrec"]], bound)
    return out


def verdict(summary: dict) -> dict:
    """Whether the one-core target (mtrec ÷ DeepCTR >= 2.0 median) is met.

    Returns:
      ``{"met": bool | None, "per_model": {model: {"train": bool,
      "inference": bool}}}`` for the models measured on one core; ``met`` is
      ``None`` unless all of :data:`MODELS` were.
    """
    one = summary.get("1")
    if not one:
        return {"met": None, "per_model": {}}
    per_model = {
        model: {
            "train": entry["train_ratio"]["median"] >= TARGET_RATIO,
            "inference": entry["inference_ratio"]["median"] >= TARGET_RATIO,
        }
        for model, entry in one.items()
    }
    met = all(all(v.values()) for v in per_model.values())
    return {"met": met if set(one) == set(MODELS) else None, "per_model": per_model}


def _entries_with(summary: dict, key: str) -> list[tuple[str, str, dict]]:
    """``(cores, model, entry)`` of the summary entries that hold ``key``."""
    return [
        (cores, model, e)
        for cores, models in summary.items()
        for model, e in models.items()
        if key in e
    ]


def _equal_settings_lines(summary: dict) -> list[str]:
    """The ratios with both libraries at the same batches per graph call."""
    rows = _entries_with(summary, "equal_inference_ratio")
    if not rows:
        return []

    def steps(side: str, key: str) -> str:
        return "/".join(str(v) for v in sorted({e[side][key] for _, _, e in rows}))

    def ratio(e: dict, key: str) -> str:
        return ratio_text(e[key]) if key in e else "-"

    lines = [
        "",
        "Each library's defaults (the table above: DeepCTR "
        f"{steps('deepctr', 'fit_steps_per_call')} batch(es) per graph call "
        f"in `fit` and {steps('deepctr', 'predict_steps_per_call')} in "
        f"`predict`, mtrec {steps('mtrec', 'fit_steps_per_call')} and "
        f"{steps('mtrec', 'predict_steps_per_call')}) against both at "
        f"{EQUAL_STEPS_PER_CALL} batches per call (Keras' `steps_per_execution`, "
        "compiled on each trained model after the default passes; "
        f"{EQUAL_EPOCHS} more epochs timed after one that traces, both with "
        "`tf.keras.optimizers.Adam`, where mtrec's default is its fused Adam): "
        "what is mtrec's default and what is its graph.",
        "",
        "| cores | model | train ratio, defaults | train ratio, both at "
        f"{EQUAL_STEPS_PER_CALL} | inference ratio, defaults | inference "
        f"ratio, both at {EQUAL_STEPS_PER_CALL} |",
        "|---|---|---|---|---|---|",
    ]
    for cores, model, e in rows:
        lines.append(
            f"| {cores} | {model} | {ratio_text(e['train_ratio'])} | "
            f"{ratio(e, 'equal_train_ratio')} | {ratio_text(e['inference_ratio'])} | "
            f"{ratio(e, 'equal_inference_ratio')} |"
        )
    return lines


def _xla_lines(summary: dict) -> list[str]:
    """Prediction through XLA on both sides, against the defaults."""
    rows = _entries_with(summary, "xla_inference_ratio")
    if not rows:
        return []
    lines = [
        "",
        "Prediction through XLA, each library's public way to it, timed after "
        "the runs above (and after the peak RSS was read): DeepCTR's model "
        "recompiled with Keras' `jit_compile=True` (each predict step compiled, "
        "once per batch shape), mtrec's built again with "
        "`predict_jit_compile=True` and the trained weights (its input checks "
        "run before the compiled model; each batch padded to a power of two, "
        "so one shape here). Ratios per pair: both through XLA, and mtrec "
        "through XLA ÷ DeepCTR's default predict. First pass: the first "
        "predict pass over the training batches (tracing, and XLA compiling).",
        "",
        "| cores | model | inference ratio, defaults | both through XLA | "
        "mtrec XLA ÷ DeepCTR default | inference ex/s through XLA DeepCTR / "
        "mtrec | first pass s, default / XLA: DeepCTR | mtrec |",
        "|---|---|---|---|---|---:|---|---|",
    ]
    for cores, model, e in rows:
        first = [
            f"{e[side]['first_predict_seconds']:.2f} / "
            f"{e[side]['xla_first_predict_seconds']:.2f}"
            for side in SIDES
        ]
        cells = [
            ratio_text(e["inference_ratio"]),
            ratio_text(e["xla_inference_ratio"]),
            ratio_text(e["xla_to_default_inference_ratio"]),
            _sides(e, "xla_inference_examples_per_second", ",.0f"),
            *first,
        ]
        lines.append(f"| {cores} | {model} | " + " | ".join(cells) + " |")
    return lines


def _floor_lines(summary: dict) -> list[str]:
    """The matmul floor: the most any library could reach on this core."""
    rows = _entries_with(summary, "matmul_floor")
    if not rows:
        return []
    lines = [
        "",
        "The matmul floor (`benchmarks/matmul_floor.py`, measured in each "
        "mtrec worker after its timings and after its peak RSS was read): "
        "the model's multiply-adds (its "
        "kernels outside the embeddings, each applied once per example) run "
        "at the speed this core gives the model's largest matmul, timed as "
        "one GEMM of 64 batches' rows; training counts three matmuls per "
        "layer (forward, `dX`, `dW`). Every other op is left out, so this is "
        "an upper bound on any library's examples/s: the **ceiling** is that "
        "bound ÷ DeepCTR (the largest ratio the target could reach), the "
        "**share** mtrec ÷ the bound.",
        "",
        "| cores | model | largest matmul | GFLOP/s | FLOPs per example | "
        "train: ceiling, mtrec's share | inference: ceiling, mtrec's share |",
        "|---|---|---|---:|---:|---|---|",
    ]
    for cores, model, e in rows:
        f = e["matmul_floor"]
        shape = "({}, {}) x ({}, {})".format(
            f["gemm"][0], *f["gemm"][1:2], *f["gemm"][1:]
        )
        lines.append(
            f"| {cores} | {model} | {shape} | {f['gemm_gflops']:.1f} | "
            f"{f['flops_per_example']:,} | "
            f"{ratio_text(f['train_ceiling_ratio'])}, "
            f"{ratio_text(f['train_share'])} | "
            f"{ratio_text(f['inference_ceiling_ratio'])}, "
            f"{ratio_text(f['inference_share'])} |"
        )
    return lines


def _memory_lines(summary: dict) -> list[str]:
    """Peak RSS split into the imports and what the run adds above them."""
    rows = _entries_with(summary, "rss_above_import_ratio")
    if not rows:
        return []
    _, _, first = rows[0]
    modules = {
        side: ", ".join(first[side]["optional_modules_imported"]) or "none"
        for side in SIDES
    }
    lines = [
        "",
        "Peak RSS (`VmHWM`) split at the end of the imports: what TensorFlow, "
        "tf-keras and the library cost to import in each side's environment, "
        "and what the data, the model, its graphs and training add above "
        "that. Each side reads its peak after the runs both sides make, "
        "before what one side alone measures (mtrec's matmul floor, the XLA "
        "passes). TensorFlow and tf-keras import pandas, pyarrow, scipy and PIL "
        "when they are installed (`tf_keras/src/engine/data_adapter.py`, "
        "`image_utils.py`, `tensorflow/python/keras/engine/"
        f"training_arrays_v1.py`): imported here by DeepCTR's side: "
        f"{modules['deepctr']}; by mtrec's: {modules['mtrec']} (mtrec needs "
        "pandas and pyarrow for its file I/O).",
        "",
        "| cores | model | MB after imports DeepCTR / mtrec | MB above the "
        "imports DeepCTR / mtrec | ratio above the imports |",
        "|---|---|---|---|---|",
    ]
    for cores, model, e in rows:
        lines.append(
            f"| {cores} | {model} | {_sides(e, 'import_rss_mb', '.0f')} | "
            f"{_sides(e, 'rss_above_import_mb', '.0f')} | "
            f"{ratio_text(e['rss_above_import_ratio'])} |"
        )
    return lines


def _sides(entry: dict, key: str, spec: str) -> str:
    """``"DeepCTR / mtrec"``: both sides' medians of ``key``, formatted."""
    return " / ".join(format(entry[side][key], spec) for side in SIDES)


def ratio_text(r: dict) -> str:
    """A :func:`ratio_summary` as ``"median (min–max)"``, two decimals."""
    return f"{r['median']:.2f} ({r['min']:.2f}–{r['max']:.2f})"


def _auc(entry: dict) -> str:
    return ", ".join(f"{t} {v['median']:.4f}" for t, v in entry["test_auc"].items())


def _first_epoch(side: dict) -> str:
    return (
        f"{side['first_epoch_seconds']:.2f} "
        f"({side['first_epoch_overhead_seconds']:.2f})"
    )


def _measured(checkout: dict) -> str:
    """Which mtrec the workers imported, for the docs."""
    commit = str(checkout.get("commit", "unknown"))[:10]
    if checkout.get("ref") == "worktree":
        changed = len(checkout.get("uncommitted_in_mtrec", []))
        return f"the working tree of commit `{commit}` ({changed} files changed)"
    return f"commit `{commit}` (its committed package)"


def markdown(report: dict) -> str:
    """The "deepctr-comparison" section of docs/benchmarks.md."""
    versions = report["versions"]
    target = report["verdict"]
    if target["met"] is None:
        measured = ", ".join(target["per_model"]) or "none"
        met = f"not judged (models measured on one core: {measured})"
    elif target["met"]:
        met = "**met**"
    else:
        missed = [
            f"{model} {kind}"
            for model, checks in target["per_model"].items()
            for kind, ok in checks.items()
            if not ok
        ]
        met = "**not met** (below 2.0: " + ", ".join(missed) + ")"
    precision = report["mtrec_options"].get("precision", "float32")
    lines = [
        "## mtrec vs DeepCTR 0.9.4"
        + ("" if precision == "float32" else f" (mtrec in {precision})"),
        "",
        *(
            []
            if report["complete"]
            else [
                f"**Partial run**: {report['runs_done']} of "
                f"{report['runs_planned']} worker runs finished; only complete "
                "pairs are summarised.",
                "",
            ]
        ),
        "`python benchmarks/deepctr_comparison.py` "
        f"({'--quick, ' if report['quick'] else ''}"
        f"interleaved pairs per model and core count: {report['repeats']}; "
        f"epochs: {report['epochs']}; timed predict passes: "
        f"{report['predict_passes']}; wall time "
        f"{report['wall_seconds'] / 60:.1f} min; load average "
        f"{report['machine']['load_average_at_start'][0]} at start, "
        f"{report['machine']['load_average_at_end'][0]} at end, on "
        f"{report['machine']['cpu_count']} cores; "
        f"{cpu_description(report['machine'])}). TensorFlow "
        f"{versions['deepctr']['tensorflow']} + tf-keras "
        f"{versions['deepctr']['tf_keras']} on both sides; DeepCTR "
        f"{versions['deepctr']['library']} in its own virtualenv, mtrec "
        f"{versions['mtrec']['library']} at "
        f"{_measured(report.get('mtrec_checkout', {}))}.",
        "",
        f"Data: {report['data']['description']} Models: {report['models_text']} "
        "Each run is a fresh process pinned to its cores (intra- and inter-op "
        "threads = cores); DeepCTR and mtrec alternate which runs first. "
        "Ratios are mtrec ÷ DeepCTR per pair, median (min–max); train ex/s "
        "over epochs 2.. of `model.fit` on cached in-memory batches, inference "
        "ex/s of `model.predict` on the same batches; tf.data autotuning off "
        "on both sides (its iterator teardown added 0 or ~0.16 s per pass at "
        "random, as long as a predict pass).",
        "",
        f"**Target** (issue 11: mtrec ÷ DeepCTR ≥ {TARGET_RATIO} median for "
        f"training and inference on MMoE, PLE and ESMM, one core): {met}.",
        "",
        "| cores | model | train ratio | inference ratio | train ex/s "
        "DeepCTR / mtrec | inference ex/s DeepCTR / mtrec | peak RSS MB "
        "DeepCTR / mtrec | build s | first epoch s (overhead) | params | "
        "test AUC DeepCTR | test AUC mtrec |",
        "|---|---|---|---|---:|---:|---:|---|---|---|---|---|",
    ]
    for cores, models in report["summary"].items():
        for model, e in models.items():
            d, m = e["deepctr"], e["mtrec"]
            lines.append(
                f"| {cores} | {model} | {ratio_text(e['train_ratio'])} | "
                f"{ratio_text(e['inference_ratio'])} | "
                f"{d['train_examples_per_second']:,.0f} / "
                f"{m['train_examples_per_second']:,.0f} | "
                f"{d['inference_examples_per_second']:,.0f} / "
                f"{m['inference_examples_per_second']:,.0f} | "
                f"{d['peak_rss_mb']:.0f} / {m['peak_rss_mb']:.0f} | "
                f"{d['build_seconds']:.2f} / {m['build_seconds']:.2f} | "
                f"{_first_epoch(d)} / {_first_epoch(m)} | "
                f"{d['parameters']:,} / {m['parameters']:,} | {_auc(d)} | {_auc(m)} |"
            )
    options = report["mtrec_options"]
    lines += _equal_settings_lines(report["summary"])
    lines += _xla_lines(report["summary"])
    lines += _floor_lines(report["summary"])
    lines += _memory_lines(report["summary"])
    lines += [
        "",
        "Columns with two numbers are DeepCTR / mtrec (medians over the pairs). "
        "First-epoch overhead = first epoch minus a steady epoch (weights built "
        "on first use and graph tracing). Test AUC after the timed epochs, "
        "median over the runs.",
        "",
        "mtrec options used: "
        + ", ".join(
            f"`{k}={v}`" if v is not None else f"`{k}` not offered by this mtrec"
            for k, v in options.items()
        )
        + ". Training metrics computed per step: DeepCTR "
        + ", ".join(f"`{n}`" for n in report["training_metrics"]["deepctr"])
        + "; mtrec "
        + ", ".join(f"`{n}`" for n in report["training_metrics"]["mtrec"])
        + ".",
        "",
        "The machine was shared with other engineers' jobs during the run "
        "(load average above), so a pinned worker got only part of its core "
        "and absolute examples/s move with their load; the pairs are "
        "interleaved so that the load falls on both libraries alike, and the "
        "ratios with their spread over pairs are the comparable part. A wide "
        "min–max range means the load changed within a pair: read such a "
        "median as noise, not as a result.",
        "",
    ]
    return "\n".join(lines)


def write_doc_section(path: pathlib.Path, name: str, text: str) -> None:
    """Replaces section ``name`` of ``path`` (``doc_sections.update_doc_section``)."""
    update_doc_section(path, name, text)
