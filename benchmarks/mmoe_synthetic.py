"""MMoE paper's synthetic experiment: shared-bottom vs OMoE vs MMoE by task correlation.

Data: ``mtrec.data.mmoe_synthetic.generate_mmoe_regression`` (two regression
targets ``y1``, ``y2`` of 100 inputs ``x0..x99``; ``cos(w1, w2) = p``; ``c=1``,
10 sine terms with ``alpha, beta ~ N(0, 1)``, noise std 0.01). For every
correlation ``p`` and seed, ``train_rows + test_rows`` rows are drawn with that
seed (the first ``train_rows`` train, the rest test). The labels are
standardised with the training rows' mean and std
(``standardize_labels``): the label variance differs twenty-fold between
seeds, and in standardised units an MSE is the fraction of variance left
unexplained, comparable across seeds. For one seed, ``y1``, the inputs and
each model's initialisation are the same at every ``p``.

Models (``multi_task`` architecture built by ``mtrec.training.builders``;
regression tasks ``task1``/``task2``, MSE losses, dense inputs with
``normalization: none``): shared-bottom (one 128-unit layer), OMoE and MMoE
(8 experts of one 16-unit layer: the same 128 first-layer units), one 8-unit
tower per task; 14-15k parameters each. The same budget for all: rows,
epochs, batch size, Adam learning rate, seeds.

Why this budget: on seeds whose labels have little linear signal (seed 1: a
linear model explains 1% of the variance) every model first sits on a plateau
at ``MSE ~ 1`` for about 1,000-2,000 Adam steps while it finds the task
directions. The previous budget (15k rows, 6 epochs of batch 256: 352 steps)
ended on that plateau for every model on seed 1, and the comparison was
noise. Trained longer on 15k rows, the models escape it but overfit (test MSE
ten times the train MSE), so the default is 102,400 rows x 20 epochs of batch
512 (4,000 steps). Batch 512 reaches the same test MSE as batch 256 (pilot,
seed 1) in about 60% of the time; batch 1024 is worse at the same epochs.

Input pipeline: the rows are held in memory and fed by ``tf.data`` (one
stateless permutation of the rows per epoch and seed, full batches only),
with ``steps_per_execution``; the model, preprocessing and optimiser are built
by the same library functions as ``mtrec train``. The streaming file reader
that ``mtrec train`` uses gave about 17k examples/s here against about 150k
for this pipeline on one core: the models are tiny, so per-step overhead
dominates.

Reported per correlation and model (mean ± std over seeds): test MSE per task
and over both tasks (also the median), the training loss of the final epoch
(Keras' running mean of each task's MSE: the quantity the paper plots), the
along-training loss (each seed's training loss averaged over all epochs: the
whole curve in one number), the training MSE of the final weights, and the
training-loss curves (per seed and their mean). The verdict compares MMoE with
shared-bottom paired by seed (see :func:`verdict`). ``peak_rss_mb`` is the one
process's peak over all fits, not a per-model figure: every fit leaves some
25-65 MB of TensorFlow's native memory behind after ``clear_session`` (plain
tf-keras models do the same; measured with 8 fits in one process), so 90 fits
reach about 6 GB.

Writes the setting's JSON (``benchmarks/results/mmoe_synthetic.json`` for the
default) and its sections of ``docs/benchmarks.md`` (see the settings below);
prints the JSON.

Usage (from the repository root; ``--threads 1`` for a one-core run)::

    taskset -c 1 python benchmarks/mmoe_synthetic.py [--seeds 1 2 ... 10]
        [--epochs 20] [--batch-size 512] [--train-rows 102400]
        [--correlations 0.5 0.9 1.0] [--width 128] [--alpha-std 1]
        [--threads 1] [--quick]

Other settings, to check whether the comparison depends on them: ``--width W``
gives every model ``W`` first-layer units instead of the paper's 128
(shared-bottom one ``W``-unit layer, experts ``W / 8`` units each);
``--alpha-std A`` draws the sine frequencies from ``N(0, A^2)``, so the labels
oscillate faster along ``w_k^T x`` and are harder to fit. A setting's JSON is
``benchmarks/results/mmoe_synthetic[_width<W>][_alpha<A>].json``
(:func:`results_path`); every full run rewrites the "mmoe-synthetic-variants"
section, one table over all the settings' JSONs, and a run of the default
setting also its own detailed "mmoe-synthetic" section.
"""

