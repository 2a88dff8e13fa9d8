"""Side by side with DeepCTR 0.9.4: train and inference examples/s of MMoE, PLE, ESMM.

The same encoded census-income arrays, the same model sizes and the same
``tf.data`` pipeline feed both libraries; each measurement runs in a fresh
worker process pinned to the cores of its variant (1 core, 2 cores), and the
two libraries alternate in interleaved pairs so that the load of the shared
machine falls on both alike. The result is the ratio mtrec ÷ DeepCTR per pair,
summarised as min/median/max over the pairs.

Data: ``census-income.test.gz`` split once by
``mtrec.data.prepare_census_income`` (group 1, split seed 0, 50/25/25:
the split of ``census_income.py``); the 49,881 training rows are permuted once
(seed 0) and the 24,941 test rows score the models. Inputs: the 38 columns of
``mtrec.data.census_features`` (31 categorical, 7 dense; the label sources
education and marital status, the income and the instance weight removed; the
issue's probe used 39 census-like features). Categorical columns are encoded
once to integer ids ``1..V-1`` by frequency on the train split (0: unseen in
train), a table of ``V`` rows; dense columns get the signed ``log1p`` of
``census_features`` on the heavy-tailed four, then a z-score with train
statistics. Both libraries receive these arrays, so neither pays for string
lookups; what each does with the ids is recorded per run
(``categorical_path``: DeepCTR gathers the id directly; mtrec declares
``CategoricalFeature(dtype="int64", num_ids=V)``, ids embedded without a
lookup, when its ``CategoricalFeature`` has that field, else an
``IntegerLookup`` over the vocabulary ``1..V-1``, which maps every id to
itself).

Tasks: MMoE and PLE learn income (``income_50k``) and never married. ESMM
needs a click and a conversion implying it: click = ever married
(``1 - never_married``, 56.7% of rows), conversion = income over 50k and ever
married (so conversion <= click); ESMM learns CTR on click and CTCVR on
conversion over all rows.

Models (both libraries): embeddings of width 8; MMoE 8 experts of [32], towers
[16]; PLE 2 levels of 2 shared + 2 per-task experts of [32], towers [16]; ESMM
towers [64, 16] directly on the embeddings (DeepCTR's ESMM has no bottom;
mtrec's gets ``SharedBottom(units=[])``, the identity). Adam lr 1e-3, batch
1024, binary cross-entropy. DeepCTR: ``deepctr.models.MMOE``/``PLE``/``ESMM``
on ``SparseFeat``/``DenseFeat``, compiled as its examples compile them
(``metrics=["binary_crossentropy"]``), with ``l2_reg_embedding=0`` (its default
1e-5 adds a penalty mtrec's default does not have; dropping it makes DeepCTR
faster, not slower). mtrec: ``FeatureEmbedding``, ``MMoE``/``PLE``/
``SharedBottom``, ``MultiTaskRanker``/``ESMM``, with the fastest documented
options its API offers (detected with ``inspect``, recorded as
``mtrec_options``: ``training_metrics=False`` when ``MultiTaskRanker`` accepts
it, ``num_ids`` when ``CategoricalFeature`` has it). The mtrec measured is the
committed package of ``--mtrec-ref`` (default ``HEAD``, extracted with ``git
archive`` and put first on the workers' ``PYTHONPATH``), so that edits under
way in the shared working tree are not measured; ``--mtrec-ref worktree``
measures the working tree.

Timed, per worker: ``import_seconds`` (TensorFlow and the library),
``build_seconds`` (model construction and ``compile``), ``first_epoch_seconds``
(weights built on first use, tracing, one pass), ``train_examples_per_second``
(rows over the wall time of epochs 2.. of ``model.fit``, from Keras'
``on_epoch_begin`` to ``on_epoch_end``), ``inference_examples_per_second``
(``model.predict`` on the same cached batches, passes after a first one that
traces; each library's default batches per graph call: DeepCTR one, mtrec
``predict_steps_per_execution``; in ``fit`` likewise DeepCTR one, mtrec
``fit_steps_per_execution`` where no callback has batch hooks),
``equal_inference_examples_per_second`` and
``equal_train_examples_per_second`` (the same passes, and two more epochs
after one that traces, with both models compiled again with
``steps_per_execution=16``: the ratios at equal settings; these epochs come
after the test predictions, so the AUC is unchanged),
``peak_rss_mb`` (``VmHWM``), split into ``import_rss_mb`` (at the end of the
imports, with ``optional_modules_imported``: TensorFlow and tf-keras import
pandas, pyarrow, scipy and PIL when installed) and ``rss_above_import_mb``
(the data, model, graphs and training). The training batches are
``from_tensor_slices(...).batch(1024).cache().prefetch(2)`` on both sides,
with tf.data's autotuning off, materialised before timing. Autotuning has
nothing to tune in that pipeline, and it added a fixed cost to every pass:
destroying an iterator waits for the autotuner's thread, 0 or about 0.16 s
at random (measured on this machine, both libraries alike). That is as long
as a whole 49-batch predict pass, so with it on the inference ratios read
about 1.0 or about 2.1 depending on which passes drew the wait (results
committed before this note had it on). After the timed epochs the test AUC of each
task is computed (the orchestrator scores the saved predictions with
``mtrec.metrics.ranking.auc``), so that nobody wins by training a broken model.

Two interpreters: DeepCTR runs in its own virtualenv,
``benchmarks/.venv-deepctr`` (git-ignored), created on first use with
``python3.11 -m venv`` and ``pip install deepctr==0.9.4 tensorflow==2.21.*
tf-keras==2.21.*``; mtrec in the interpreter running this script. This file is
therefore both the orchestrator and the worker, and imports only the standard
library and numpy at module level (TensorFlow, mtrec or DeepCTR are imported
inside the worker, after pinning the cores). DeepCTR 0.9.4 runs on TF 2.21 with
tf-keras (``TF_USE_LEGACY_KERAS=1``) unchanged; one runtime shim: its package
``__init__`` starts a thread that asks PyPI for newer versions and prints to
stdout when that fails, so the worker makes ``requests.get`` raise during the
import, waits for that thread, and sends its output to stderr (no network
traffic, stdout stays JSON).

``--mtrec-precision mixed_bfloat16`` builds mtrec's model under
``mtrec.precision_scope`` (float32 weights, bfloat16 products; DeepCTR has no
such option and stays float32); the precision is recorded in
``mtrec_options``.

Writes ``benchmarks/results/deepctr_comparison.json`` and the
"deepctr-comparison" section of ``docs/benchmarks.md`` (with another
precision: ``deepctr_comparison_<precision>.json`` and the section
"deepctr-comparison-<precision>").

Usage (from the repository root, with mtrec's ``.venv``)::

    python benchmarks/deepctr_comparison.py [--repeats 3] [--cores 1,2]
        [--models mmoe,ple,esmm] [--epochs 10] [--quick]
"""

