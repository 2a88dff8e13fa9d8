"""Scaling of `mtrec train` over workers on localhost, and what a step sends.

Issue 12 (item 6). The main job's model (the shipped ``esmm`` config: ESMM on
a shared bottom with DCN crossing, batch 1024) trains on the synthetic click
log under:

- ``none`` (the **baseline**): one process;
- ``ps_w1``, ``ps_w2``, ``ps_w4``: ``parameter_server`` with 1, 2 and 4
  workers and 2 ps tasks, every task its own process on 127.0.0.1
  (``mtrec.training.local_cluster.LocalCluster``), the chief in a child;
- ``mwms_w2``: ``multi_worker_mirrored`` with 2 workers (the global batch
  stays 1024: 512 per worker).

Each variant runs in fresh processes, interleaved, ``--repeats`` rounds.
Timed: ``model.fit`` per epoch on the chief (Keras ``on_epoch_begin`` to
``on_epoch_end``), epochs 2.. (the first traces and connects). Reported:
examples/s per variant (median), the ratio variant ÷ none per round (min /
median / max).

**What this machine can show.** It has 2 cores, so every worker, ps and the
chief share them: more workers cannot run faster here. The figures measure
the cost of the distributed step (RPCs to the ps tasks, the coordinator's
scheduling, the all-reduce) against one process, not a speed-up.

**Communication per step** is computed, not sniffed: one batch's gradient in
one process gives the embedding rows a step touches (pulled, then pushed as
sparse gradients when the table is sharded) and the dense parameters (pulled
whole and pushed whole on every step). A projection for a real cluster
follows from it with the assumptions written out (``PROJECTION``).

Writes ``benchmarks/results/distributed_scaling.json`` and a markdown table.

Usage (from the repository root)::

    python benchmarks/distributed_scaling.py [--rows 200000] [--repeats 3]
"""

import argparse
import json
import logging
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

from click_log_runs import add_size_arguments
from click_log_runs import check_sizes
from click_log_runs import epoch_timer
from click_log_runs import synthetic_click_log
from click_log_runs import write_report
from epoch_timer import examples_per_second
from machine_info import cpu_description
from machine_info import machine
from machine_info import machine_cores

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "distributed_scaling.json"
CONFIG = REPO / "mtrec" / "configs" / "esmm.yaml"
BASELINE = "none"
#: variant -> (strategy, workers, ps tasks)
VARIANTS = {
    "none": ("none", 1, 0),
    "ps_w1": ("parameter_server", 1, 2),
    "ps_w2": ("parameter_server", 2, 2),
    "ps_w4": ("parameter_server", 4, 2),
    "mwms_w2": ("multi_worker_mirrored", 2, 0),
}
SEED = 7
CHILD_TIMEOUT = 3600

#: The assumptions of the projection for a real cluster.
PROJECTION = {
    "worker_examples_per_second": "the examples/s of the 1-worker ps run here "
    "(ps_w1: the step with its RPCs to the ps tasks, on this machine's 2 cores "
    "shared with the ps tasks and the chief; a worker of its own would be "
    "faster), else the one-process rate",
    "async_efficiency": 0.9,
    "ps_network_bytes_per_second": 1.25e9 * 0.5,  # 10 Gbit/s at 50% useful
    "workers": [4, 16, 64],
    "ps_tasks": [2, 8],
    "tables": "sharded (min_shard_bytes small enough that every table splits)",
}

logger = logging.getLogger("distributed_scaling")


def _overrides(csv, work, epochs, strategy) -> list[str]:
    return [
        f"data.train={csv}",
        f"data.prepared_dir={work / 'prepared'}",
        f"runs_dir={work / 'runs'}",
        f"train.epochs={epochs}",
        "train.lr_schedule=constant",
        "train.selection.metric=null",
        "train.progress=false",
        "export.enabled=false",
        f"train.distribution.strategy={strategy}",
    ]


