"""Does affinity rank tasks of designed relation as designed?

The synthetic click log with ``add_related_tasks``: ``related`` (the click's
own interest), ``independent`` (latents of its own) and ``opposed`` (minus
the click's interest). A shared-bottom ``multi_task`` model over the four
tasks trains with ``train.affinity_every_steps``; per seed this reports the
symmetric affinity ``Z(click→t) + Z(t→click)`` of each extra task and the
TAG groupings. Run from ``benchmarks/``::

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


def one_seed(work: pathlib.Path, rows: int, seed: int, every: int) -> dict:
    from mtrec.affinity import choose_groups
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
                "backbone_args": {"units": [32]},
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
    z = affinity["affinity"]
    return {
        "seed": seed,
        "affinity": z,
        "symmetric_with_click": {t: z["click"][t] + z[t]["click"] for t in TASKS[1:]},
        "groups": {
            str(k): [list(g) for g in choose_groups(z, max_groups=k).groups]
            for k in (2, 3)
        },
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--every", type=int, default=2)
    parser.add_argument("--out", default=str(HERE / "results" / "affinity_truth.json"))
    args = parser.parse_args(argv)
    if args.rows < 10_000 or args.seeds < 1 or args.every < 1:
        raise SystemExit("Need --rows >= 10000, --seeds >= 1 and --every >= 1.")
    work = pathlib.Path(tempfile.mkdtemp(prefix="affinity-truth-"))
    runs = [one_seed(work, args.rows, seed, args.every) for seed in range(args.seeds)]
    pathlib.Path(args.out).write_text(
        json.dumps({"rows": args.rows, "runs": runs}, indent=2)
    )
    print("| seed | Z(c→t)+Z(t→c): related | independent | opposed | 2 groups |")
    print("|---|---|---|---|---|")
    for run in runs:
        s = run["symmetric_with_click"]
        groups = " ".join("{" + ", ".join(g) + "}" for g in run["groups"]["2"])
        print(
            f"| {run['seed']} | {s['related']:.2e} | {s['independent']:.2e} | "
            f"{s['opposed']:.2e} | {groups} |"
        )
    means = {
        t: np.mean([r["symmetric_with_click"][t] for r in runs]) for t in TASKS[1:]
    }
    print(
        f"| mean | {means['related']:.2e} | {means['independent']:.2e} | "
        f"{means['opposed']:.2e} | |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
