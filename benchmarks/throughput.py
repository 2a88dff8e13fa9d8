"""Training examples/s of ESMM on shared-bottom, MMoE and PLE backbones.

Generates the synthetic click log (``mtrec.data.synthetic.generate_click_log``,
default 1M rows, seed 7, the same rows as ``mtrec generate --rows 1000000
--seed 7``) into a temporary CSV, then trains ESMM with the shipped ``esmm``
config (its features, tasks, batch size and learning rate) on each
backbone, each in a fresh process so that peak RSS is per model.

By default each model trains 4 epochs of 50 batches of the config's batch
size (the streaming reader goes on through the file across epochs, so 200
batches of distinct rows are seen): a full pass per model takes minutes on
the shared 2-core machine and does not change the rate.
``--steps-per-epoch 0`` trains full passes.

What is timed: only ``model.fit``, per epoch, from Keras' ``on_epoch_begin`` to
``on_epoch_end`` (streaming CSV reading, shuffling and batching included, as in
``mtrec train``). Not timed: generating the file, fitting vocabularies and
statistics, building the model, evaluation. The first epoch also pays for
tracing the ``tf.function``; ``examples_per_second`` is over every epoch,
``examples_per_second_steady`` over epochs 2.., ``examples_per_second_best``
the fastest of epochs 2.. (the least disturbed by other jobs on a shared
machine: the number the comparison uses).

The model is built with the public steps ``mtrec.training.train`` composes
(``prepare``, ``build_model``, ``datasets``, ``compile_model``), without the
checkpoint, TensorBoard and progress-bar callbacks of ``fit`` (``train()`` adds
them and does not report fit time; see :func:`timed_run`).

:func:`timed_run` is shared with ``census_income.py``; ``mmoe_synthetic.py``
feeds its rows from memory and shares only ``EpochTimer`` and the reporting
helpers.

Prints JSON to stdout and writes it to ``benchmarks/results/throughput.json``.

Usage (from the repository root)::

    python benchmarks/throughput.py [--rows 1000000] [--epochs 4]
        [--steps-per-epoch 50] [--quick]
"""

import argparse
import dataclasses
import json
import logging
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

from machine_info import cpu_description
from machine_info import machine

import mtrec  # noqa: F401  (the Keras switch, before TensorFlow)

# isort: split
import doc_sections
import numpy as np
import tensorflow as tf
from epoch_timer import epoch_timer_class
from epoch_timer import examples_per_second

from mtrec.data import generate_click_log
from mtrec.data import make_dataset
from mtrec.data import surface_data_errors
from mtrec.data import write_table
from mtrec.metrics import auc
from mtrec.training import build_model
from mtrec.training import compile_model
from mtrec.training import datasets
from mtrec.training import evaluate_model
from mtrec.training import load_config
from mtrec.training import prepare

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "throughput.json"

#: Training settings the benchmarks pin so that their protocol stays the one
#: their results record (a constant learning rate, no mtrec selection), whatever
#: the library's defaults become.
PINNED_TRAIN = {"lr_schedule": "constant", "selection": {"metric": None}}

#: Backbones compared (ESMM on top); ``shared_bottom`` is the shipped config's.
BACKBONES = {
    "shared_bottom": {"units": [256, 128]},
    "mmoe": {"num_experts": 4, "expert_units": [128, 64]},
    "ple": {
        "num_levels": 2,
        "num_shared_experts": 1,
        "num_task_experts": 1,
        "expert_units": [128, 64],
    },
}

logger = logging.getLogger("throughput")


def peak_rss_mb() -> float:
    """Peak resident set size of this process, in MiB.

    ``VmHWM`` from ``/proc/self/status`` on Linux; elsewhere ``ru_maxrss`` of
    ``resource.getrusage``. On Linux ``ru_maxrss`` is not per process for a
    child: ``execve`` carries the parent's high-water mark over, so a child
    started by a parent holding 1 GB reports at least 1 GB. ``VmHWM`` belongs
    to the child's own address space.
    """
    status = pathlib.Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def parameter_counts(model) -> dict[str, int]:
    """Trainable parameters: total, embeddings, backbone and towers."""

    def count(variables) -> int:
        return int(sum(np.prod(v.shape) for v in variables))

    return {
        "total": count(model.trainable_variables),
        "features": count(model.feature_layer.trainable_variables),
        "backbone": count(model.backbone.trainable_variables),
        "towers": count(
            [v for tower in model.towers.values() for v in tower.trainable_variables]
        ),
    }