import argparse
import dataclasses
import json
import logging
import pathlib
import tempfile
import time

from machine_info import machine

import mtrec  # noqa: F401  (the Keras switch, before TensorFlow)

# isort: split
import numpy as np
import pandas as pd
import tensorflow as tf
from mmoe_synthetic_report import summarise
from mmoe_synthetic_report import update_docs
from mmoe_synthetic_report import verdict
from mmoe_synthetic_setup import ALPHA_STD
from mmoe_synthetic_setup import FEATURES
from mmoe_synthetic_setup import INPUT_DIM
from mmoe_synthetic_setup import TASKS
from mmoe_synthetic_setup import TOWER_UNITS
from mmoe_synthetic_setup import WIDTH
from mmoe_synthetic_setup import models
from mmoe_synthetic_setup import results_path
from throughput import PINNED_TRAIN
from throughput import REPO
from throughput import EpochTimer
from throughput import parameter_counts
from throughput import peak_rss_mb

from mtrec.data import generate_mmoe_regression
from mtrec.data import standardize_labels
from mtrec.training import Prepared
from mtrec.training import build_model
from mtrec.training import compile_model
from mtrec.training import load_config
from mtrec.training import prepare

logger = logging.getLogger("mmoe_synthetic")


def make_config(backbone: str, backbone_args: dict, seed: int, args):
    return load_config(
        {
            "name": f"mmoe-synthetic-{backbone}",
            "seed": seed,
            "features": [
                {"name": name, "kind": "dense", "normalization": "none"}
                for name in FEATURES
            ],
            "tasks": [
                {"name": name, "label": label, "kind": "regression"}
                for name, label in TASKS.items()
            ],
            # Rows are fed from memory (see `fit_in_memory`); no file is read.
            "model": {
                "architecture": "multi_task",
                "backbone": backbone,
                "backbone_args": backbone_args,
                "tower_units": TOWER_UNITS,
            },
            "train": {
                "batch_size": args.batch_size,
                "epochs": args.epochs,
                "learning_rate": args.learning_rate,
                "optimizer": "adam",
                "progress": False,
                **PINNED_TRAIN,
            },
            "export": {"enabled": False},
        },
        in_memory=True,
    )


def in_memory_dataset(
    columns: dict[str, np.ndarray], batch_size: int, epochs: int, seed: int
) -> tuple[tf.data.Dataset, int]:
    """``epochs`` passes of full batches, each over a new permutation of the rows.

    The permutation of epoch ``e`` is ``stateless_shuffle(seed=(seed, e))``;
    the last ``rows % batch_size`` rows of each permutation are left out.

    Returns:
      ``(dataset, steps_per_epoch)``; the dataset yields flat dict batches.
    """
    names = list(columns)
    rows = len(columns[names[0]])
    steps = rows // batch_size
    if steps < 1:
        raise ValueError(
            f"`batch_size` must be <= the number of rows ({rows}). Received: "
            f"`batch_size={batch_size}`"
        )
    matrix = tf.constant(np.stack([columns[n] for n in names], axis=1))

    def epoch_batches(epoch):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(rows, dtype=tf.int64),
            seed=tf.stack([tf.constant(seed, tf.int64), epoch]),
        )
        batches = tf.reshape(order[: steps * batch_size], (steps, batch_size))
        return tf.data.Dataset.from_tensor_slices(batches)

    def gather(index):
        batch = tf.gather(matrix, index)
        return {name: batch[:, j] for j, name in enumerate(names)}

    dataset = (
        tf.data.Dataset.range(epochs)
        .flat_map(epoch_batches)
        .map(gather)
        .prefetch(tf.data.AUTOTUNE)
    )
    return dataset, steps


