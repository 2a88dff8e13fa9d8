"""Pool the pairs of several DeepCTR comparison runs: per model, core count and
measure, the median (min–max) of every pair's mtrec ÷ DeepCTR ratio.

One run's median over 3 or 5 pairs moves with the shared machine's load; two
runs of the same code on the same machine are one larger sample. This script
reads their JSON (``benchmarks/deepctr_comparison.py --out``), refuses runs
whose settings differ (rows, data, model sizes, batch, epochs, tasks,
mtrec's options; model sizes and tasks for the models both measured) or
that ran on another machine, and prints the pooled ratios of the models
every run measured as markdown with the issue's target (judged only when
those are all three)::

    python benchmarks/deepctr_pooled.py \\
        benchmarks/results/deepctr_comparison_5pairs_avx512_a.json \\
        benchmarks/results/deepctr_comparison_5pairs_avx512_b.json

Standard library only. Exit status 2 for a file that cannot be read or runs
that cannot be pooled, with the file and the setting named.
"""

import argparse
import json
import pathlib
import sys
from collections.abc import Sequence

from deepctr_report import ratio_text
from deepctr_report import summarise
from deepctr_report import verdict
from deepctr_settings import TARGET_RATIO

#: The settings two runs must share to be pooled.
SAME_SETTINGS = (
    "quick",
    "rows",
    "data",
    "model_sizes",
    "tasks",
    "batch_size",
    "epochs",
    "learning_rate",
    "embedding_dim",
    "mtrec_options",
)
#: Settings given per model (``{model: ...}``): two runs must agree on the
#: models both measured, so that a run of one model (``--models ple``) pools
#: with a run of all three.
PER_MODEL_SETTINGS = ("model_sizes", "tasks")
#: ``(summary key, label)`` of the pooled ratios, in the table's order.
MEASURES = (
    ("train_ratio", "training examples/s"),
    ("inference_ratio", "prediction examples/s"),
    ("peak_rss_ratio", "peak RSS"),
)


class PoolError(ValueError):
    """Runs that cannot be read or pooled; the message names the file."""