def selection_score(report: dict) -> float:
    """Higher is better: mean AUC of binary outputs, else minus mean RMSE."""
    aucs = [m["auc"] for m in report.values() if m.get("auc") is not None]
    if aucs:
        return sum(aucs) / len(aucs)
    return -sum(m["rmse"] for m in report.values()) / len(report)


def timed_run(
    config,
    work_dir: str | os.PathLike,
    *,
    eval_paths: dict[str, str] | None = None,
    select_on: str | None = None,
) -> dict:
    """Fits one config and times ``model.fit``; optionally picks the best epoch.

    The same steps as ``mtrec.training.train`` (seeded with ``config.seed``):
    ``prepare`` (vocabularies and statistics fitted on ``config.data.train``,
    the whole file: no hash split), ``build_model``, ``datasets`` (the config's
    batch size and shuffle buffer), ``compile_model`` (constant learning rate:
    no total step count is given), ``model.fit``.

    Args:
      config: a ``RunConfig``.
      work_dir: where the vocabularies are written.
      eval_paths: ``{name: file}`` evaluated after training with
        ``evaluate_model`` (per-task AUC/log loss or RMSE/MAE).
      select_on: a key of ``eval_paths`` evaluated after every epoch; the
        weights of the epoch with the best :func:`selection_score` are restored
        before the final evaluation. ``None``: the last epoch is kept.

    Returns:
      ``eval`` (``{name: report}``), ``epoch_seconds`` (fit time per epoch,
      selection excluded), ``examples_per_second`` (all epochs),
      ``examples_per_second_steady`` (epochs 2..), ``best_epoch``,
      ``train_loss`` (Keras history), ``parameters``, ``train_rows``,
      ``preprocessing_seconds``, ``features`` (the feature specs, inline).
    """

    eval_paths = dict(eval_paths or {})
    if select_on is not None and select_on not in eval_paths:
        raise ValueError(
            f"`select_on` must be a key of `eval_paths` {sorted(eval_paths)}. "
            f"Received: `select_on={select_on!r}`"
        )
    tf.keras.utils.set_random_seed(config.seed)
    data = config.data
    if not data.eval:
        # Fit on (and train on) the whole file: no hash split.
        config = dataclasses.replace(
            config, data=dataclasses.replace(data, eval=data.train)
        )

    start = time.perf_counter()
    prepared = prepare(
        config, preprocessing_dir=pathlib.Path(work_dir) / "preprocessing"
    )
    preprocessing_seconds = time.perf_counter() - start
    model = build_model(prepared, config)
    compile_model(model, config)
    train_ds = datasets(prepared, config).train

    def eval_dataset(path: str) -> tf.data.Dataset:
        return make_dataset(
            path,
            prepared.schema,
            batch_size=config.train.eval_batch_size,
            shuffle=False,
            chunk_rows=data.chunk_rows,
            file_format=data.format,
        )

    timer = EpochTimer()
    callbacks = [timer]  # first, so its on_epoch_end runs before the selection
    selector = None
    if select_on is not None:
        selector = BestEpoch(eval_dataset(eval_paths[select_on]))
        callbacks.append(selector)
    with surface_data_errors():
        history = model.fit(
            train_ds,
            epochs=config.train.epochs,
            steps_per_epoch=config.train.steps_per_epoch,
            callbacks=callbacks,
            verbose=0,
        )
        best_epoch = config.train.epochs
        if selector is not None:
            model.set_weights(selector.best_weights)
            best_epoch = selector.best_epoch
        evaluation = {
            name: evaluate_model(model, eval_dataset(path))
            for name, path in eval_paths.items()
        }
    rows_per_epoch = prepared.train_rows
    if config.train.steps_per_epoch:
        rows_per_epoch = min(
            rows_per_epoch, config.train.steps_per_epoch * config.train.batch_size
        )
    seconds = timer.seconds
    steady = seconds[1:] or seconds
    return {
        "eval": evaluation,
        "best_epoch": best_epoch,
        "selection_scores": selector.scores if selector else None,
        "epoch_seconds": [round(s, 3) for s in seconds],
        "examples_per_second": examples_per_second(rows_per_epoch, seconds, None),
        "examples_per_second_steady": examples_per_second(rows_per_epoch, steady, None),
        "train_loss": {k: [float(x) for x in v] for k, v in history.history.items()},
        "parameters": parameter_counts(model),
        "train_rows": prepared.train_rows,
        "features": prepared.feature_set.to_dicts(),
        "rows_per_epoch": rows_per_epoch,
        "preprocessing_seconds": round(preprocessing_seconds, 3),
    }


EpochTimer = epoch_timer_class(tf)


