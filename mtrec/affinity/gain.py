"""Did multi-task training pay off? The MTL gain report.

``compare`` trains the configured multi-task model and one single-task model
per task with the same budget (epochs, batch size, selection, optimiser,
backbone) and the same seeds, then reports per task the held-out metric
(mean ± standard deviation over seeds) of each side and

* the **MTL gain** ``G_t = M_multi,t - M_single,t`` (Tang et al., "Progressive
  Layered Extraction (PLE)", RecSys 2020, Table 3's definition), with the
  standard error ``SE_t = sqrt(s_m^2 / n + s_s^2 / n)`` over ``n`` seeds;
* **negative transfer** where ``G_t + SE_t < 0`` (the gain is below zero by
  more than its standard error; with one seed, where ``G_t < 0``, flagged as
  having no error estimate);
* the average relative gain **Δm** ``= (100 / T) Σ_t (-1)^{l_t} (M_multi,t -
  M_single,t) / M_single,t`` (Maninis et al., CVPR 2019; LibMTL's ``Δm``),
  ``l_t = 1`` when lower is better (log loss, RMSE);
* each side's parameter count (the single side sums its models) and training
  cost (wall seconds, optimiser steps).

A single-task model of a task conditioned on another label (ESMM's CVR on
``click``) is trained on the rows where the condition holds: the naive CVR
model ESMM is measured against.
"""

import dataclasses
import json
import logging
import math
import os
import pathlib
import time
from collections.abc import Sequence

import numpy as np

from mtrec.training.config import RunConfig
from mtrec.training.config import WeightingConfig
from mtrec.training.config import validate_config
from mtrec.training.run import train

logger = logging.getLogger(__name__)

#: Metrics where lower is better (``l_t = 1`` in Δm).
LOWER_IS_BETTER = frozenset({"logloss", "rmse", "mae", "ece"})


def single_task_config(config: RunConfig, task: str) -> RunConfig:
    """``config`` reduced to one task: a ``multi_task`` model with one tower.

    Everything that sets the budget stays (train, data, backbone, towers);
    the loss weighting is ``fixed`` (one task), selection on ``auto`` when the
    configured metric names other outputs, and only the task's oracle column.

    Raises:
      ValueError: ``task`` is not a task of ``config``.
    """
    names = [t["name"] for t in config.tasks]
    if task not in names:
        raise ValueError(f"`task` must be one of {names}. Received: `task={task!r}`")
    entry = dict(config.tasks[names.index(task)])
    selection = config.train.selection
    metric = selection.metric
    terms = [metric] if isinstance(metric, str) else list(metric or [])
    if metric not in (None, "auto") and any(
        not term.startswith(f"{task}.") for term in terms
    ):
        selection = dataclasses.replace(selection, metric="auto")
    labels = {entry["label"], entry.get("condition")}
    requires = {
        child: parent
        for child, parent in config.data.label_requires.items()
        if child in labels and parent in labels
    }
    return dataclasses.replace(
        config,
        name=f"{config.name}-single-{task}",
        tasks=[entry],
        data=dataclasses.replace(config.data, label_requires=requires),
        model=dataclasses.replace(config.model, architecture="multi_task"),
        weighting=WeightingConfig(),
        train=dataclasses.replace(config.train, selection=selection),
        eval=dataclasses.replace(
            config.eval,
            oracle={k: v for k, v in config.eval.oracle.items() if k == task},
        ),
    )


@dataclasses.dataclass(frozen=True)
class SideResult:
    """One side (multi or single) over the seeds."""

    #: ``{task: [metric per seed]}``.
    values: dict
    #: Trainable and non-trainable parameters (summed over the single models).
    parameters: int
    #: Wall seconds of training, evaluation and export, summed over seeds.
    seconds: float
    #: Optimiser steps, summed over seeds (and models).
    steps: int


def _fit(config: RunConfig, run_dir: pathlib.Path) -> tuple[dict, int, float, int]:
    start = time.perf_counter()
    result = train(config, run_dir=run_dir, overwrite=True)
    seconds = time.perf_counter() - start
    return (
        result.metrics["eval"],
        int(result.model.count_params()),
        seconds,
        int(result.metrics.get("optimizer_steps", 0)),
    )


