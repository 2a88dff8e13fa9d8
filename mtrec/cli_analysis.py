"""``mtrec compare``, ``affinity``, ``plot`` and ``runs``: looking at runs."""

import pathlib
import sys
import time

from mtrec.cli_common import add_config_argument
from mtrec.cli_common import resolve_config


def cmd_compare(args) -> int:
    from mtrec.affinity import compare
    from mtrec.affinity import gain_table
    from mtrec.training import load_config

    if args.seeds < 1:
        print(
            f"mtrec compare: error: --seeds must be >= 1. Received: {args.seeds}",
            file=sys.stderr,
        )
        return 2
    config = load_config(resolve_config(args.config), args.set or [])
    seeds = [config.seed + i for i in range(args.seeds)]
    out = args.out or str(
        pathlib.Path(config.runs_dir)
        / f"compare-{config.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    report = compare(config, seeds=seeds, out_dir=out, metric=args.metric)
    print(gain_table(report))
    print(f"report: {pathlib.Path(out) / 'report.md'} (and report.json)")
    return 0


def cmd_affinity(args) -> int:
    import json

    from mtrec.affinity import affinity_heatmap
    from mtrec.training import load_config
    from mtrec.training import train

    if args.every < 1 or args.max_groups < 1:
        print(
            "mtrec affinity: error: --every and --max-groups must be >= 1. "
            f"Received: --every {args.every} --max-groups {args.max_groups}",
            file=sys.stderr,
        )
        return 2
    overrides = [*(args.set or []), f"train.affinity_every_steps={args.every}"]
    config = load_config(resolve_config(args.config), overrides)
    result = train(config, run_dir=args.run_dir)
    affinity = result.metrics["affinity"]
    affinity.update(_affinity_groupings(affinity, args.max_groups))
    out = pathlib.Path(result.run_dir)
    (out / "affinity.json").write_text(json.dumps(affinity, indent=2))
    affinity_heatmap(affinity, out / "affinity.png")
    _print_affinity_matrix(affinity)
    _print_affinity_groupings(affinity)
    print(f"written: {out / 'affinity.json'}, {out / 'affinity.png'}")
    return 0


def _affinity_groupings(affinity: dict, max_groups: int) -> dict:
    """Suggested task groupings into 2..K groups (K: ``max_groups``, at most the
    number of tasks; just 1 when K is 1), keyed by K: ``"groups"`` on Z over the
    run and, when tracked, ``"groups_after_first_epoch_cosine"``."""
    from mtrec.affinity import choose_groups

    top = min(max_groups, len(affinity["tasks"]))
    sizes = range(min(2, top), top + 1)
    groupings = {
        "groups": {
            str(k): choose_groups(affinity["affinity"], max_groups=k).to_dict()
            for k in sizes
        }
    }
    # The statistic that ranked designed tasks right on every seed measured
    # (docs/affinity.md): the gradient cosine after the first epoch.
    steady = affinity.get("after_first_epoch", {}).get("cosine")
    if steady is not None:
        groupings["groups_after_first_epoch_cosine"] = {
            str(k): choose_groups(steady, max_groups=k).to_dict() for k in sizes
        }
    return groupings


def _print_affinity_matrix(affinity: dict) -> None:
    """Prints Z(i->j): a row per task stepped on, a column per task helped."""
    tasks = affinity["tasks"]
    width = max(len(t) for t in tasks) + 2
    print("affinity Z(i->j), rows: the task stepped on, columns: the task helped")
    print(" " * width + "".join(f"{t:>{width}}" for t in tasks))
    for i in tasks:
        row = "".join(f"{affinity['affinity'][i][j]:>{width}.4f}" for j in tasks)
        print(f"{i:<{width}}{row}")


def _print_affinity_groupings(affinity: dict) -> None:
    """Prints each grouping :func:`_affinity_groupings` added, with its total."""
    for title, key in (
        ("groups on Z over the run (the paper's)", "groups"),
        (
            "groups on the gradient cosine after epoch 1",
            "groups_after_first_epoch_cosine",
        ),
    ):
        if key not in affinity:
            continue
        print(title)
        for k, grouping in affinity[key].items():
            groups = " ".join("{" + ", ".join(g) + "}" for g in grouping["groups"])
            print(f"  {k} group(s): {groups}  (total {grouping['total']:.4f})")


def cmd_plot(args) -> int:
    from mtrec.plots import plot_run

    for path in plot_run(args.run_dir):
        print(path)
    return 0


def cmd_runs(args) -> int:
    from mtrec.training import list_runs

    runs = list_runs(args.runs_dir)
    if not runs:
        print(f"no runs in {args.runs_dir}")
        return 0
    width = max(len(run.run_dir.name) for run in runs)
    print(f"{'run':<{width}}  {'status':<10}  {'epochs':>6}  detail")
    for run in runs:
        if run.error:
            detail = run.error.splitlines()[0][:120]
        else:
            detail = "  ".join(
                f"{output} AUC {auc:.4f}" if auc is not None else f"{output} AUC -"
                for output, auc in run.metrics.items()
            )
        print(
            f"{run.run_dir.name:<{width}}  {run.status:<10}  {run.epochs_done:>6}  "
            f"{detail}"
        )
    return 0


def add_analysis_commands(sub) -> None:
    """Registers the commands of this module on the CLI's subparsers."""
    cmp = sub.add_parser(
        "compare",
        help="MTL gain: the multi-task model against one single-task model per task",
    )
    add_config_argument(cmp)
    cmp.add_argument(
        "--seeds", type=int, default=3, help="seeds per side (3): config seed + 0..N-1"
    )
    cmp.add_argument("--metric", default="auc", help="held-out metric per task (auc)")
    cmp.add_argument(
        "--out", default=None, help="default: <runs_dir>/compare-<name>-<time>"
    )
    cmp.add_argument("--set", action="append", metavar="KEY=VALUE")
    cmp.set_defaults(func=cmd_compare)

    aff = sub.add_parser(
        "affinity",
        help="train with inter-task affinity tracking (TAG): matrix, heatmap, groups",
    )
    add_config_argument(aff)
    aff.add_argument(
        "--every", type=int, default=10, help="measure every N training steps (10)"
    )
    aff.add_argument(
        "--max-groups", type=int, default=3, help="suggest groupings of 2..K (3)"
    )
    aff.add_argument("--run-dir", default=None)
    aff.add_argument("--set", action="append", metavar="KEY=VALUE")
    aff.set_defaults(func=cmd_affinity)

    plot = sub.add_parser(
        "plot", help="draw a run's figures into <run>/plots/ (learning curves, ...)"
    )
    plot.add_argument("run_dir")
    plot.set_defaults(func=cmd_plot)

    runs = sub.add_parser(
        "runs", help="list the runs of a runs directory: finished, failed, unfinished"
    )
    runs.add_argument("runs_dir", nargs="?", default="runs", help="default: runs")
    runs.set_defaults(func=cmd_runs)