import argparse
import contextlib
import functools
import io
import json
import logging
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Sequence

import numpy as np
from doc_sections import update_doc_section

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "deepctr_comparison.json"
DOC = REPO / "docs" / "benchmarks.md"
DOC_SECTION = "deepctr-comparison"
#: Batches prefetched by both sides' pipelines (tf.data autotuning is off).
PREFETCH = 2
#: mtrec's ``--mtrec-precision`` choices (``mtrec.precision.PRECISIONS``; not
#: imported: this module imports neither TensorFlow nor mtrec at load time).
PRECISIONS = ("float32", "mixed_bfloat16")
CENSUS_FILE = (
    REPO.parent / "shared" / "data" / "census-income" / "census-income.test.gz"
)
SPLIT_DIR = REPO / "data" / "census-income" / "group1"
SPLIT_SEED = 0
#: Seed of the one permutation of the training rows and of both models.
SEED = 0

DEEPCTR_VENV = REPO / "benchmarks" / ".venv-deepctr"
DEEPCTR_REQUIREMENTS = ("deepctr==0.9.4", "tensorflow==2.21.*", "tf-keras==2.21.*")
#: Written in the virtualenv once the requirements installed and imported.
VENV_MARKER = ".deepctr-comparison-installed"

SIDES = ("deepctr", "mtrec")
#: Packages TensorFlow or tf-keras import when installed (reported per side).
OPTIONAL_MODULES = ("pandas", "pyarrow", "scipy", "PIL")
MODELS = ("mmoe", "ple", "esmm")
EMBEDDING_DIM = 8
BATCH_SIZE = 1024
#: Batches per graph call of the equal-settings predict passes (mtrec's
#: default ``predict_steps_per_execution``; Keras' ``steps_per_execution``
#: set on DeepCTR's model the same way).
EQUAL_STEPS_PER_CALL = 16
#: Timed epochs of the equal-settings training (after one that traces).
EQUAL_EPOCHS = 2
LEARNING_RATE = 1e-3
#: Model sizes, the same for both libraries.
MODEL_SIZES = {
    "mmoe": {"num_experts": 8, "expert_units": [32], "tower_units": [16]},
    "ple": {
        "num_levels": 2,
        "num_shared_experts": 2,
        "num_task_experts": 2,
        "expert_units": [32],
        "tower_units": [16],
    },
    "esmm": {"tower_units": [64, 16]},
}
#: ``(task name, label column)`` per model, in output order.
MODEL_TASKS = {
    "mmoe": (("income", "income_50k"), ("marital", "never_married")),
    "ple": (("income", "income_50k"), ("marital", "never_married")),
    "esmm": (("ctr", "click"), ("ctcvr", "conversion")),
}
LABELS = ("income_50k", "never_married", "click", "conversion")
#: The target of issue 11 (mtrec ÷ DeepCTR, median, one core).
TARGET_RATIO = 2.0

logger = logging.getLogger("deepctr_comparison")


# --------------------------------------------------------------------------
# Pure parts: schedule, ratios, report


def parse_cores(text: str, available: int) -> list[int]:
    """``"1,2"`` -> ``[1, 2]``: core counts of the variants, each run pinned.

    Raises:
      ValueError: an entry is not an integer in ``1..available``, or repeats.
    """
    counts = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or not 1 <= int(part) <= available:
            raise ValueError(
                f"`--cores` must be a comma-separated list of core counts in "
                f"1..{available} (cores usable here). Received: `--cores={text}`"
            )
        if int(part) in counts:
            raise ValueError(
                f"`--cores` lists {part} twice. Received: `--cores={text}`"
            )
        counts.append(int(part))
    return counts


def parse_models(text: str) -> list[str]:
    """``"mmoe,esmm"`` -> ``["mmoe", "esmm"]``, in :data:`MODELS` names.

    Raises:
      ValueError: an unknown or repeated model name.
    """
    names = [part.strip() for part in text.split(",")]
    for name in names:
        if name not in MODELS:
            raise ValueError(
                f"`--models` must be a comma-separated list of {list(MODELS)}. "
                f"Received: `--models={text}`"
            )
    if len(set(names)) != len(names):
        raise ValueError(f"`--models` repeats a model. Received: `--models={text}`")
    return names