def _columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {c: frame[c].to_numpy(np.float32) for c in [*FEATURES, *TASKS.values()]}


def fit_in_memory(
    prepared: Prepared,
    config,
    train_columns: dict[str, np.ndarray],
    test_columns: dict[str, np.ndarray],
    steps_per_execution: int,
) -> dict:
    """Builds the config's model as ``mtrec train`` does and fits it from memory.

    ``prepared`` is ``mtrec.training.prepare`` of the data set (features,
    tasks and preprocessing, shared by every model and seed of it);
    ``train_columns`` and ``test_columns`` map every feature and label column
    to its values (``_columns``).

    Seeded with ``config.seed`` (initialisation and row order). Timed: only
    ``model.fit`` per epoch (``EpochTimer``).

    Returns:
      ``test_mse`` and ``train_mse`` (``{task: MSE}`` of the final weights),
      ``train_loss`` (``{task: [running mean MSE per epoch]}``),
      ``epoch_seconds``, ``examples_per_second`` (epochs 2.., after tracing),
      ``parameters``.
    """
    tf.keras.backend.clear_session()
    config = dataclasses.replace(
        config,
        train=dataclasses.replace(
            config.train, steps_per_execution=steps_per_execution
        ),
    )
    model = build_model(prepared, config)
    compile_model(model, config)
    batch_size, epochs = config.train.batch_size, config.train.epochs
    dataset, steps = in_memory_dataset(train_columns, batch_size, epochs, config.seed)
    timer = EpochTimer()
    history = model.fit(
        dataset, epochs=epochs, steps_per_epoch=steps, callbacks=[timer], verbose=0
    )

    def mse(columns: dict[str, np.ndarray]) -> dict[str, float]:
        inputs = {name: columns[name] for name in FEATURES}
        predictions = model.predict(inputs, batch_size=8192, verbose=0)
        return {
            task: float(np.mean((predictions[task].reshape(-1) - columns[label]) ** 2))
            for task, label in TASKS.items()
        }

    steady = timer.seconds[1:] or timer.seconds
    return {
        "test_mse": mse(test_columns),
        "train_mse": mse(train_columns),
        "train_loss": {
            task: [float(x) for x in history.history[f"{task}_loss"]] for task in TASKS
        },
        "epoch_seconds": [round(s, 3) for s in timer.seconds],
        "examples_per_second": round(steps * batch_size * len(steady) / sum(steady)),
        "parameters": parameter_counts(model)["total"],
    }


def linear_r2(frame: pd.DataFrame, label: str) -> float:
    """Share of the label's variance a least-squares linear model of x explains."""
    x = np.column_stack([frame[FEATURES].to_numpy(), np.ones(len(frame))])
    y = frame[label].to_numpy()
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    return float(1.0 - np.var(y - x @ coef) / np.var(y))