def compare(
    config: RunConfig,
    seeds: Sequence[int] = (0,),
    out_dir: str | os.PathLike = "compare",
    metric: str = "auc",
) -> dict:
    """Trains both sides for every seed and returns the gain report.

    Args:
      config: the multi-task run (export is switched off for every model).
      seeds: one run of each side per seed (``config.seed`` is replaced).
      out_dir: run directories (``multi-seed<s>``, ``single-<task>-seed<s>``)
        and ``report.json`` / ``report.md``.
      metric: the held-out metric per task (``auc``, ``gauc``, ``logloss``...).

    Returns:
      The report (also written to ``out_dir``): ``tasks`` (per task: both
      sides' values, mean, std, ``gain``, ``se``, ``negative_transfer``),
      ``delta_m``, ``multi`` / ``single`` (parameters, seconds, steps).
    """
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"`seeds` must be distinct and non-empty. Received: {seeds}")
    validate_config(config)
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = dataclasses.replace(
        config, export=dataclasses.replace(config.export, enabled=False)
    )
    tasks = [t["name"] for t in config.tasks]
    multi = {t: [] for t in tasks}
    single = {t: [] for t in tasks}
    cost = {"multi": [0, 0.0, 0], "single": [0, 0.0, 0]}
    for seed in seeds:
        seeded = dataclasses.replace(config, seed=seed)
        report, params, seconds, steps = _fit(seeded, out / f"multi-seed{seed}")
        for task in tasks:
            multi[task].append(_metric(report, task, metric))
        cost["multi"] = [params, cost["multi"][1] + seconds, cost["multi"][2] + steps]
        single_params = 0
        for task in tasks:
            run = single_task_config(seeded, task)
            report, params, seconds, steps = _fit(
                run, out / f"single-{task}-seed{seed}"
            )
            single[task].append(_metric(report, task, metric))
            single_params += params
            cost["single"][1] += seconds
            cost["single"][2] += steps
        cost["single"][0] = single_params
    result = gain_report(multi, single, metric)
    for side in ("multi", "single"):
        params, seconds, steps = cost[side]
        result[side] = {"parameters": params, "seconds": seconds, "steps": steps}
    result["seeds"] = seeds
    (out / "report.json").write_text(json.dumps(result, indent=2))
    (out / "report.md").write_text(gain_table(result) + "\n")
    logger.info("gain report written to %s", out)
    return result


def _metric(report: dict, task: str, metric: str) -> float | None:
    value = report.get(task, {}).get(metric)
    return None if value is None else float(value)


def _mean_std(values: list) -> tuple[float | None, float | None]:
    known = [v for v in values if v is not None]
    if len(known) != len(values) or not known:
        return None, None
    std = float(np.std(known, ddof=1)) if len(known) > 1 else None
    return float(np.mean(known)), std


def gain_report(multi: dict, single: dict, metric: str) -> dict:
    """Per-task gains, standard errors, negative transfer and Δm.

    Args:
      multi: ``{task: [metric per seed]}`` of the multi-task model.
      single: the same of the single-task models (same seeds, same order).
      metric: the metric's name (its direction sets ``l_t``).

    Example:

    >>> r = gain_report({"a": [0.80, 0.82], "b": [0.60, 0.62]},
    ...                 {"a": [0.78, 0.80], "b": [0.66, 0.68]}, "auc")
    >>> round(r["tasks"]["a"]["gain"], 4), r["tasks"]["b"]["negative_transfer"]
    (0.02, True)
    >>> round(r["delta_m"], 2)
    -3.21
    """
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    tasks, relative = {}, []
    for task in multi:
        m_mean, m_std = _mean_std(multi[task])
        s_mean, s_std = _mean_std(single[task])
        entry = {
            "multi": multi[task],
            "single": single[task],
            "multi_mean": m_mean,
            "multi_std": m_std,
            "single_mean": s_mean,
            "single_std": s_std,
            "gain": None,
            "se": None,
            "negative_transfer": None,
        }
        if m_mean is not None and s_mean is not None:
            gain = m_mean - s_mean
            n = len(multi[task])
            se = (
                math.sqrt((m_std**2 + s_std**2) / n)
                if m_std is not None and s_std is not None
                else None
            )
            better = sign * gain
            entry.update(
                gain=gain,
                se=se,
                negative_transfer=bool(better + (se or 0.0) < 0),
            )
            if s_mean:
                relative.append(100.0 * sign * gain / s_mean)
        tasks[task] = entry
    delta_m = float(np.mean(relative)) if len(relative) == len(multi) else None
    return {"metric": metric, "tasks": tasks, "delta_m": delta_m}


def gain_table(report: dict) -> str:
    """The report as a Markdown table (plus Δm and each side's cost)."""

    def num(value, digits=4):
        return "–" if value is None else f"{value:.{digits}f}"

    def spread(mean, std):
        return num(mean) if std is None else f"{num(mean)} ± {num(std)}"

    metric = report["metric"]
    lines = [
        f"| task | multi-task {metric} | single-task {metric} | MTL gain | "
        "negative transfer |",
        "|---|---|---|---|---|",
    ]
    for task, e in report["tasks"].items():
        gain = (
            num(e["gain"]) if e["se"] is None else f"{num(e['gain'])} ± {num(e['se'])}"
        )
        flag = {True: "**yes**", False: "no", None: "–"}[e["negative_transfer"]]
        if e["negative_transfer"] and e["se"] is None:
            flag += " (one seed: no error estimate)"
        lines.append(
            f"| {task} | {spread(e['multi_mean'], e['multi_std'])} | "
            f"{spread(e['single_mean'], e['single_std'])} | {gain} | {flag} |"
        )
    lines.append("")
    lines.append(f"Δm (average relative gain): {num(report['delta_m'], 2)} %")
    for side in ("multi", "single"):
        if side in report:
            c = report[side]
            lines.append(
                f"{side}: {c['parameters']:,} parameters, {c['seconds']:.1f} s, "
                f"{c['steps']:,} optimiser steps"
            )
    return "\n".join(lines)