def interleaved_schedule(
    models: Sequence[str], repeats: int
) -> list[tuple[int, str, str]]:
    """``(pair, model, side)`` in run order: pairs interleaved, sides alternated.

    For pair ``r`` every model runs DeepCTR then mtrec when ``r`` is even and
    mtrec then DeepCTR when it is odd, so that neither side always runs first
    (after the other's page cache, or at the same moment of a slow drift in
    the machine's load).
    """
    order = []
    for r in range(repeats):
        sides = SIDES if r % 2 == 0 else SIDES[::-1]
        for model in models:
            order += [(r, model, side) for side in sides]
    return order


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
            # Lower is better for memory: mtrec ÷ DeepCTR below 1 is less memory.
            entry["peak_rss_ratio"] = ratio_summary(
                values("mtrec", "peak_rss_mb"), values("deepctr", "peak_rss_mb")
            )
            if all("import_rss_mb" in r for r in runs):
                entry["rss_above_import_ratio"] = ratio_summary(
                    values("mtrec", "rss_above_import_mb"),
                    values("deepctr", "rss_above_import_mb"),
                )
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
                }
            out[str(n)][model] = entry
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
        return _ratio(e[key]) if key in e else "-"

    lines = [
        "",
        "Each library's defaults (the table above: DeepCTR "
        f"{steps('deepctr', 'fit_steps_per_call')} batch(es) per graph call "
        f"in `fit` and {steps('deepctr', 'predict_steps_per_call')} in "
        f"`predict`, mtrec {steps('mtrec', 'fit_steps_per_call')} and "
        f"{steps('mtrec', 'predict_steps_per_call')}) against both at "
        f"{EQUAL_STEPS_PER_CALL} batches per call (Keras' `steps_per_execution`, "
        "compiled on each trained model after the default passes; "
        f"{EQUAL_EPOCHS} more epochs timed after one that traces): what is "
        "mtrec's default and what is its graph.",
        "",
        "| cores | model | train ratio, defaults | train ratio, both at "
        f"{EQUAL_STEPS_PER_CALL} | inference ratio, defaults | inference "
        f"ratio, both at {EQUAL_STEPS_PER_CALL} |",
        "|---|---|---|---|---|---|",
    ]
    for cores, model, e in rows:
        lines.append(
            f"| {cores} | {model} | {_ratio(e['train_ratio'])} | "
            f"{ratio(e, 'equal_train_ratio')} | {_ratio(e['inference_ratio'])} | "
            f"{ratio(e, 'equal_inference_ratio')} |"
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
        "that. TensorFlow and tf-keras import pandas, pyarrow, scipy and PIL "
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
        d, m = e["deepctr"], e["mtrec"]
        lines.append(
            f"| {cores} | {model} | {d['import_rss_mb']:.0f} / "
            f"{m['import_rss_mb']:.0f} | {d['rss_above_import_mb']:.0f} / "
            f"{m['rss_above_import_mb']:.0f} | "
            f"{_ratio(e['rss_above_import_ratio'])} |"
        )
    return lines


def _ratio(r: dict) -> str:
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
        f"{report['machine']['cpu_count']} cores). TensorFlow "
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
                f"| {cores} | {model} | {_ratio(e['train_ratio'])} | "
                f"{_ratio(e['inference_ratio'])} | "
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


# --------------------------------------------------------------------------
# Worker: one library, one model, fresh process


def peak_rss_mb() -> float:
    """``VmHWM`` of this process from ``/proc/self/status``, in MiB."""
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM line in /proc/self/status")


def load_arrays(data_dir: pathlib.Path, rows: int | None) -> tuple[dict, dict]:
    """``(meta, arrays)`` from :func:`prepare_data`; ``rows`` cuts the train split."""
    meta = json.loads((data_dir / "meta.json").read_text())
    with np.load(data_dir / "arrays.npz") as npz:
        arrays = {key: npz[key] for key in npz.files}
    if rows is not None:
        arrays = {
            k: v[:rows] if k.startswith("train.") else v for k, v in arrays.items()
        }
    return meta, arrays


def _split(arrays: dict, split: str, names: Sequence[str]) -> dict:
    return {name: arrays[f"{split}.{name}"] for name in names}


def _import_deepctr():
    """Imports DeepCTR without its PyPI version check (see the module docstring)."""
    import requests

    def refuse(*args, **kwargs):
        raise requests.ConnectionError("version check disabled by the benchmark")

    before = set(threading.enumerate())
    original = requests.get
    requests.get = refuse
    try:
        with contextlib.redirect_stdout(sys.stderr):
            import deepctr
            from deepctr import feature_column
            from deepctr import models

            for thread in set(threading.enumerate()) - before:
                thread.join()
    finally:
        requests.get = original
    return deepctr, feature_column, models


def _build_deepctr(model_name: str, meta: dict, tf) -> tuple:
    """DeepCTR's model, its dataset structure and what it computes."""
    _, fc, models = _import_deepctr()
    columns = [
        fc.SparseFeat(f["name"], vocabulary_size=f["vocabulary_size"], embedding_dim=8)
        if f["kind"] == "categorical"
        else fc.DenseFeat(f["name"], 1)
        for f in meta["features"]
    ]
    sizes = MODEL_SIZES[model_name]
    names = tuple(t for t, _ in MODEL_TASKS[model_name])
    common = {"task_names": names, "l2_reg_embedding": 0.0}
    if model_name == "mmoe":
        model = models.MMOE(
            columns,
            num_experts=sizes["num_experts"],
            expert_dnn_hidden_units=tuple(sizes["expert_units"]),
            tower_dnn_hidden_units=tuple(sizes["tower_units"]),
            **common,
        )
    elif model_name == "ple":
        model = models.PLE(
            columns,
            shared_expert_num=sizes["num_shared_experts"],
            specific_expert_num=sizes["num_task_experts"],
            num_levels=sizes["num_levels"],
            expert_dnn_hidden_units=tuple(sizes["expert_units"]),
            tower_dnn_hidden_units=tuple(sizes["tower_units"]),
            **common,
        )
    else:
        model = models.ESMM(
            columns, tower_dnn_hidden_units=tuple(sizes["tower_units"]), **common
        )
    model.compile(
        **_compile_arguments(
            "deepctr", tf.keras.optimizers.Adam(LEARNING_RATE), len(names)
        )
    )
    options = {
        "categorical_path": "SparseFeat int32 ids, embedding gather (no lookup)",
        "dense_path": "DenseFeat, the z-scored float32 values as given",
        "l2_reg_embedding": 0.0,
    }
    return model, options


def mtrec_options(mtrec) -> dict:
    """The fastest documented options this mtrec offers, detected by signature.

    ``training_metrics``: ``False`` when ``MultiTaskRanker.__init__`` accepts
    it (else ``None``: not offered, the metrics run). ``encoded_ids``:
    ``True`` when ``CategoricalFeature`` has the ``num_ids`` field (ids
    ``0..num_ids-1`` embedded without a lookup), else ``None``: categorical
    int64 features with the vocabulary ``1..V-1``.
    """
    import dataclasses
    import inspect

    ranker = inspect.signature(mtrec.MultiTaskRanker.__init__).parameters
    fields = {f.name for f in dataclasses.fields(mtrec.CategoricalFeature)}
    return {
        "training_metrics": False if "training_metrics" in ranker else None,
        "encoded_ids": True if "num_ids" in fields else None,
    }


def build_mtrec(model_name: str, meta: dict, tf, precision: str = "float32"):
    """mtrec's model, built with the public API as a user would for encoded ids,
    under the compute ``precision`` (``mtrec.precision_scope``)."""
    import mtrec

    if precision == "float32":
        return _build_mtrec_model(model_name, meta, tf, mtrec)
    with mtrec.precision_scope(precision):
        model, options = _build_mtrec_model(model_name, meta, tf, mtrec)
    return model, {**options, "precision": precision}


def _build_mtrec_model(model_name: str, meta: dict, tf, mtrec) -> tuple:
    options = mtrec_options(mtrec)
    features, vocabularies, stats = [], {}, {}
    for f in meta["features"]:
        name = f["name"]
        if f["kind"] == "dense":
            features.append({"name": name, "kind": "dense", "normalization": "none"})
            stats[name] = {"mean": 0.0, "std": 1.0, "boundaries": None}
        elif options["encoded_ids"]:
            features.append(
                {
                    "name": name,
                    "kind": "categorical",
                    "dtype": "int64",
                    "num_ids": f["vocabulary_size"],
                    "embedding_dim": EMBEDDING_DIM,
                }
            )
        else:
            features.append(
                {
                    "name": name,
                    "kind": "categorical",
                    "dtype": "int64",
                    "embedding_dim": EMBEDDING_DIM,
                }
            )
            vocabularies[name] = list(range(1, f["vocabulary_size"]))
    feature_layer = mtrec.FeatureEmbedding(
        features, vocabularies=vocabularies, dense_stats=stats
    )
    sizes = MODEL_SIZES[model_name]
    names = [t for t, _ in MODEL_TASKS[model_name]]
    if model_name == "mmoe":
        backbone = mtrec.MMoE(
            names,
            num_experts=sizes["num_experts"],
            expert_units=sizes["expert_units"],
        )
    elif model_name == "ple":
        backbone = mtrec.PLE(
            names,
            num_levels=sizes["num_levels"],
            num_shared_experts=sizes["num_shared_experts"],
            num_task_experts=sizes["num_task_experts"],
            expert_units=sizes["expert_units"],
        )
    else:
        names = ["ctr", "cvr"]
        backbone = mtrec.SharedBottom(names, units=[])
    kwargs = {"tower_units": sizes["tower_units"]}
    if options["training_metrics"] is not None:
        kwargs["training_metrics"] = options["training_metrics"]
    if model_name == "esmm":
        model = mtrec.ESMM(
            feature_layer,
            backbone,
            mtrec.Task("ctr", "click"),
            mtrec.Task("cvr", "conversion", condition="click"),
            **kwargs,
        )
    else:
        tasks = [mtrec.Task(t, label) for t, label in MODEL_TASKS[model_name]]
        model = mtrec.MultiTaskRanker(feature_layer, backbone, tasks, **kwargs)
    model.compile(
        **_compile_arguments("mtrec", tf.keras.optimizers.Adam(LEARNING_RATE), 0)
    )
    options = {
        **options,
        "categorical_path": (
            "categorical int64 ids with num_ids (no lookup), embedding gather"
            if options["encoded_ids"]
            else "categorical int64 ids, IntegerLookup over 1..V-1 (identity), "
            "then embedding gather"
        ),
        "dense_path": "dense, normalization 'none' (values z-scored upstream)",
    }
    return model, options


def run_worker(args) -> dict:
    """Child process: one library, one model; returns the measurements."""
    cores = list(range(args.num_cores))
    os.sched_setaffinity(0, cores)
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    started = time.perf_counter()
    if args.worker == "mtrec":
        import mtrec  # noqa: F401  (the Keras switch, before TensorFlow)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.num_cores)
    tf.config.threading.set_inter_op_parallelism_threads(args.num_cores)
    if args.worker == "deepctr":
        _import_deepctr()
    if args.worker == "mtrec":
        build = functools.partial(build_mtrec, precision=args.mtrec_precision)
    else:
        build = _build_deepctr
    import_seconds = time.perf_counter() - started
    # Memory after the imports: TensorFlow and tf-keras import pandas (which
    # imports pyarrow), scipy and PIL when they are installed, so this part
    # depends on the environment, not on the library's model or training.
    import_rss_mb = peak_rss_mb()
    optional_modules = sorted(m for m in OPTIONAL_MODULES if m in sys.modules)

    meta, arrays = load_arrays(args.data, args.rows)
    feature_names = [f["name"] for f in meta["features"]]
    categorical = {f["name"] for f in meta["features"] if f["kind"] == "categorical"}
    # DeepCTR's SparseFeat inputs are int32 and DenseFeat inputs (batch, 1);
    # mtrec's integer features are int64. Cast once, before any timing.
    id_dtype = np.int64 if args.worker == "mtrec" else np.int32

    def inputs(split: str) -> dict:
        out = {}
        for name, values in _split(arrays, split, feature_names).items():
            if name in categorical:
                out[name] = values.astype(id_dtype)
            else:
                values = values.astype(np.float32)
                out[name] = values if args.worker == "mtrec" else values[:, None]
        return out

    labels = [label for _, label in MODEL_TASKS[args.model]]
    train_x, test_x = inputs("train"), inputs("test")
    train_y = _split(arrays, "train", labels)
    train_y = {k: v.astype(np.float32) for k, v in train_y.items()}
    rows = len(train_y[labels[0]])

    tf.keras.utils.set_random_seed(SEED)
    begun = time.perf_counter()
    model, options = build(args.model, meta, tf)
    build_seconds = time.perf_counter() - begun

    if args.worker == "mtrec":
        elements = {**train_x, **train_y}
    else:
        elements = (train_x, tuple(train_y[label] for label in labels))
    # No autotuning (see the module docstring): its iterator teardown is a
    # random fixed cost per pass, not model work.
    fixed = tf.data.Options()
    fixed.autotune.enabled = False
    train = tf.data.Dataset.from_tensor_slices(elements).batch(BATCH_SIZE)
    train = train.cache().prefetch(PREFETCH).with_options(fixed)
    for _ in train:  # fills the cache before anything is timed
        pass
    test = tf.data.Dataset.from_tensor_slices(test_x).batch(BATCH_SIZE)
    test = test.prefetch(PREFETCH).with_options(fixed)

    class EpochTimer(tf.keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []
            self._start = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._start)

    timer = EpochTimer()
    history = model.fit(train, epochs=args.epochs, callbacks=[timer], verbose=0)
    steady = timer.seconds[1:]

    begun = time.perf_counter()
    model.predict(train, verbose=0)
    first_predict_seconds = time.perf_counter() - begun
    predict_seconds = []
    for _ in range(args.predict_passes):
        begun = time.perf_counter()
        model.predict(train, verbose=0)
        predict_seconds.append(time.perf_counter() - begun)

    # Equal settings: both libraries' predict at EQUAL_STEPS_PER_CALL batches
    # per graph call, through Keras' public compile option (mtrec's own
    # predict_steps_per_execution yields to it). Timed after the defaults.
    default_steps = getattr(model, "predict_steps_per_execution", 1)
    model.compile(
        **_compile_arguments(args.worker, model.optimizer, len(labels)),
        steps_per_execution=EQUAL_STEPS_PER_CALL,
    )
    model.predict(train, verbose=0)  # traces the multi-step function
    equal_seconds = []
    for _ in range(args.predict_passes):
        begun = time.perf_counter()
        model.predict(train, verbose=0)
        equal_seconds.append(time.perf_counter() - begun)

    predicted = model.predict(test, verbose=0)
    if args.worker == "mtrec":
        outputs = [predicted[t] for t, _ in MODEL_TASKS[args.model]]
    else:
        outputs = list(predicted)
    np.savez(
        args.predictions,
        **{label: np.asarray(p).reshape(-1) for label, p in zip(labels, outputs)},
    )
    # Equal settings for training too (after the predictions are saved: these
    # epochs do not change the AUC): still compiled with 16 steps per call,
    # the first epoch traces, the rest are timed.
    default_fit_steps = getattr(model, "fit_steps_per_execution", 1)
    equal_timer = EpochTimer()
    model.fit(train, epochs=EQUAL_EPOCHS + 1, callbacks=[equal_timer], verbose=0)
    equal_epochs = equal_timer.seconds[1:]
    peak_mb = peak_rss_mb()
    return {
        "side": args.worker,
        "model": args.model,
        "cores": args.num_cores,
        "affinity": sorted(os.sched_getaffinity(0)),
        "threads": {
            "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        },
        "rows": rows,
        "epochs": args.epochs,
        "import_seconds": round(import_seconds, 3),
        "build_seconds": round(build_seconds, 3),
        "epoch_seconds": [round(s, 4) for s in timer.seconds],
        "first_epoch_seconds": round(timer.seconds[0], 3),
        "steady_epoch_seconds": round(statistics.median(steady), 4),
        "train_examples_per_second": round(rows * len(steady) / sum(steady), 1),
        "first_predict_seconds": round(first_predict_seconds, 3),
        "predict_seconds": [round(s, 4) for s in predict_seconds],
        "inference_examples_per_second": round(
            rows * len(predict_seconds) / sum(predict_seconds), 1
        ),
        "fit_steps_per_call": default_fit_steps,
        "equal_epoch_seconds": [round(s, 4) for s in equal_epochs],
        "equal_train_examples_per_second": round(
            rows * len(equal_epochs) / sum(equal_epochs), 1
        ),
        "predict_steps_per_call": default_steps,
        "equal_predict_seconds": [round(s, 4) for s in equal_seconds],
        "equal_inference_examples_per_second": round(
            rows * len(equal_seconds) / sum(equal_seconds), 1
        ),
        "peak_rss_mb": round(peak_mb, 1),
        "import_rss_mb": round(import_rss_mb, 1),
        "rss_above_import_mb": round(peak_mb - import_rss_mb, 1),
        "optional_modules_imported": optional_modules,
        "parameters": int(model.count_params()),
        "training_metrics": [m.name for m in model.metrics],
        "final_loss": round(float(history.history["loss"][-1]), 5),
        "options": options,
        "versions": _versions(args.worker, tf),
        "predictions": str(args.predictions),
    }


def _compile_arguments(side: str, optimizer, outputs: int) -> dict:
    """What each side's model is compiled with, at build and again for the
    equal-settings passes (with its trained ``optimizer``): mtrec computes
    its tasks' losses itself; DeepCTR gets a binary cross-entropy loss and
    metric per one of its ``outputs``."""
    if side == "mtrec":
        return {"optimizer": optimizer}
    return {
        "optimizer": optimizer,
        "loss": ["binary_crossentropy"] * outputs,
        "metrics": ["binary_crossentropy"],
    }


def _versions(side: str, tf) -> dict:
    import importlib.metadata

    library = "deepctr" if side == "deepctr" else "mtrec"
    return {
        "module": sys.modules[library].__file__,
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "tf_keras": importlib.metadata.version("tf-keras"),
        "library": importlib.metadata.version(library),
        "numpy": np.__version__,
    }


# --------------------------------------------------------------------------
# Orchestrator


def prepare_data(out_dir: pathlib.Path, split_dir: pathlib.Path = SPLIT_DIR) -> dict:
    """Encodes the census-income split once; writes ``arrays.npz`` and ``meta.json``.

    ``arrays.npz`` holds ``{split}.{column}`` for the train and test splits:
    int32 ids for categorical columns, float32 z-scores for dense ones, int8
    labels (:data:`LABELS`). Returns the meta dict (features with their
    vocabulary sizes, rows, label rates).
    """
    import pandas as pd

    from mtrec.data import census_features
    from mtrec.data import prepare_census_income

    paths = prepare_census_income(CENSUS_FILE, split_dir, group=1, seed=SPLIT_SEED)
    train = pd.read_parquet(paths["train"])
    test = pd.read_parquet(paths["test"])
    train = train.iloc[np.random.default_rng(SEED).permutation(len(train))]
    arrays, features = {}, []
    for spec in census_features():
        column = spec["name"]
        if spec["kind"] == "dense":
            values = {}
            for split, frame in (("train", train), ("test", test)):
                x = frame[column].to_numpy(np.float64)
                if spec["log1p"]:
                    x = np.sign(x) * np.log1p(np.abs(x))
                values[split] = x
            mean, std = values["train"].mean(), values["train"].std()
            std = std if std > 0 else 1.0
            for split, x in values.items():
                arrays[f"{split}.{column}"] = ((x - mean) / std).astype(np.float32)
            features.append({"name": column, "kind": "dense"})
        else:
            counts = train[column].value_counts(sort=False)
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            ids = {value: i + 1 for i, (value, _) in enumerate(ranked)}
            for split, frame in (("train", train), ("test", test)):
                encoded = frame[column].map(ids).fillna(0)
                arrays[f"{split}.{column}"] = encoded.to_numpy(np.int32)
            features.append(
                {"name": column, "kind": "categorical", "vocabulary_size": len(ids) + 1}
            )
    for split, frame in (("train", train), ("test", test)):
        income = frame["income_50k"].to_numpy(np.int8)
        never = frame["never_married"].to_numpy(np.int8)
        arrays[f"{split}.income_50k"] = income
        arrays[f"{split}.never_married"] = never
        arrays[f"{split}.click"] = (1 - never).astype(np.int8)
        arrays[f"{split}.conversion"] = (income * (1 - never)).astype(np.int8)
    meta = {
        "features": features,
        "rows": {"train": len(train), "test": len(test)},
        "label_rates": {
            split: {
                label: round(float(arrays[f"{split}.{label}"].mean()), 4)
                for label in LABELS
            }
            for split in ("train", "test")
        },
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez(out_dir / "arrays.npz", **arrays)
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def ensure_deepctr_venv(venv: pathlib.Path = DEEPCTR_VENV) -> pathlib.Path:
    """DeepCTR's interpreter; creates and fills its virtualenv on first use.

    ``python3.11 -m venv``, then ``pip install`` :data:`DEEPCTR_REQUIREMENTS`
    (from the configured package index, reusing pip's cache), then an import
    check with ``TF_USE_LEGACY_KERAS=1``. A marker file records the
    requirements; a venv without it (or with other requirements) is filled
    again.

    Raises:
      RuntimeError: a step failed (its command and the end of its output).
    """
    python = venv / "bin" / "python"
    marker = venv / VENV_MARKER
    wanted = "\n".join(DEEPCTR_REQUIREMENTS) + "\n"
    if python.is_file() and marker.is_file() and marker.read_text() == wanted:
        return python
    steps = []
    if not python.is_file():
        steps.append(["python3.11", "-m", "venv", str(venv)])
    steps += [
        [str(python), "-m", "pip", "install", "--quiet", *DEEPCTR_REQUIREMENTS],
        [
            str(python),
            "-c",
            "import deepctr.models, deepctr.feature_column, tensorflow, tf_keras",
        ],
    ]
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    for command in steps:
        logger.info("DeepCTR virtualenv: %s", " ".join(command))
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed ({done.returncode}):\n"
                f"{(done.stdout + done.stderr)[-3000:]}"
            )
    marker.write_text(wanted)
    return python


def last_json_line(stdout: str) -> dict:
    """The JSON object on the last line of a worker's stdout that holds one.

    Raises:
      ValueError: no line parses as a JSON object.
    """
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    raise ValueError(f"no JSON object in the worker's output: {stdout[-500:]!r}")


def worker_command(
    python: str | os.PathLike,
    side: str,
    model: str,
    cores: int,
    data: pathlib.Path,
    predictions: pathlib.Path,
    args,
) -> list[str]:
    command = [str(python), str(pathlib.Path(__file__).resolve())]
    command += ["--worker", side, "--model", model, "--num-cores", str(cores)]
    command += ["--data", str(data), "--predictions", str(predictions)]
    command += ["--epochs", str(args.epochs)]
    command += ["--predict-passes", str(args.predict_passes)]
    if args.rows:
        command += ["--rows", str(args.rows)]
    if side == "mtrec":
        command += ["--mtrec-precision", args.mtrec_precision]
    return command


def run_worker_process(command: list[str], pythonpath: str | None = None) -> dict:
    """Runs one worker; returns its JSON. ``pythonpath``: put first on its path."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_USE_LEGACY_KERAS": "1"}
    env.pop("PYTHONPATH", None)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}"
        )
    return last_json_line(done.stdout)


def score(run: dict, arrays: dict) -> dict:
    """Test AUC per task from the worker's saved predictions."""
    from mtrec.metrics import auc

    with np.load(run["predictions"]) as predicted:
        return {
            task: round(auc(arrays[f"test.{label}"], predicted[label]), 5)
            for task, label in MODEL_TASKS[run["model"]]
        }


def _git(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(REPO), *command], capture_output=True)


def resolve_ref(ref: str) -> str:
    """The commit id of ``ref`` in this checkout.

    Raises:
      ValueError: ``ref`` names no commit here.
    """
    done = _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if done.returncode != 0:
        raise ValueError(
            f"`--mtrec-ref` must name a commit of {REPO} or be 'worktree'. "
            f"Received: `--mtrec-ref={ref}`"
        )
    return done.stdout.decode().strip()


def mtrec_source(ref: str, dest: pathlib.Path) -> dict:
    """Where the mtrec workers import mtrec from, and what that is.

    With ``ref="worktree"`` they import the checkout's working tree (the
    editable install), uncommitted changes included (listed in the result).
    Otherwise the ``mtrec/`` package of commit ``ref`` is extracted into
    ``dest`` (``git archive``) and put first on the workers' ``PYTHONPATH``:
    what is measured is that commit, whatever other work is under way in the
    working tree.

    Returns:
      ``{"ref", "commit", "pythonpath", "uncommitted_in_mtrec"}``
      (``pythonpath`` is ``None`` for the working tree).

    Raises:
      ValueError: ``ref`` names no commit.
      RuntimeError: ``git archive`` failed.
    """
    head = resolve_ref("HEAD")
    if ref == "worktree":
        changed = _git("status", "--porcelain", "--", "mtrec").stdout.decode()
        return {
            "ref": ref,
            "commit": head,
            "pythonpath": None,
            "uncommitted_in_mtrec": [line[3:] for line in changed.splitlines()],
        }
    commit = resolve_ref(ref)
    archive = _git("archive", "--format=tar", commit, "mtrec")
    if archive.returncode != 0:
        raise RuntimeError(
            f"git archive {commit} mtrec failed: {archive.stderr.decode()[-2000:]}"
        )
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")
    return {
        "ref": ref,
        "commit": commit,
        "pythonpath": str(dest),
        "uncommitted_in_mtrec": [],
    }


def machine() -> dict:
    return {
        "cpu_count": os.cpu_count(),
        "cpus_available": len(os.sched_getaffinity(0)),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="pairs per model")
    parser.add_argument("--cores", default="1,2", help="core counts, e.g. 1,2")
    parser.add_argument("--models", default=",".join(MODELS), help="e.g. mmoe,ple")
    parser.add_argument("--epochs", type=int, default=6, help="epochs 2.. are timed")
    parser.add_argument("--predict-passes", type=int, default=3)
    parser.add_argument(
        "--rows", type=int, default=None, help="train rows (default: all)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 1 pair, 4,096 rows, 2 epochs, 1 predict pass",
    )
    parser.add_argument(
        "--mtrec-ref",
        default="HEAD",
        help="commit of mtrec to measure (default HEAD: its committed package, "
        "not the working tree's edits); 'worktree' for the working tree",
    )
    parser.add_argument(
        "--mtrec-precision",
        choices=PRECISIONS,
        default="float32",
        help="mtrec's compute precision (DeepCTR stays float32); other than "
        "float32, the default --out and docs section get the precision's suffix",
    )
    parser.add_argument("--out", type=pathlib.Path, default=None)
    parser.add_argument("--doc", type=pathlib.Path, default=DOC)
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--model", choices=MODELS, help=argparse.SUPPRESS)
    parser.add_argument("--num-cores", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=pathlib.Path, help=argparse.SUPPRESS)
    parser.add_argument("--predictions", type=pathlib.Path, help=argparse.SUPPRESS)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parses and validates; a bad value is a usage error (exit status 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.rows, args.epochs, args.predict_passes = 1, 4096, 2, 1
    if args.out is None:
        args.out = results_path(args.mtrec_precision)
    for name, minimum in (("repeats", 1), ("epochs", 2), ("predict_passes", 1)):
        value = getattr(args, name)
        if value < minimum:
            parser.error(
                f"`--{name.replace('_', '-')}` must be >= {minimum}. "
                f"Received: `--{name.replace('_', '-')}={value}`"
            )
    if args.rows is not None and args.rows < BATCH_SIZE:
        parser.error(
            f"`--rows` must be >= {BATCH_SIZE} (one batch). Received: "
            f"`--rows={args.rows}`"
        )
    if args.worker is None:
        try:
            args.cores = parse_cores(args.cores, len(os.sched_getaffinity(0)))
            args.models = parse_models(args.models)
            if args.mtrec_ref != "worktree":
                resolve_ref(args.mtrec_ref)
        except ValueError as err:
            parser.error(str(err))
    elif (
        args.model is None
        or args.num_cores is None
        or args.data is None
        or args.predictions is None
    ):
        parser.error("--worker needs --model, --num-cores, --data and --predictions")
    return args


def run(args) -> dict:
    """Orchestrator: data, DeepCTR's venv, the interleaved pairs, the report.

    The report is published (:func:`publish`) after every worker, so that a
    run stopped early still leaves its complete pairs in the JSON and the docs
    (marked partial).
    """
    info = machine()
    started = time.perf_counter()
    pythons = {"deepctr": ensure_deepctr_venv(), "mtrec": pathlib.Path(sys.executable)}
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        checkout = mtrec_source(args.mtrec_ref, pathlib.Path(tmp) / "mtrec-source")
        paths = {"deepctr": None, "mtrec": checkout["pythonpath"]}
        data_dir = pathlib.Path(tmp) / "data"
        meta = prepare_data(data_dir)
        _, arrays = load_arrays(data_dir, None)
        schedule = interleaved_schedule(args.models, args.repeats)
        planned = len(schedule) * len(args.cores)
        for cores in args.cores:
            for pair, model, side in schedule:
                predictions = pathlib.Path(tmp) / f"{cores}-{pair}-{model}-{side}.npz"
                command = worker_command(
                    pythons[side], side, model, cores, data_dir, predictions, args
                )
                result = run_worker_process(command, paths[side])
                result["pair"] = pair
                result["test_auc"] = score(result, arrays)
                del result["predictions"]
                runs.append(result)
                logger.info(
                    "%d core(s), pair %d, %s, %s: train %.0f ex/s, inference "
                    "%.0f ex/s, AUC %s",
                    cores,
                    pair,
                    model,
                    side,
                    result["train_examples_per_second"],
                    result["inference_examples_per_second"],
                    result["test_auc"],
                )
                info["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
                wall_seconds = round(time.perf_counter() - started, 1)
                report = make_report(
                    runs, args, meta, info, checkout, wall_seconds, planned
                )
                publish(report, args.out, args.doc)
    return report


def results_path(precision: str) -> pathlib.Path:
    """The default JSON: ``RESULTS``, suffixed by a precision other than float32."""
    if precision == "float32":
        return RESULTS
    return RESULTS.with_name(f"{RESULTS.stem}_{precision}.json")


def doc_section(report: dict) -> str:
    """``DOC_SECTION``, suffixed by mtrec's precision when not float32."""
    precision = report["mtrec_options"].get("precision", "float32")
    return DOC_SECTION if precision == "float32" else f"{DOC_SECTION}-{precision}"


def publish(report: dict, out: pathlib.Path, doc: pathlib.Path) -> bool:
    """Writes the JSON (atomically) and the docs section once a pair is complete.

    Returns whether anything was written (nothing before the first pair).
    """
    if not any(report["summary"].values()):
        return False
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, out)
    write_doc_section(doc, doc_section(report), markdown(report))
    return True


def make_report(
    runs: list[dict],
    args: argparse.Namespace,
    meta: dict,
    info: dict,
    checkout: dict,
    wall_seconds: float,
    runs_planned: int,
) -> dict:
    """The JSON report: settings, data, machine, versions, summary, verdict, runs.

    Args:
      runs: the workers' results with ``pair`` and ``test_auc`` added.
      args: the parsed arguments (``quick``, ``repeats``, ``cores``,
        ``models``, ``epochs``, ``predict_passes``, ``rows``).
      meta: the data description from :func:`prepare_data`.
      info: :func:`machine` with ``load_average_at_end`` added.
      checkout: :func:`mtrec_source` (what the mtrec workers imported).
      wall_seconds: the run's wall time.
      runs_planned: the workers the run was to start (``complete`` is
        whether they all ran).
    """
    summary = summarise(runs, args.models, args.cores)
    # A side's first run (None before it has one: the report after one worker).
    first = {side: next((r for r in runs if r["side"] == side), None) for side in SIDES}

    def of_first(side: str, key: str):
        return first[side][key] if first[side] else None

    report = {
        "benchmark": "deepctr_comparison",
        "quick": args.quick,
        "repeats": args.repeats,
        "cores": args.cores,
        "models": args.models,
        "epochs": args.epochs,
        "predict_passes": args.predict_passes,
        "rows": args.rows or meta["rows"]["train"],
        "batch_size": BATCH_SIZE,
        "learning_rate": LEARNING_RATE,
        "embedding_dim": EMBEDDING_DIM,
        "model_sizes": MODEL_SIZES,
        "tasks": {m: dict(MODEL_TASKS[m]) for m in args.models},
        "data": {
            "file": str(CENSUS_FILE.relative_to(REPO.parent)),
            "description": (
                "census-income.test split 50/25/25 (split seed 0, the split of "
                f"census_income.py); {args.rows or meta['rows']['train']:,} "
                f"train rows, {meta['rows']['test']:,} test rows; "
                f"{len(meta['features'])} inputs "
                f"({sum(f['kind'] == 'categorical' for f in meta['features'])} "
                "categorical integer-encoded once, "
                f"{sum(f['kind'] == 'dense' for f in meta['features'])} dense "
                "z-scored once; the same arrays feed both libraries). MMoE and "
                "PLE: income + never married; ESMM: click = ever married, "
                "conversion = income > 50k and ever married."
            ),
            "features": meta["features"],
            "label_rates": meta["label_rates"],
        },
        "models_text": (
            "embeddings 8; MMoE 8 experts × [32], towers [16]; PLE 2 levels of "
            "2 shared + 2 per-task experts × [32], towers [16]; ESMM towers "
            "[64, 16] on the embeddings; Adam 1e-3, batch 1024, binary "
            "cross-entropy; DeepCTR with `l2_reg_embedding=0` (mtrec has no "
            "embedding penalty by default)."
        ),
        "machine": info,
        "mtrec_checkout": checkout,
        "versions": {side: of_first(side, "versions") for side in SIDES},
        "mtrec_options": {
            k: v
            for k, v in (of_first("mtrec", "options") or {}).items()
            if k in ("training_metrics", "encoded_ids", "precision")
        },
        "paths": {side: of_first(side, "options") for side in SIDES},
        "training_metrics": {
            side: of_first(side, "training_metrics") for side in SIDES
        },
        "summary": summary,
        "verdict": verdict(summary),
        "runs": runs,
        "wall_seconds": wall_seconds,
        "runs_planned": runs_planned,
        "runs_done": len(runs),
        "complete": len(runs) == runs_planned,
    }
    return report


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.worker:  # child process: one library, one model, JSON on stdout
        result = run_worker(args)
        print(json.dumps(result))
        return result
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    report = run(args)
    print(json.dumps(report["summary"], indent=2))
    return report


if __name__ == "__main__":
    main()
