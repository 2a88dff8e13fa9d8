"""Peak memory of PCGrad and grad_norm_static on a 1M-id embedding table.

Issue 14 (item 4): PCGrad and ``grad_norm_static`` turned each task's
``tf.IndexedSlices`` gradient of an embedding table into a dense
``(vocabulary, dim)`` tensor, so one step held ``O(tasks x vocabulary x dim)``.
They now stay sparse: norms read the rows a batch touches, and PCGrad's dot
products and projections run on the union of the tasks' rows
(``mtrec.weighting.gradients.common_rows``). This script measures one
``gradient_update`` of each strategy as shipped (``sparse``) against the
previous dense path (the **baseline** ``dense``, rebuilt here: PCGrad on the
densified per-task gradients, which is what it computed before;
``grad_norm_static`` with its norms taken on densified gradients, the scaled
sum kept sparse, as before).

Each measurement runs in a fresh Python process: it builds the per-task
gradients (3 tasks, each an ``IndexedSlices`` of ``--batch`` rows drawn from a
Zipf-like distribution over ``--vocabulary`` ids, ``--dim`` wide, plus a dense
shared kernel and a task tower kernel), then runs the traced update
``--calls`` times. Peak memory = the process's peak RSS (``ru_maxrss``) minus
its RSS just before the first call: what the update itself adds, tracing
included. Variants run interleaved (each round runs every strategy and
variant once, in turn), ``--repeats`` rounds; each round gives a ratio
baseline / variant (> 1: the sparse path needs less), reported as
min / median / max, with the time per call alongside.

Writes ``benchmarks/results/sparse_gradients.json`` and prints a markdown table.

Usage (from the repository root)::

    python benchmarks/sparse_gradients.py [--repeats 5] [--vocabulary 1000000]
"""

import argparse
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from click_log_runs import write_report
from machine_info import cpu_description
from machine_info import machine

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "sparse_gradients.json"
BASELINE = "dense"
VARIANTS = (BASELINE, "sparse")
STRATEGIES = ("pcgrad", "grad_norm_static")
TASKS = ["ctr", "cvr", "dwell"]

logger = logging.getLogger("sparse_gradients")


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def _task_grads(tf, np, vocabulary: int, dim: int, batch: int) -> dict:
    rng = np.random.default_rng(0)
    grads = {}
    for k in TASKS:
        ids = np.minimum(rng.zipf(1.2, batch) - 1, vocabulary - 1)
        table = tf.IndexedSlices(
            tf.constant(rng.normal(size=(batch, dim)), tf.float32),
            tf.constant(ids, tf.int64),
            tf.constant([vocabulary, dim], tf.int64),
        )
        kernel = tf.constant(rng.normal(size=(dim * 8, 64)), tf.float32)
        tower = tf.constant(rng.normal(size=(64, 1)), tf.float32)
        grads[k] = [table, kernel, tower if k == "ctr" else None]
    return grads


def _dense_grad_norm_static(tf, task_grads: dict, shared: list[bool]):
    """The previous ``grad_norm_static``: norms on densified gradients."""
    at = [i for i, s in enumerate(shared) if s]
    norms = tf.stack(
        [
            tf.sqrt(
                tf.add_n(
                    [
                        tf.reduce_sum(tf.square(tf.convert_to_tensor(task_grads[k][i])))
                        for i in at
                        if task_grads[k][i] is not None
                    ]
                )
            )
            for k in TASKS
        ]
    )
    weights = tf.where(norms > 1e-8, 1.0 / tf.maximum(norms, 1e-8), 0.0)
    out = []
    for i in range(len(shared)):
        present = [
            (task_grads[k][i], weights[j])
            for j, k in enumerate(TASKS)
            if task_grads[k][i] is not None
        ]
        if all(isinstance(g, tf.IndexedSlices) for g, _ in present):
            out.append(
                tf.IndexedSlices(
                    tf.concat([g.values * w for g, w in present], 0),
                    tf.concat([g.indices for g, _ in present], 0),
                    present[0][0].dense_shape,
                )
            )
        else:
            out.append(tf.add_n([g * w for g, w in present]))
    return out