def load_runs(paths: Sequence[pathlib.Path]) -> list[dict]:
    """The reports at ``paths``, checked to share :data:`SAME_SETTINGS`.

    Raises:
      PoolError: a file missing or not JSON, a report without a summary, its
        runs or its models, an incomplete run, a run sharing no model with
        the runs before it, a run on another machine than the first file's
        (:func:`_same_machine`), or a setting that differs from its (for the
        models every run measured, :func:`pooled_models`).
    """
    if not paths:
        raise PoolError("No comparison JSON given.")
    reports = []
    for path in paths:
        try:
            report = json.loads(pathlib.Path(path).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise PoolError(f"{path}: cannot be read as JSON ({err}).") from err
        if not isinstance(report, dict) or "summary" not in report:
            raise PoolError(f"{path}: not a DeepCTR comparison report (no summary).")
        if "runs" not in report:
            raise PoolError(f"{path}: a report without its workers' runs.")
        if not isinstance(report.get("models"), list):
            raise PoolError(f"{path}: a report without the list of its models.")
        if report.get("complete") is False:
            raise PoolError(f"{path}: an incomplete run; it cannot be pooled.")
        reports.append(report)
    first = reports[0]
    for i in range(1, len(reports)):
        if not pooled_models(reports[: i + 1]):
            raise PoolError(
                f"{paths[i]}: measured none of the models of the runs before "
                f"it ({', '.join(pooled_models(reports[:i]))}); there is "
                "nothing to pool."
            )
    models = pooled_models(reports)
    for path, report in zip(paths[1:], reports[1:], strict=True):
        if not _same_machine(report, first):
            raise PoolError(
                f"{path}: ran on another machine than {paths[0]} "
                f"({_machine(report)} against {_machine(first)}); ratios "
                "move with the CPU, so they are not one sample."
            )
        for key in SAME_SETTINGS:
            if _setting(report, key, models) != _setting(first, key, models):
                raise PoolError(
                    f"{path}: `{key}` differs from {paths[0]}'s; runs with "
                    "other settings are not one sample. Received: "
                    f"`{key}={report.get(key)!r}`"
                )
    return reports


def pooled_models(reports: Sequence[dict]) -> list[str]:
    """The models every report measured, in the first report's order."""
    return [m for m in reports[0]["models"] if all(m in r["models"] for r in reports)]


def _setting(report: dict, key: str, models: Sequence[str]):
    """A report's ``key``; a :data:`PER_MODEL_SETTINGS` one for ``models``
    alone."""
    value = report.get(key)
    if key in PER_MODEL_SETTINGS and isinstance(value, dict):
        return {model: value.get(model) for model in models}
    return value


def _same_machine(a: dict, b: dict) -> bool:
    """Whether two reports ran on one machine, as far as they tell: the same
    platform string (kernel and C library) and, where both recorded it
    (``machine_info.machine``), the same CPU."""
    ma, mb = a.get("machine", {}), b.get("machine", {})
    if ma.get("platform") != mb.get("platform"):
        return False
    return not (ma.get("cpu") and mb.get("cpu")) or ma["cpu"] == mb["cpu"]


def _machine(report: dict) -> str:
    """A report's platform and CPU model in words, for the error message."""
    machine = report.get("machine", {})
    cpu = machine.get("cpu") or {}
    return f"{machine.get('platform')}, {cpu.get('model', 'CPU not recorded')}"


def pooled_runs(reports: Sequence[dict]) -> list[dict]:
    """Every report's worker results as one run's: each later report's pairs
    numbered after the earlier ones', so no two reports share a pair."""
    runs: list[dict] = []
    for report in reports:
        offset = 1 + max((r["pair"] for r in runs), default=-1)
        runs += [{**r, "pair": r["pair"] + offset} for r in report["runs"]]
    return runs


def pooled(reports: Sequence[dict]) -> dict:
    """The summary (``deepctr_report.summarise``) of :func:`pooled_runs`: the
    ratios over every pair, for the core counts and models all reports
    measured, in the first report's order."""
    models = pooled_models(reports)
    cores = [n for n in reports[0]["cores"] if all(n in r["cores"] for r in reports)]
    return summarise(pooled_runs(reports), models, cores)


def markdown(paths: Sequence[pathlib.Path], reports: Sequence[dict]) -> str:
    """The pooled ratios as a markdown table, with the runs and the verdict on
    the one-core target (``deepctr_report.verdict``: median >=
    :data:`TARGET_RATIO` for training and prediction)."""
    summary = pooled(reports)
    commits = [
        str(r.get("mtrec_checkout", {}).get("commit", "?"))[:10] for r in reports
    ]
    runs = ", ".join(f"`{p}` at `{c}`" for p, c in zip(paths, commits, strict=True))
    lines = [
        f"Pooled pairs of {len(reports)} runs ({runs}): "
        "mtrec ÷ DeepCTR, median (min–max) over every pair.",
        "",
        "| cores | model | pairs | "
        + " | ".join(label for _, label in MEASURES)
        + " |",
        "|---|---|---|" + "---|" * len(MEASURES),
    ]
    for cores, models in summary.items():
        for model, entry in models.items():
            cells = [ratio_text(entry[key]) for key, _ in MEASURES]
            lines.append(
                f"| {cores} | {model} | {entry['pairs']} | " + " | ".join(cells) + " |"
            )
    return "\n".join([*lines, "", target_line(summary)]) + "\n"


def target_line(summary: dict) -> str:
    """The verdict on the one-core target (``deepctr_report.verdict``:
    median >= :data:`TARGET_RATIO` for training and prediction) in words;
    "not judged" unless every model was pooled, with the pooled models'
    ratios below the target named either way."""
    judged = verdict(summary)
    below = [
        f"{model} {kind}"
        for model, met in judged["per_model"].items()
        for kind, ok in met.items()
        if not ok
    ]
    named = "below it: " + ", ".join(below) + "." if below else None
    head = f"One-core target (median >= {TARGET_RATIO}): "
    if judged["met"] is not None:
        return head + (named or "met.")
    models = ", ".join(judged["per_model"]) or "none"
    return f"{head}not judged (models in every run on one core: {models}); " + (
        f"of those, {named}" if named else "none of those below it."
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=pathlib.Path, help="comparison JSON")
    args = parser.parse_args(argv)
    try:
        reports = load_runs(args.runs)
    except PoolError as err:
        print(f"deepctr_pooled: {err}", file=sys.stderr)
        return 2
    print(markdown(args.runs, reports), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