class BestEpoch(tf.keras.callbacks.Callback):
    """Scores a dataset after each epoch and keeps the best epoch's weights.

    The score is :func:`selection_score` of AUC (binary outputs) or RMSE
    (regression) per output, computed like ``evaluate_model`` but with one
    ``tf.function`` traced once for the whole fit.

    Args:
      dataset: the selection (validation) dataset.
    """

    def __init__(self, dataset: tf.data.Dataset):
        super().__init__()
        self.dataset = dataset
        self.scores: list[float] = []
        self.best_weights = None
        self.best_epoch = 0
        self._predict = None

    def on_train_begin(self, logs=None):
        model = self.model
        self._predict = tf.function(lambda batch: model(batch, training=False))

    def on_epoch_end(self, epoch, logs=None):
        targets = self.model.evaluation_targets()
        columns = {t.label for t in targets} | {t.condition for t in targets}
        columns.discard(None)
        outputs: dict[str, list] = {}
        labels: dict[str, list] = {}
        for batch in self.dataset:
            for name, value in self._predict(batch).items():
                outputs.setdefault(name, []).append(value.numpy().reshape(-1))
            for column in columns:
                labels.setdefault(column, []).append(batch[column].numpy())
        outputs = {k: np.concatenate(v) for k, v in outputs.items()}
        labels = {k: np.concatenate(v) for k, v in labels.items()}
        report = {}
        for t in targets:
            mask = labels[t.condition] > 0.5 if t.condition else slice(None)
            y, pred = labels[t.label][mask], outputs[t.output][mask]
            if t.kind == "binary":
                report[t.output] = {"auc": auc(y, pred)}
            else:
                report[t.output] = {"rmse": float(np.sqrt(np.mean((pred - y) ** 2)))}
        score = selection_score(report)
        self.scores.append(round(score, 5))
        if self.best_weights is None or score > max(self.scores[:-1]):
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch + 1


#: Sections of docs/benchmarks.md, in order; each benchmark rewrites its own.
DOC_SECTIONS = (
    "census-income",
    "mmoe-synthetic",
    "mmoe-synthetic-variants",
    "throughput",
    "default-recipe",
)
DOC_HEADER = """# Benchmarks

Generated by the scripts in `benchmarks/` (each rewrites its own section
between the `begin`/`end` markers; the JSON beside it in `benchmarks/results/`
holds every number, the configs and the machine). Measured on a shared
2-core machine without GPU: throughput numbers depend on the load of the
moment (recorded as `load_average_at_start` in the JSON).
"""


def update_doc_section(path: pathlib.Path, name: str, text: str) -> None:
    """Replaces section ``name`` of the markdown file ``path`` (created if missing,
    with every section of :data:`DOC_SECTIONS` in order)."""
    if name not in DOC_SECTIONS:
        raise ValueError(f"`name` must be one of {DOC_SECTIONS}. Received: {name!r}")
    skeleton = DOC_HEADER + "".join(
        f"\n<!-- begin: {n} -->\n<!-- end: {n} -->\n" for n in DOC_SECTIONS
    )
    doc_sections.update_doc_section(path, name, text, new_doc=skeleton)