def run_child(args) -> dict | None:
    """Child process: ``train`` with an epoch timer; the chief reports."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import mtrec  # noqa: F401  (the Keras switch, before TensorFlow)

    # isort: split

    from mtrec.training import load_config
    from mtrec.training import train

    config = load_config(
        CONFIG, _overrides(args.csv, args.work, args.epochs, args.strategy)
    )

    timer = epoch_timer()
    result = train(config, callbacks=[timer])
    if not result.chief:
        return None
    rows = result.metrics["train_rows"]
    steady = timer.seconds[1:]
    return {
        "rows": rows,
        "epoch_seconds": [round(s, 4) for s in timer.seconds],
        "examples_per_second": examples_per_second(rows, steady),
    }


def _child(strategy: str, csv, work, epochs, env=None) -> subprocess.Popen:
    command = [
        sys.executable,
        str(pathlib.Path(__file__).resolve()),
        "--child",
        "--strategy",
        strategy,
        "--csv",
        str(csv),
        "--work",
        str(work),
        "--epochs",
        str(epochs),
    ]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _report(process: subprocess.Popen, name: str) -> dict | None:
    try:
        out, err = process.communicate(timeout=CHILD_TIMEOUT)
    finally:
        process.kill()
    if process.returncode != 0:
        raise RuntimeError(f"{name} failed (exit {process.returncode}):\n{err[-3000:]}")
    lines = [line for line in out.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else None


def measure(variant: str, csv, work, epochs) -> dict:
    """One run of a variant in fresh processes; the chief's epoch times."""
    from mtrec.training import LocalCluster

    strategy, workers, ps = VARIANTS[variant]
    if strategy == "none":
        run = _report(_child(strategy, csv, work, epochs), variant)
    elif strategy == "parameter_server":
        with LocalCluster(workers=workers, ps=ps) as cluster:
            cluster.start()
            chief = _child(strategy, csv, work, epochs, cluster.env("chief"))
            run = _report(chief, variant)
    else:
        cluster = LocalCluster(workers=workers, ps=0)
        children = [
            _child(strategy, csv, work, epochs, cluster.env("worker", i))
            for i in range(workers)
        ]
        reports = [
            _report(child, f"{variant} worker {i}") for i, child in enumerate(children)
        ]
        run = reports[0]
    return {"variant": variant, **run}


def communication(csv, work, epochs) -> dict:
    """Bytes a training step moves between a worker and the ps tasks.

    One batch's gradient in one process: the embedding rows with a nonzero
    gradient are the rows a sharded table's lookup pulls and its sparse
    update pushes; dense variables move whole.
    """
    import numpy as np
    import tensorflow as tf

    from mtrec.training import build_model
    from mtrec.training import datasets
    from mtrec.training import load_config
    from mtrec.training import prepare

    config = load_config(CONFIG, _overrides(csv, work, epochs, "none"))
    prepared = prepare(
        config, preprocessing_dir=pathlib.Path(tempfile.mkdtemp(dir=work))
    )
    model = build_model(prepared, config)
    batch = next(iter(datasets(prepared, config).train))
    with tf.GradientTape() as tape:
        loss = model.compute_loss(batch, training=True)
    grads = tape.gradient(loss, model.trainable_variables)
    tables = {"rows": 0, "rows_touched": 0, "bytes": 0, "bytes_touched": 0}
    dense_bytes = 0
    for variable, grad in zip(model.trainable_variables, grads, strict=True):
        size = int(np.prod(variable.shape)) * variable.dtype.size
        if "/features/embeddings" not in variable.name:
            dense_bytes += size
            continue
        grad = tf.convert_to_tensor(grad).numpy()
        touched = int(np.count_nonzero(np.any(grad != 0, axis=1)))
        width = variable.shape[1] * variable.dtype.size
        tables["rows"] += variable.shape[0]
        tables["rows_touched"] += touched
        tables["bytes"] += size
        tables["bytes_touched"] += touched * width
    batch_size = config.train.batch_size
    sharded_step = 2 * (tables["bytes_touched"] + dense_bytes)  # pull + push
    return {
        "batch_size": batch_size,
        "embedding_tables": tables,
        "dense_bytes": dense_bytes,
        "bytes_per_step_sharded_tables": sharded_step,
        "bytes_per_step_whole_tables": 2 * (tables["bytes"] + dense_bytes),
        "bytes_per_example_sharded_tables": round(sharded_step / batch_size, 1),
    }


def ratios(runs: list[dict], variants: list[str]) -> dict:
    """Per variant: median examples/s and the per-round ratio to the baseline."""
    by = {
        v: [r["examples_per_second"] for r in runs if r["variant"] == v]
        for v in variants
    }
    out = {}
    for variant, values in by.items():
        per_round = [a / b for a, b in zip(values, by[BASELINE], strict=True)]
        out[variant] = {
            "examples_per_second": round(statistics.median(values), 1),
            "ratio": {
                "min": round(min(per_round), 3),
                "median": round(statistics.median(per_round), 3),
                "max": round(max(per_round), 3),
                "per_round": [round(r, 3) for r in per_round],
            },
        }
    return out


