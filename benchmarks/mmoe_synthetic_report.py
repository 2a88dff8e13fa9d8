"""The MMoE synthetic benchmark's summary, verdict and docs.

Summaries over seeds per correlation and model, the paired comparison of MMoE
with shared-bottom (:func:`gap_analysis`, :func:`verdict`), and the markdown
sections of ``docs/benchmarks.md`` (:func:`markdown`,
:func:`variants_markdown`, :func:`update_docs`), from the run's
records and reports (the docs through ``throughput.update_doc_section``, which
knows every section of ``docs/benchmarks.md``).
"""

import json
import pathlib
import statistics

from mmoe_synthetic_setup import ALPHA_STD
from mmoe_synthetic_setup import CURVE_EPOCHS
from mmoe_synthetic_setup import NUM_EXPERTS
from mmoe_synthetic_setup import STUCK_MSE
from mmoe_synthetic_setup import TASKS
from mmoe_synthetic_setup import TOWER_UNITS
from mmoe_synthetic_setup import WIDTH
from mmoe_synthetic_setup import is_default_setting
from mmoe_synthetic_setup import results_path
from mmoe_synthetic_setup import setting_label
from throughput import update_doc_section


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