def child(strategy: str, variant: str, args) -> dict:
    """One measurement in this process (run by ``main`` in a subprocess)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    import numpy as np
    import tensorflow as tf

    import mtrec  # noqa: F401  # isort: split  (Keras 2 switch first)
    from mtrec.weighting import GradNormStatic
    from mtrec.weighting import PCGrad

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    grads = _task_grads(tf, np, args.vocabulary, args.dim, args.batch)
    losses = {k: tf.constant(0.5) for k in TASKS}
    shared = [True, True, False]
    weighting = PCGrad(TASKS, seed=0) if strategy == "pcgrad" else GradNormStatic(TASKS)

    @tf.function
    def step():
        if variant == BASELINE and strategy == "grad_norm_static":
            out = _dense_grad_norm_static(tf, grads, shared)
        elif variant == BASELINE:
            # The previous PCGrad: every task's table gradient densified.
            dense = {
                k: [tf.convert_to_tensor(task[0]), *task[1:]]
                for k, task in grads.items()
            }
            out = weighting.gradient_update(losses, dense, shared)[0]
        else:
            out = weighting.gradient_update(losses, grads, shared)[0]
        table = out[0]
        values = table.values if isinstance(table, tf.IndexedSlices) else table
        return tf.reduce_sum(values) + tf.reduce_sum(out[1])

    before = _rss_kib()
    times = []
    for _ in range(args.calls):
        start = time.perf_counter()
        float(step())
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "peak_mib": (peak - before) / 1024,
        "ms_per_call_after_first": 1000 * statistics.median(times[1:] or times),
    }


def _run_child(strategy: str, variant: str, args) -> dict:
    command = [
        sys.executable,
        __file__,
        "--child",
        strategy,
        variant,
        "--vocabulary",
        str(args.vocabulary),
        "--dim",
        str(args.dim),
        "--batch",
        str(args.batch),
        "--calls",
        str(args.calls),
        "--threads",
        str(args.threads),
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _summary(values: list[float]) -> dict:
    return {
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
    }


def markdown(report: dict) -> str:
    lines = [
        f"Baseline `{BASELINE}`: each task's table gradient densified (the path "
        "before issue 14.4). Vocabulary "
        f"{report['vocabulary']:,} x {report['dim']}, {len(TASKS)} tasks, "
        f"{report['batch']} rows per task. Ratio = baseline MiB / variant MiB "
        f"per round. Machine: {cpu_description(report.get('machine', {}))}.",
        "",
        "| strategy | variant | peak MiB (median) | ms/call (median) "
        "| ratio min / median / max |",
        "|---|---|---|---|---|",
    ]
    for strategy, variants in report["cases"].items():
        for name, r in variants.items():
            s = r["ratio_vs_baseline"]
            lines.append(
                f"| {strategy} | {name} | {r['peak_mib']['median']:.1f} | "
                f"{r['ms_per_call']['median']:.1f} | "
                f"{s['min']:.1f} / {s['median']:.1f} / {s['max']:.1f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--vocabulary", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--batch", type=int, default=4096, help="rows per task")
    parser.add_argument("--calls", type=int, default=3, help="updates per process")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--child", nargs=2, metavar=("STRATEGY", "VARIANT"))
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child, args)))
        return {}
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    info = machine()  # before the rounds: its load is the load they met
    runs = {s: {v: [] for v in VARIANTS} for s in STRATEGIES}
    for round_ in range(args.repeats):
        for strategy in STRATEGIES:
            for variant in VARIANTS:
                result = _run_child(strategy, variant, args)
                logger.info(
                    "round %d %s %s: %.1f MiB, %.1f ms",
                    round_ + 1,
                    strategy,
                    variant,
                    result["peak_mib"],
                    result["ms_per_call_after_first"],
                )
                runs[strategy][variant].append(result)
    cases = {}
    for strategy, variants in runs.items():
        base = [r["peak_mib"] for r in variants[BASELINE]]
        cases[strategy] = {}
        for variant, results in variants.items():
            peaks = [r["peak_mib"] for r in results]
            cases[strategy][variant] = {
                "peak_mib": _summary(peaks),
                "ms_per_call": _summary(
                    [r["ms_per_call_after_first"] for r in results]
                ),
                "ratio_vs_baseline": _summary(
                    [b / max(p, 1e-3) for b, p in zip(base, peaks, strict=True)]
                ),
                "rounds": results,
            }
    report = {
        "baseline": BASELINE,
        "vocabulary": args.vocabulary,
        "dim": args.dim,
        "batch": args.batch,
        "tasks": TASKS,
        "calls_per_process": args.calls,
        "threads": args.threads,
        "repeats": args.repeats,
        "cpu_affinity": sorted(os.sched_getaffinity(0)),
        "machine": info,
        "cases": cases,
    }
    return write_report(args.out, report, markdown)


if __name__ == "__main__":
    main()