def projection(summary: dict, comm: dict) -> list[dict]:
    """Examples/s of a real cluster: the workers' compute or the ps network."""
    worker = summary.get("ps_w1", summary[BASELINE])["examples_per_second"]
    per_example = comm["bytes_per_example_sharded_tables"]
    rows = []
    for ps in PROJECTION["ps_tasks"]:
        network = ps * PROJECTION["ps_network_bytes_per_second"] / per_example
        for workers in PROJECTION["workers"]:
            compute = workers * worker * PROJECTION["async_efficiency"]
            rows.append(
                {
                    "workers": workers,
                    "ps": ps,
                    "examples_per_second": round(min(compute, network)),
                    "bound": "workers" if compute <= network else "ps network",
                }
            )
    return rows


def markdown(report: dict) -> str:
    comm = report["communication"]
    tables = comm["embedding_tables"]
    lines = [
        f"Rows: {report['rows']:,} (synthetic click log, seed {SEED}); model: the "
        f"shipped `esmm` config; epochs 2.. of {report['epochs']} timed on the "
        f"chief; {report['repeats']} interleaved rounds; 2 ps tasks; every task "
        "a process on 127.0.0.1 sharing this machine's "
        f"{machine_cores(report['machine'])} cores "
        f"({cpu_description(report['machine'])}; no speed-up is possible "
        "here: the ratios are the cost of the distributed step).",
        "",
        "| variant | examples/s | ÷ none (median, min–max) |",
        "|---|---|---|",
    ]
    for variant, entry in report["summary"].items():
        r = entry["ratio"]
        lines.append(
            f"| {variant} | {entry['examples_per_second']:,.0f} | "
            f"{r['median']} ({r['min']}–{r['max']}) |"
        )
    lines += [
        "",
        f"Per step (batch {comm['batch_size']}): the embedding tables have "
        f"{tables['rows']:,} rows ({tables['bytes'] / 1e6:.2f} MB), a batch "
        f"touches {tables['rows_touched']:,} of them "
        f"({tables['bytes_touched'] / 1e3:.1f} kB); the dense variables are "
        f"{comm['dense_bytes'] / 1e6:.2f} MB. Pulled + pushed per step: "
        f"{comm['bytes_per_step_sharded_tables'] / 1e6:.2f} MB with sharded "
        f"tables, {comm['bytes_per_step_whole_tables'] / 1e6:.2f} MB with whole "
        "ones.",
        "",
        "Projection (assumptions: a worker trains at the 1-worker ps rate "
        f"measured here; async efficiency {PROJECTION['async_efficiency']}; each "
        f"ps moves {PROJECTION['ps_network_bytes_per_second'] / 1e6:.0f} MB/s "
        "(10 Gbit/s at 50%); sharded tables):",
        "",
        "| workers | ps | examples/s | bound by |",
        "|---|---|---|---|",
    ]
    for row in report["projection"]:
        lines.append(
            f"| {row['workers']} | {row['ps']} | {row['examples_per_second']:,} | "
            f"{row['bound']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_size_arguments(parser)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", type=pathlib.Path, default=RESULTS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--strategy", help=argparse.SUPPRESS)
    parser.add_argument("--csv", type=pathlib.Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=pathlib.Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        run = run_child(args)
        if run is not None:
            print(json.dumps(run))
        return {}
    info = machine()  # before the runs: its load is the load they met
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    variants = args.variants.split(",")
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown or BASELINE not in variants:
        raise SystemExit(
            f"--variants must name variants of {list(VARIANTS)} including "
            f"{BASELINE!r}. Received: {args.variants!r}"
        )
    check_sizes(args)
    sys.path.insert(0, str(REPO))
    import mtrec  # noqa: F401
    from mtrec.training import load_config
    from mtrec.training import prepare_files

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        csv = synthetic_click_log(work, args.rows, SEED)
        prepare_files(load_config(CONFIG, _overrides(csv, work, args.epochs, "none")))
        comm = communication(csv, work, args.epochs)
        for repeat in range(args.repeats):
            order = (
                variants[repeat % len(variants) :] + variants[: repeat % len(variants)]
            )
            for variant in order:
                run = measure(variant, csv, work, args.epochs)
                logger.info(
                    "round %d, %s: %.0f ex/s",
                    repeat,
                    variant,
                    run["examples_per_second"],
                )
                runs.append(run)
    summary = ratios(runs, variants)
    report = {
        "benchmark": "distributed_scaling",
        "rows": args.rows,
        "epochs": args.epochs,
        "repeats": args.repeats,
        "variants": {
            v: dict(zip(("strategy", "workers", "ps"), VARIANTS[v], strict=True))
            for v in variants
        },
        "baseline": BASELINE,
        "machine": info,
        "summary": summary,
        "communication": comm,
        "projection_assumptions": PROJECTION,
        "projection": projection(summary, comm),
        "runs": runs,
    }
    return write_report(args.out, report, markdown)


if __name__ == "__main__":
    main()
