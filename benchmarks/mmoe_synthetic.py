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
import statistics
import tempfile
import time

import mtrec  # noqa: F401  (the Keras switch, before TensorFlow)

# isort: split
import numpy as np
import pandas as pd
import tensorflow as tf
from throughput import PINNED_TRAIN
from throughput import REPO
from throughput import EpochTimer
from throughput import machine
from throughput import parameter_counts
from throughput import peak_rss_mb
from throughput import update_doc_section

from mtrec.data import generate_mmoe_regression
from mtrec.data import standardize_labels
from mtrec.training import Prepared
from mtrec.training import build_model
from mtrec.training import compile_model
from mtrec.training import load_config
from mtrec.training import prepare

RESULTS = REPO / "benchmarks" / "results" / "mmoe_synthetic.json"
INPUT_DIM = 100
FEATURES = [f"x{i}" for i in range(INPUT_DIM)]

#: The paper's first-layer width: shared-bottom's units, 8 experts' units in all.
WIDTH = 128
NUM_EXPERTS = 8


def models(width: int = WIDTH) -> dict[str, tuple[str, dict]]:
    """Model name -> (backbone, backbone_args), all with ``width`` first-layer units.

    Shared-bottom: one ``width``-unit layer; OMoE and MMoE: 8 experts of one
    ``width / 8``-unit layer each.
    """
    if width < NUM_EXPERTS or width % NUM_EXPERTS:
        raise ValueError(
            f"`width` must be a positive multiple of {NUM_EXPERTS}. "
            f"Received: `width={width}`"
        )
    experts = {"num_experts": NUM_EXPERTS, "expert_units": [width // NUM_EXPERTS]}
    return {
        "shared_bottom": ("shared_bottom", {"units": [width]}),
        "omoe": ("omoe", dict(experts)),
        "mmoe": ("mmoe", dict(experts)),
    }


#: The default std of the sine frequencies alpha (as public reproductions use).
ALPHA_STD = 1.0


def is_default_setting(width: int, alpha_std: float) -> bool:
    """The paper's sizes on the default data: the setting with its own section."""
    return width == WIDTH and alpha_std == ALPHA_STD


def results_path(width: int = WIDTH, alpha_std: float = ALPHA_STD) -> pathlib.Path:
    """``results/mmoe_synthetic[_width<W>][_alpha<A>].json`` for a setting."""
    name = "mmoe_synthetic"
    if width != WIDTH:
        name += f"_width{width}"
    if alpha_std != ALPHA_STD:
        name += f"_alpha{alpha_std:g}"
    return RESULTS.with_name(f"{name}.json")


def setting_label(width: int, alpha_std: float) -> str:
    """How a setting is named in the docs, e.g. ``width 32, alpha_std 3``."""
    return (
        f"width {width}{' (paper)' if width == WIDTH else ''}, "
        f"alpha_std {alpha_std:g}{' (default)' if alpha_std == ALPHA_STD else ''}"
    )


TOWER_UNITS = [8]
#: Task name -> label column (a task must not share its label's name).
TASKS = {"task1": "y1", "task2": "y2"}
#: A run whose test MSE (standardised) exceeds this on a task is counted as
#: not having learnt that task (converged runs reach about 0.001-0.01).
STUCK_MSE = 0.1
#: Epochs (1-based) of the training-loss curve shown in the doc.
CURVE_EPOCHS = (1, 2, 3, 5, 10, 20)

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


def mean_std(values: list[float], digits: int = 5) -> dict:
    return {
        "mean": round(statistics.fmean(values), digits),
        "std": round(statistics.stdev(values), digits) if len(values) > 1 else 0.0,
        "median": round(statistics.median(values), digits),
        "per_seed": [round(v, digits) for v in values],
    }


def both_tasks(per_task: dict[str, float]) -> float:
    return statistics.fmean(per_task[t] for t in TASKS)


def summarise(records: list[dict]) -> dict:
    """``{p: {model: summary}}``; every list in seed order."""
    results: dict[str, dict] = {}
    for r in sorted(records, key=lambda r: r["seed"]):
        results.setdefault(r["p"], {}).setdefault(r["model"], []).append(r)
    for models in results.values():
        for name, runs in models.items():
            # Per seed, the per-epoch training loss of both tasks.
            epochs = len(runs[0]["train_loss"]["task1"])
            curves = [
                [
                    both_tasks({t: r["train_loss"][t][e] for t in TASKS})
                    for e in range(epochs)
                ]
                for r in runs
            ]
            models[name] = {
                "seeds": [r["seed"] for r in runs],
                "test_mse": {
                    t: mean_std([r["test_mse"][t] for r in runs]) for t in TASKS
                },
                "test_mse_both_tasks": mean_std(
                    [both_tasks(r["test_mse"]) for r in runs]
                ),
                "train_loss_last_epoch": {
                    t: mean_std([r["train_loss"][t][-1] for r in runs]) for t in TASKS
                },
                "train_loss_both_tasks": mean_std([curve[-1] for curve in curves]),
                "runs_with_a_task_above": {
                    "threshold": STUCK_MSE,
                    "seeds": [
                        r["seed"]
                        for r in runs
                        if max(r["test_mse"].values()) > STUCK_MSE
                    ],
                },
                "train_mse_final_weights": mean_std(
                    [both_tasks(r["train_mse"]) for r in runs]
                ),
                # Per seed: the mean of the per-epoch training loss (both
                # tasks) over all epochs, a summary of the whole curve.
                "train_loss_along_training": mean_std(
                    [statistics.fmean(curve) for curve in curves]
                ),
                "train_loss_curves": [[round(x, 5) for x in c] for c in curves],
                # Mean over seeds of the per-epoch training loss (both tasks).
                "train_loss_curve": [
                    round(statistics.fmean(epoch), 5) for epoch in zip(*curves)
                ],
                "label_correlation": [r["label_correlation"] for r in runs],
                "label_variance": [r["label_variance"] for r in runs],
                "linear_r2": [r["linear_r2"] for r in runs],
                "fit_seconds": round(
                    statistics.fmean(sum(r["epoch_seconds"]) for r in runs), 2
                ),
                "examples_per_second": round(
                    statistics.fmean(r["examples_per_second"] for r in runs)
                ),
                "parameters": runs[0]["parameters"],
            }
    return results


def _paired(a: list[float], b: list[float]) -> dict:
    """``a - b`` paired by seed: mean, std, standard error, median, count > 0."""
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    std = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
    return {
        "mean": round(statistics.fmean(diffs), 5),
        "std": round(std, 5),
        "se": round(std / len(diffs) ** 0.5, 5),
        "median": round(statistics.median(diffs), 5),
        "positive": sum(d > 0 for d in diffs),
        "n": len(diffs),
        "per_seed": [round(d, 5) for d in diffs],
    }


def gap_analysis(results: dict, metric: str, baseline: str = "shared_bottom") -> dict:
    """MMoE's advantage over ``baseline`` on ``metric``, and how it moves with p.

    ``advantage[p]``: ``metric(baseline) - metric(mmoe)`` paired by seed
    (positive: MMoE better), with ``relative`` = mean advantage / mean baseline.
    ``trend_on_means``: the mean advantage strictly grows as ``p`` falls.
    ``growth``: the per-seed ``advantage(lowest p) - advantage(highest p)``
    (same seed: same ``y1``, inputs and initialisation), and its standard error.
    """

    def values(p: str, model: str) -> list[float]:
        return results[p][model][metric]["per_seed"]

    ps = sorted(results, key=float)  # lowest correlation first
    advantage = {p: _paired(values(p, baseline), values(p, "mmoe")) for p in ps}
    for p in ps:
        base = statistics.fmean(values(p, baseline))
        advantage[p]["relative"] = round(advantage[p]["mean"] / base, 4)
    means = [advantage[p]["mean"] for p in ps]
    growth = _paired(advantage[ps[0]]["per_seed"], advantage[ps[-1]]["per_seed"])
    return {
        "metric": metric,
        "baseline": baseline,
        "advantage": advantage,
        "trend_on_means": all(a > b for a, b in zip(means, means[1:])),
        "growth_lowest_vs_highest_p": growth,
    }


def trend_status(analysis: dict) -> str:
    """The paper's trend in a :func:`gap_analysis`, as :func:`verdict` defines it."""
    low = min(analysis["advantage"], key=float)
    growth = analysis["growth_lowest_vs_highest_p"]
    if not analysis["trend_on_means"]:
        return "not reproduced"
    if analysis["advantage"][low]["mean"] > 0 and growth["mean"] > 2 * growth["se"]:
        return "reproduced"
    return "direction only"


def verdict(results: dict) -> dict:
    """Whether MMoE's advantage over shared-bottom grows as the correlation falls.

    On the test MSE of both tasks (standardised labels), paired by seed:

    * ``reproduced``: the mean advantage grows strictly as ``p`` falls, MMoE is
      better at the lowest ``p``, and the per-seed growth from the highest to
      the lowest ``p`` exceeds twice its standard error.
    * ``direction only``: the means are ordered as in the paper, but the growth
      is within two standard errors (or MMoE is not better at the lowest ``p``).
    * ``not reproduced``: the mean advantage does not grow as ``p`` falls.

    The same analysis on the final training loss (the paper's quantity), on
    the training loss along training (each seed's mean over all epochs: the
    whole curve, as the paper compares curves; absent from results made
    before it was recorded) and against OMoE is reported alongside.
    """
    test = gap_analysis(results, "test_mse_both_tasks")
    train = gap_analysis(results, "train_loss_both_tasks")
    omoe = gap_analysis(results, "test_mse_both_tasks", baseline="omoe")
    along = (
        gap_analysis(results, "train_loss_along_training")
        if all(
            "train_loss_along_training" in m
            for models in results.values()
            for m in models.values()
        )
        else None
    )
    ps = sorted(results, key=float)
    low, high = ps[0], ps[-1]

    degradation = {
        m: _paired(
            results[low][m]["test_mse_both_tasks"]["per_seed"],
            results[high][m]["test_mse_both_tasks"]["per_seed"],
        )
        for m in results[low]
    }

    def describe(analysis: dict, what: str) -> str:
        adv = analysis["advantage"]
        growth = analysis["growth_lowest_vs_highest_p"]
        values = ", ".join(f"{adv[p]['mean']:+.5f} at p={p}" for p in ps)
        ordered = "ordered" if analysis["trend_on_means"] else "not ordered"
        return (
            f"on {what}, MMoE's mean advantage over "
            f"{analysis['baseline'].replace('_', '-')} is {values} ({ordered} as "
            f"in the paper); growth from p={high} to p={low} {growth['mean']:+.5f} ± "
            f"{growth['se']:.5f} (standard error, paired by seed, "
            f"{growth['positive']}/{growth['n']} seeds positive)"
        )

    summary = (
        "O"
        + describe(test, "the test MSE")[1:]
        + ". O"
        + describe(train, "the final training loss")[1:]
        + (
            ". O" + describe(along, "the training loss along training")[1:]
            if along
            else ""
        )
        + f". Degradation of the test MSE from p={high} to p={low} (paired): "
        + ", ".join(
            f"{m.replace('_', '-')} {d['mean']:+.5f} ± {d['se']:.5f}"
            for m, d in degradation.items()
        )
    )
    return {
        "status": trend_status(test),
        "status_train_loss": trend_status(train),
        "status_versus_omoe": trend_status(omoe),
        "status_along_training": trend_status(along) if along else None,
        "summary": summary,
        "test_mse": test,
        "train_loss": train,
        "train_loss_along_training": along,
        "versus_omoe_test_mse": omoe,
        "degradation_test_mse": degradation,
    }


def markdown(report: dict) -> str:
    budget = report["budget"]
    results = report["results"]
    ps = sorted(results, key=float, reverse=True)
    first = results[ps[0]][next(iter(results[ps[0]]))]
    epochs = len(first["train_loss_curve"])
    steps = budget["train_rows"] // budget["batch_size"] * budget["epochs"]
    width = budget.get("width", WIDTH)
    alpha_std = budget.get("alpha_std", ALPHA_STD)
    default = is_default_setting(width, alpha_std)
    lines = [
        "## MMoE synthetic"
        + ("" if default else f" ({setting_label(width, alpha_std)})"),
        "",
        f"Models: shared-bottom one {width}-unit layer; OMoE and MMoE "
        f"{NUM_EXPERTS} experts of one {width // NUM_EXPERTS}-unit layer"
        + (" (the paper's sizes)" if width == WIDTH else "")
        + f"; one {TOWER_UNITS[0]}-unit tower per task.",
        "",
        f"`python benchmarks/mmoe_synthetic.py{command_flags(width, alpha_std)}` "
        f"({'--quick, ' if report['quick'] else ''}{budget['train_rows']:,} train "
        f"/ {budget['test_rows']:,} test rows per correlation and seed, "
        f"{budget['epochs']} epochs of batch {budget['batch_size']} "
        f"({steps:,} Adam steps, lr {budget['learning_rate']}), "
        f"{len(budget['seeds'])} seeds {budget['seeds']}; one core, wall time "
        f"{report['wall_seconds'] / 60:.1f} min). Data of the MMoE paper (Ma et "
        "al., KDD 2018): 100 inputs, `c = 1`, 10 sine terms with alpha ~ "
        f"N(0, {alpha_std:g}²), beta ~ N(0, 1) drawn per seed, noise std 0.01; "
        "labels standardised with the "
        "training rows' statistics, so an MSE is the share of the label variance "
        "left unexplained. Each seed draws new data and a new initialisation; for "
        "a seed, `y1`, the inputs and the initialisation are the same at every "
        "correlation p. Mean ± std over seeds (median in brackets); train loss: "
        "the final epoch's running mean, both tasks.",
        "",
        "| p | model | test MSE task1 | test MSE task2 | test MSE both "
        f"(median) | train loss | runs with a task > {STUCK_MSE} | params |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for p in ps:
        for name, m in results[p].items():
            mse = m["test_mse"]
            both = m["test_mse_both_tasks"]
            train = m["train_loss_both_tasks"]
            lines.append(
                f"| {p} | {name} | {mse['task1']['mean']:.4f} ± "
                f"{mse['task1']['std']:.4f} | {mse['task2']['mean']:.4f} ± "
                f"{mse['task2']['std']:.4f} | {both['mean']:.4f} ± "
                f"{both['std']:.4f} ({both['median']:.4f}) | "
                f"{train['mean']:.4f} ± {train['std']:.4f} | "
                f"{len(m['runs_with_a_task_above']['seeds'])}/{len(m['seeds'])} | "
                f"{m['parameters']:,} |"
            )
    v = report["verdict"]
    lines += [
        "",
        "MMoE's advantage over shared-bottom, `MSE(shared-bottom) - MSE(MMoE)` "
        "paired by seed (positive: MMoE better); relative to shared-bottom's "
        "mean; wins: seeds where MMoE is better.",
        "",
        "| p | test MSE advantage (mean ± std) | median | relative | wins | "
        "final train loss advantage (mean ± std) | wins | along-training loss "
        "advantage (mean ± std) | wins |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    along = v.get("train_loss_along_training")
    for p in ps:
        a = v["test_mse"]["advantage"][p]
        t = v["train_loss"]["advantage"][p]
        c = along["advantage"][p] if along else None
        lines.append(
            f"| {p} | {a['mean']:+.5f} ± {a['std']:.5f} | {a['median']:+.5f} | "
            f"{a['relative']:+.1%} | {a['positive']}/{a['n']} | "
            f"{t['mean']:+.5f} ± {t['std']:.5f} | {t['positive']}/{t['n']} | "
            + (
                f"{c['mean']:+.5f} ± {c['std']:.5f} | {c['positive']}/{c['n']} |"
                if c
                else "not recorded | |"
            )
        )
    shown = [e for e in CURVE_EPOCHS if e <= epochs]
    if epochs not in shown:
        shown.append(epochs)
    lines += [
        "",
        "Along-training loss: each seed's training loss (both tasks) averaged "
        "over all epochs, a summary of the whole curve as the paper compares "
        "curves.",
        "",
        "Training loss by epoch (running mean over the epoch, both tasks, mean "
        "over seeds):",
        "",
        "| p | model | " + " | ".join(f"epoch {e}" for e in shown) + " |",
        "|---:|---|" + "---:|" * len(shown),
    ]
    for p in ps:
        for name, m in results[p].items():
            curve = m["train_loss_curve"]
            lines.append(
                f"| {p} | {name} | "
                + " | ".join(f"{curve[e - 1]:.4f}" for e in shown)
                + " |"
            )
    lines += [
        "",
        f"**Paper's finding (MMoE's advantage over shared-bottom grows as the "
        f"correlation falls), on the test MSE: {v['status']}; on the final "
        f"training loss: {v['status_train_loss']}"
        + (
            f"; on the training loss along training: {v['status_along_training']}"
            if v.get("status_along_training")
            else ""
        )
        + f".** {v['summary']}.",
        "",
        "`reproduced` needs the mean advantages ordered as in the paper, MMoE "
        "better at the lowest p, and the per-seed growth of the advantage from "
        "the highest to the lowest p beyond two standard errors; `direction "
        "only` when the means are ordered but that test fails. The paper "
        "averages training-loss curves over 200 runs. Per-seed numbers (and each "
        "seed's label variance and linear R², a measure of how hard the task "
        "directions are to find) are in "
        f"`benchmarks/results/{results_path(width, alpha_std).name}`.",
        "",
    ]
    return "\n".join(lines)


def command_flags(width: int, alpha_std: float) -> str:
    """The command-line flags that select a setting (empty for the default)."""
    flags = "" if width == WIDTH else f" --width {width}"
    return flags + ("" if alpha_std == ALPHA_STD else f" --alpha-std {alpha_std:g}")


def _setting(report: dict) -> tuple[int, float]:
    budget = report["budget"]
    return budget.get("width", WIDTH), budget.get("alpha_std", ALPHA_STD)


def variants_markdown(reports: list[dict]) -> str:
    """One table over settings (model width, alpha_std): is the paper's trend there?

    ``reports``: the JSON reports of full runs, one per setting; shown in the
    order: default data first, then by ``alpha_std``, wider models first.
    """
    reports = sorted(reports, key=lambda r: (_setting(r)[1], -_setting(r)[0]))
    lines = [
        "## MMoE synthetic: other settings",
        "",
        "The same experiment with narrower models (`--width W`: shared-bottom "
        "one W-unit layer, experts W/8 units each) or harder labels "
        "(`--alpha-std A`: sine frequencies alpha ~ N(0, A²), so each label "
        "oscillates faster along w^T x and the models no longer fit it almost "
        "exactly). Test MSE of both tasks (standardised labels), mean over "
        "seeds; MMoE's advantage over shared-bottom paired by seed, with the "
        "seeds where MMoE is better.",
        "",
        "| setting | seeds | p | shared-bottom | OMoE | MMoE | MMoE advantage | wins |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for report in reports:
        label = setting_label(*_setting(report))
        results, v = report["results"], report["verdict"]
        for p in sorted(results, key=float, reverse=True):
            means = {m: r["test_mse_both_tasks"]["mean"] for m, r in results[p].items()}
            a = v["test_mse"]["advantage"][p]
            lines.append(
                f"| {label} | {a['n']} | {p} | {means['shared_bottom']:.4f} | "
                f"{means['omoe']:.4f} | {means['mmoe']:.4f} | {a['mean']:+.4f} | "
                f"{a['positive']}/{a['n']} |"
            )
    lines += [
        "",
        "Per setting: the paper's finding on the test MSE, the growth of MMoE's "
        "advantage from the highest to the lowest p, and how much each model "
        "loses from the highest to the lowest p (mean ± standard error, paired "
        "by seed; positive: worse at the lowest p).",
        "",
    ]
    for report in reports:
        width, alpha_std = _setting(report)
        v = report["verdict"]
        growth = v["test_mse"]["growth_lowest_vs_highest_p"]
        omoe = v["versus_omoe_test_mse"]["growth_lowest_vs_highest_p"]
        along = v.get("train_loss_along_training")
        curve = (
            f"on the training loss along training: {trend_status(along)}, growth "
            f"{along['growth_lowest_vs_highest_p']['mean']:+.4f} ± "
            f"{along['growth_lowest_vs_highest_p']['se']:.4f}"
            if along
            else "along training: not recorded in this run"
        )
        loss = ", ".join(
            f"{m.replace('_', '-')} {d['mean']:+.4f} ± {d['se']:.4f}"
            for m, d in v["degradation_test_mse"].items()
        )
        lines.append(
            f"- {setting_label(width, alpha_std)} "
            f"(`{results_path(width, alpha_std).name}`, "
            f"{report['wall_seconds'] / 60:.0f} min): **{v['status']}**; growth "
            f"{growth['mean']:+.4f} ± {growth['se']:.4f}; against OMoE instead "
            f"of shared-bottom: {trend_status(v['versus_omoe_test_mse'])}, growth "
            f"{omoe['mean']:+.4f} ± {omoe['se']:.4f}; {curve}; loss {loss}."
        )
    lines.append("")
    return "\n".join(lines)


def _load_report(path: pathlib.Path) -> dict:
    """A results JSON; ValueError naming the file, line and column if it is broken."""
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path} is not valid JSON (line {error.lineno}, column {error.colno}: "
            f"{error.msg}); rerun the setting that wrote it or remove it"
        ) from None


def update_docs(report: dict, out: pathlib.Path, doc: pathlib.Path) -> None:
    """Rewrites the doc sections fed by a run whose JSON was written to ``out``.

    The default setting's own section, if ``report`` is of it; always the
    variants table, over every full (not ``--quick``) report named
    ``mmoe_synthetic*.json`` beside ``out`` (``out`` included).
    """
    if is_default_setting(*_setting(report)):
        update_doc_section(doc, "mmoe-synthetic", markdown(report))
    reports = [
        _load_report(path) for path in sorted(out.parent.glob("mmoe_synthetic*.json"))
    ]
    reports = [
        r
        for r in reports
        if r.get("benchmark") == "mmoe_synthetic" and not r.get("quick")
    ]
    if reports:
        update_doc_section(doc, "mmoe-synthetic-variants", variants_markdown(reports))


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