def run(args) -> list[dict]:
    """Every correlation, seed and model; one record per fit."""
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        for p in args.correlations:
            for seed in args.seeds:
                frame = generate_mmoe_regression(
                    args.train_rows + args.test_rows,
                    p,
                    seed,
                    input_dim=INPUT_DIM,
                    alpha_std=args.alpha_std,
                )
                raw_train = frame.iloc[: args.train_rows]
                (train, test), stats = standardize_labels(
                    raw_train, frame.iloc[args.train_rows :]
                )
                data = {
                    "label_correlation": round(float(train["y1"].corr(train["y2"])), 4),
                    "label_variance": {
                        label: round(std**2, 4) for label, (_, std) in stats.items()
                    },
                    "linear_r2": {
                        label: round(linear_r2(raw_train, label), 4)
                        for label in TASKS.values()
                    },
                }
                train_columns, test_columns = _columns(train), _columns(test)
                # Features, tasks and preprocessing are the same for every model.
                prepared = prepare(
                    make_config("shared_bottom", {"units": [1]}, seed, args),
                    train=train_columns,
                    eval=test_columns,
                    preprocessing_dir=pathlib.Path(tmp) / f"p{p}-seed{seed}",
                )
                for name, (backbone, backbone_args) in models(args.width).items():
                    config = make_config(backbone, backbone_args, seed, args)
                    result = fit_in_memory(
                        prepared,
                        config,
                        train_columns,
                        test_columns,
                        args.steps_per_execution,
                    )
                    records.append(
                        {"p": str(p), "seed": seed, "model": name, **data, **result}
                    )
                    logger.info(
                        "p=%s seed=%d %s: test MSE %s, final train loss %s, %.1f s",
                        p,
                        seed,
                        name,
                        {t: round(v, 4) for t, v in result["test_mse"].items()},
                        {t: round(v[-1], 4) for t, v in result["train_loss"].items()},
                        sum(result["epoch_seconds"]),
                    )
    return records


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(1, 11)))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--learning-rate", type=float, default=0.002)
    parser.add_argument("--train-rows", type=int, default=102_400)
    parser.add_argument("--test-rows", type=int, default=20_000)
    parser.add_argument(
        "--correlations", type=float, nargs="+", default=[0.5, 0.9, 1.0]
    )
    parser.add_argument("--steps-per-execution", type=int, default=16)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="TensorFlow intra- and inter-op threads (default: TensorFlow's)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 2 epochs, 2 seeds, 10,240 train / 2,000 test rows",
    )
    parser.add_argument(
        "--width",
        type=int,
        default=WIDTH,
        help="first-layer units: shared-bottom's, and the 8 experts' in all "
        f"(default {WIDTH}, the paper's)",
    )
    parser.add_argument(
        "--alpha-std",
        type=float,
        default=ALPHA_STD,
        help="std of the sine frequencies alpha (default 1.0); higher values "
        "make the labels oscillate faster along w^T x, a harder fit",
    )
    parser.add_argument("--out", type=pathlib.Path)
    parser.add_argument(
        "--doc", type=pathlib.Path, default=REPO / "docs" / "benchmarks.md"
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="recompute the verdict and the markdown from --out without training",
    )
    args = parser.parse_args(argv)
    try:
        models(args.width)  # validates the width before any work
    except ValueError as error:
        parser.error(str(error))
    if not (np.isfinite(args.alpha_std) and args.alpha_std > 0):
        parser.error(f"--alpha-std must be > 0. Received: {args.alpha_std}")
    if args.out is None:
        args.out = results_path(args.width, args.alpha_std)
    if args.report_only:
        report = json.loads(args.out.read_text())
        report["verdict"] = verdict(report["results"])
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        update_docs(report, args.out, args.doc)
        print(json.dumps(report, indent=2))
        return report
    if args.quick:
        args.epochs, args.seeds = 2, args.seeds[:2]
        args.train_rows, args.test_rows = 10_240, 2_000
    if args.threads is not None:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    info = machine()
    started = time.perf_counter()
    records = run(args)
    results = summarise(records)
    report = {
        "benchmark": "mmoe_synthetic",
        "data": "generate_mmoe_regression(train_rows + test_rows, p, seed, "
        "input_dim=100, c=1.0, num_sin=10, noise_std=0.01, "
        f"alpha_std={args.alpha_std}); labels standardised "
        "with the train rows' mean and std (standardize_labels)",
        "budget": {
            "train_rows": args.train_rows,
            "test_rows": args.test_rows,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "steps": args.train_rows // args.batch_size * args.epochs,
            "learning_rate": args.learning_rate,
            "optimizer": "adam",
            "seeds": args.seeds,
            "tower_units": TOWER_UNITS,
            "width": args.width,
            "alpha_std": args.alpha_std,
            "epoch_selection": "none (final epoch)",
            "input_pipeline": "in memory, steps_per_execution="
            f"{args.steps_per_execution}",
            "threads": args.threads,
        },
        "models": {
            name: {"backbone": b, "backbone_args": a}
            for name, (b, a) in models(args.width).items()
        },
        "quick": args.quick,
        **info,
        "results": results,
        "verdict": verdict(results),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    update_docs(report, args.out, args.doc)
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
