"""Does affinity rank tasks of designed relation as designed?

The synthetic click log with ``add_related_tasks``: ``related`` (the click's
own interest), ``independent`` (latents of its own) and ``opposed`` (minus
the click's interest). A shared-bottom ``multi_task`` model over the four
tasks trains with ``train.affinity_every_steps``. For each of four
statistics (the paper's ``Z`` and the shared-gradient cosine, each over all
epochs and over the epochs after the first; ``mtrec.affinity.tracking``)
this reports per seed the symmetric affinity ``S(click, t) + S(t, click)``
of each extra task, and the TAG grouping (2 groups) of the mean matrix over
seeds. Run from ``benchmarks/``::

    python affinity_truth.py --rows 100000 --seeds 3

Writes ``results/affinity_truth.json`` and prints a Markdown table.
"""

import argparse
import json
import pathlib
import sys
import tempfile

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
TASKS = ("click", "related", "independent", "opposed")
FEATURES = [
    {"name": "user_id", "kind": "categorical", "dtype": "int64", "embedding_dim": 8},
    {"name": "item_id", "kind": "categorical", "dtype": "int64", "embedding_dim": 8},
    {"name": "item_category", "kind": "categorical", "embedding_dim": 4},
    {"name": "position", "kind": "categorical", "dtype": "int64", "embedding_dim": 2},
    {"name": "item_price", "kind": "dense", "log1p": True},
    {"name": "user_activity", "kind": "dense", "log1p": True},
    {"name": "item_hist_ctr", "kind": "dense"},
]


STATISTICS = {  # name: (key path in metrics["affinity"])
    "Z, all epochs (paper)": ("affinity",),
    "cosine, all epochs": ("cosine",),
    "Z, after epoch 1": ("after_first_epoch", "affinity"),
    "cosine, after epoch 1": ("after_first_epoch", "cosine"),
}


def _statistic(affinity: dict, path: tuple[str, ...]) -> dict:
    for key in path:
        affinity = affinity[key]
    return affinity


def one_seed(work: pathlib.Path, rows: int, seed: int, every: int, units: int) -> dict:
    from mtrec.data import add_related_tasks
    from mtrec.data import generate_click_log
    from mtrec.data import write_table
    from mtrec.training import load_config
    from mtrec.training import train

    frame = generate_click_log(rows, seed=seed, num_users=2_000, num_items=3_000)
    path = work / f"log-{seed}.parquet"
    write_table(add_related_tasks(frame, seed=seed), path)
    config = load_config(
        {
            "name": "affinity-truth",
            "seed": seed,
            "runs_dir": str(work / "runs"),
            "features": FEATURES,
            "tasks": [{"name": t, "label": t} for t in TASKS],
            "data": {"train": str(path)},
            "model": {
                "architecture": "multi_task",
                "backbone_args": {"units": [units]},
                "tower_units": [8],
            },
            "train": {
                "batch_size": 4096,
                "epochs": 4,
                "learning_rate": 0.01,
                "progress": False,
                "affinity_every_steps": every,
                "selection": {"metric": None},
            },
            "export": {"enabled": False},
            "eval": {"plots": False},
        }
    )
    affinity = train(config, run_dir=work / "runs" / f"seed{seed}").metrics["affinity"]
    return {"seed": seed, **{k: affinity[k] for k in affinity if k != "epochs"}}


def summarise(runs: list[dict]) -> dict:
    """Per statistic: each seed's symmetric affinity with the click, their
    mean, and the 2-group TAG grouping of the seed-mean matrix."""
    from mtrec.affinity import choose_groups

    out = {}
    for name, path in STATISTICS.items():
        matrices = [_statistic(run, path) for run in runs]
        mean = {
            i: {j: float(np.mean([m[i][j] for m in matrices])) for j in TASKS}
            for i in TASKS
        }
        symmetric = [
            {t: m["click"][t] + m[t]["click"] for t in TASKS[1:]} for m in matrices
        ]
        grouping = choose_groups(mean, max_groups=2)
        gap = [s["related"] - s["independent"] for s in symmetric]
        out[name] = {
            "symmetric_with_click": symmetric,
            "mean": {t: float(np.mean([s[t] for s in symmetric])) for t in TASKS[1:]},
            "related_above_independent": sum(g > 0 for g in gap),
            # related - independent: mean and standard error over seeds
            "gap": float(np.mean(gap)),
            "gap_se": float(np.std(gap, ddof=1) / np.sqrt(len(gap)))
            if len(gap) > 1
            else None,
            "groups": [list(g) for g in grouping.groups],
            "click_group": list(grouping.assignment["click"]),
        }
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--every", type=int, default=2)
    parser.add_argument("--units", type=int, default=32, help="shared bottom width")
    parser.add_argument("--out", default=str(HERE / "results" / "affinity_truth.json"))
    args = parser.parse_args(argv)
    if args.rows < 10_000 or args.seeds < 1 or args.every < 1 or args.units < 1:
        raise SystemExit(
            "Need --rows >= 10000, --seeds >= 1, --every >= 1 and --units >= 1."
        )
    work = pathlib.Path(tempfile.mkdtemp(prefix="affinity-truth-"))
    runs = [
        one_seed(work, args.rows, seed, args.every, args.units)
        for seed in range(args.seeds)
    ]
    summary = summarise(runs)
    pathlib.Path(args.out).write_text(
        json.dumps(
            {
                "rows": args.rows,
                "units": args.units,
                "every": args.every,
                "summary": summary,
                "runs": runs,
            },
            indent=2,
        )
    )
    print(
        "| statistic | S(click, t) + S(t, click) per seed: related / independent "
        "/ opposed | mean | related − independent (± SE) | related > independent "
        "| click's group (2 groups) |"
    )
    print("|---|---|---|---|---|---|")
    for name, row in summary.items():
        seeds = "; ".join(
            " / ".join(f"{s[t]:.2g}" for t in TASKS[1:])
            for s in row["symmetric_with_click"]
        )
        mean = " / ".join(f"{row['mean'][t]:.2g}" for t in TASKS[1:])
        gap = f"{row['gap']:.2g}" + (
            f" ± {row['gap_se']:.2g}" if row["gap_se"] is not None else ""
        )
        print(
            f"| {name} | {seeds} | {mean} | {gap} | {row['related_above_independent']}"
            f"/{len(runs)} | {{{', '.join(row['click_group'])}}} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