def run_child(argv: list[str]) -> dict:
    """Runs this script in a fresh process (peak RSS per model); returns its JSON."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, *argv]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}"
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(backbone: str, path: pathlib.Path, args) -> dict:
    """Child process: trains ESMM with one backbone on the click log."""
    config = load_config(
        REPO / "mtrec" / "configs" / "esmm.yaml",
        [
            f"data.train={path}",
            f"model.backbone={backbone}",
            f"model.backbone_args={json.dumps(BACKBONES[backbone])}",
            f"train.epochs={args.epochs}",
            f"train.steps_per_epoch={json.dumps(args.steps_per_epoch)}",
            f"seed={args.seed}",
            "train.progress=false",
            "export.enabled=false",
        ],
    )
    with tempfile.TemporaryDirectory() as tmp:
        result = timed_run(config, tmp)
    return {
        "backbone": backbone,
        "backbone_args": BACKBONES[backbone],
        "features": result["features"],
        "batch_size": config.train.batch_size,
        "epochs": config.train.epochs,
        "examples_per_second_best": round(
            result["rows_per_epoch"]
            / min(result["epoch_seconds"][1:] or result["epoch_seconds"])
        ),
        **{k: result[k] for k in ("examples_per_second", "examples_per_second_steady")},
        **{k: result[k] for k in ("epoch_seconds", "parameters", "rows_per_epoch")},
        "preprocessing_seconds": result["preprocessing_seconds"],
        "final_train_metrics": {
            k: round(v[-1], 5) for k, v in result["train_loss"].items()
        },
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def markdown(report: dict) -> str:
    """The "throughput" section of docs/benchmarks.md."""
    lines = [
        "## Throughput",
        "",
        "`python benchmarks/throughput.py` "
        f"({'--quick, ' if report['quick'] else ''}{report['data']}; "
        f"{report['model']}; {report['epochs']} epochs of "
        f"{report['steps_per_epoch'] or 'all'} batches; "
        f"wall time {report['wall_seconds'] / 60:.1f} min; "
        f"load average at start {report['load_average_at_start'][0]} on "
        f"{report['cpu_count']} cores, "
        f"{report.get('cpus_available', report['cpu_count'])} usable by the run; "
        f"{cpu_description(report)}). "
        f"Timed: {report['timed']}. Best = the "
        "fastest of epochs 2.. (the first epoch also traces the graph; the "
        "fastest is the least disturbed by other jobs), steady = all of epochs "
        "2... Each backbone runs in a fresh process (peak RSS per model).",
        "",
        "| backbone (ESMM on top) | backbone args | params (total / backbone) | "
        "train ex/s, best | vs shared-bottom | train ex/s, steady | "
        "epoch seconds | peak RSS MB |",
        "|---|---|---:|---:|---:|---:|---|---:|",
    ]
    for name, r in report["results"].items():
        args = ", ".join(f"{k}={v}" for k, v in r["backbone_args"].items())
        params = r["parameters"]
        seconds = ", ".join(f"{s:.1f}" for s in r["epoch_seconds"])
        lines.append(
            f"| {name} | {args} | {params['total']:,} / {params['backbone']:,} | "
            f"{r['examples_per_second_best']:,} | "
            f"{report['best_vs_shared_bottom'][name]:.2f}x | "
            f"{r['examples_per_second_steady']:,} | {seconds} | "
            f"{r['peak_rss_mb']:.0f} |"
        )
    lines += [
        "",
        "Other jobs shared the machine during the run, so the absolute numbers "
        "move with the load; the ratios within one run are the comparable part.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument(
        "--steps-per-epoch",
        type=int,
        default=50,
        help="batches per epoch (default 50: 102,400 rows; 0 for a full pass)",
    )
    parser.add_argument("--seed", type=int, default=7, help="data and model seed")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 200k rows, 2 x 5 steps"
    )
    parser.add_argument("--out", type=pathlib.Path, default=RESULTS)
    parser.add_argument(
        "--doc", type=pathlib.Path, default=REPO / "docs" / "benchmarks.md"
    )
    parser.add_argument("--measure", choices=sorted(BACKBONES), help=argparse.SUPPRESS)
    parser.add_argument("--path", type=pathlib.Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.epochs, args.steps_per_epoch = 200_000, 2, 5
    args.steps_per_epoch = args.steps_per_epoch or None
    if args.measure:  # child process: one backbone, JSON on stdout
        result = measure(args.measure, args.path, args)
        print(json.dumps(result))
        return result

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    info = machine()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "click_log.csv"
        write_table(generate_click_log(args.rows, seed=args.seed), path)
        logger.info("wrote %d rows to %s", args.rows, path)
        results = {}
        for backbone in BACKBONES:
            child = [__file__, "--measure", backbone, "--path", str(path)]
            child += ["--rows", str(args.rows), "--epochs", str(args.epochs)]
            child += ["--seed", str(args.seed)]
            if args.steps_per_epoch:
                child += ["--steps-per-epoch", str(args.steps_per_epoch)]
            results[backbone] = run_child(child)
            logger.info("%s: %s", backbone, results[backbone])
    baseline = results["shared_bottom"]["examples_per_second_best"]
    shipped = load_config(REPO / "mtrec" / "configs" / "esmm.yaml")
    report = {
        "benchmark": "throughput",
        "data": f"synthetic click log, {args.rows} rows, seed {args.seed} (CSV)",
        "model": f"ESMM (shipped esmm config: features, tasks, batch "
        f"{shipped.train.batch_size}, lr {shipped.train.learning_rate})",
        "timed": "model.fit per epoch (streaming reader included); not "
        "preprocessing, model building or evaluation",
        "epochs": args.epochs,
        "steps_per_epoch": args.steps_per_epoch,
        "quick": args.quick,
        **info,
        "results": results,
        "best_vs_shared_bottom": {
            name: round(r["examples_per_second_best"] / baseline, 3)
            for name, r in results.items()
        },
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    update_doc_section(args.doc, "throughput", markdown(report))
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
