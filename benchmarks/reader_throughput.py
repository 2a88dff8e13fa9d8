"""Rows/s and peak RSS of ``make_dataset`` versus one ``pandas.read_csv`` call.

Writes a synthetic click log (default 1M rows, 16 columns, 15 read) to a temporary
directory, then measures, each in a fresh process so that peak RSS is per
method:

- ``pandas_read_csv``: ``pandas.read_csv(path)`` of the whole file at once (no
  validation, everything in memory): the baseline;
- ``iter_chunks``: the validating chunk reader alone (numpy chunks);
- ``make_dataset``: one epoch of ``make_dataset(batch_size=4096, shuffle=True)``.

Then, in one more process pinned to one core (``os.sched_setaffinity``), the
native input path against the generator path it replaces:

- ``prepare_data``: the validating prepare pass into a fresh cache (cold), and
  the same call again (a cache hit: hashing the file, reading the manifest);
- ``generator_vs_native``: one shuffled epoch of ``make_dataset`` (the
  baseline: ``from_generator`` over the validating reader) and one of
  ``native_dataset`` over the prepared shards, same batch size and shuffle
  buffer, alternated ``--pairs`` times after one untimed warm-up batch each;
  batches/s of each and the ratio native / generator per pair (min, median,
  max), on wall-clock time and on the process's CPU time (user + system, all
  threads). On a shared machine another process may take the pinned core for
  part of an epoch, which slows the wall clock but not the CPU time, so the
  CPU-time ratio is the steadier measure of the work each path does.

Prints JSON to stdout and writes it to ``benchmarks/results/reader_throughput.json``.

Usage (from the repository root)::

    python benchmarks/reader_throughput.py [--rows 1000000] [--batch-size 4096]
        [--repeats 3] [--pairs 5]
"""

import argparse
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine_info import machine

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "reader_throughput.json"
METHODS = ("pandas_read_csv", "iter_chunks", "make_dataset")
#: The one-core comparison of the generator path with the native path.
NATIVE = "generator_vs_native"
SHUFFLE_BUFFER_ROWS = 262_144

logger = logging.getLogger("reader_throughput")


def _import_mtrec() -> None:
    """Imports mtrec (and so TensorFlow with Keras 2) from the checkout."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    import mtrec  # noqa: F401


def schema():
    """The benchmark's column schema (15 columns read, 1 ignored)."""
    from mtrec.data import ColumnSchema

    return ColumnSchema(
        string_columns=("user_id", "category", "city", "device"),
        int_columns=("item_id", "hour"),
        float_columns={f"dense_{i}": 0.0 for i in range(5)},
        label_columns=("click", "conversion"),
        regression_label_columns=("dwell",),
        passthrough_columns={"true_ctr": "float"},
        label_requires={"conversion": "click"},
    )


def write_csv(path: Path, rows: int, seed: int) -> None:
    """Writes a random click log with 16 columns (``ignored`` is not read)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    click = rng.random(rows) < 0.1
    columns = {
        "user_id": np.char.add("u", rng.integers(0, 100_000, rows).astype(str)),
        "item_id": rng.integers(0, 1_000_000, rows),
        "category": np.char.add("c", rng.integers(0, 500, rows).astype(str)),
        "city": np.char.add("city", rng.integers(0, 300, rows).astype(str)),
        "device": rng.choice(np.array(["ios", "android", "web"]), rows),
        "hour": rng.integers(0, 24, rows),
    }
    for i in range(5):
        columns[f"dense_{i}"] = np.round(rng.normal(size=rows), 4)
    columns["click"] = click.astype(np.int8)
    columns["conversion"] = (click & (rng.random(rows) < 0.2)).astype(np.int8)
    columns["dwell"] = np.round(rng.exponential(30.0, rows), 2)
    columns["true_ctr"] = np.round(rng.random(rows) * 0.2, 4)
    columns["ignored"] = rng.integers(0, 10, rows)
    pd.DataFrame(columns).to_csv(path, index=False)


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def measure(method: str, path: Path, batch_size: int, seed: int, repeats: int) -> dict:
    """Times one method ``repeats`` times in this process.

    Returns:
      rows, best and median seconds and rows/s (the machine may be shared, so
      the best run is the least disturbed), peak RSS, and RSS before reading
      (the cost of importing TensorFlow and pandas).
    """
    _import_mtrec()
    import pandas as pd

    from mtrec.data import iter_chunks
    from mtrec.data import make_dataset

    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}. Received: {method!r}")
    rss_before = _peak_rss_mb()
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        if method == "pandas_read_csv":
            rows = len(pd.read_csv(path))
        elif method == "iter_chunks":
            rows = sum(len(chunk["click"]) for chunk in iter_chunks(path, schema()))
        else:
            dataset = make_dataset(
                path, schema(), batch_size=batch_size, shuffle=True, seed=seed
            )
            rows = sum(int(batch["click"].shape[0]) for batch in dataset)
        timings.append(time.perf_counter() - start)
    best, median = min(timings), statistics.median(timings)
    return {
        "rows": rows,
        "repeats": repeats,
        "seconds_best": round(best, 3),
        "seconds_median": round(median, 3),
        "rows_per_second": round(rows / best),
        "rows_per_second_median": round(rows / median),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "rss_before_read_mb": round(rss_before, 1),
    }


def _pin_to_one_core() -> int:
    """Pins this process (and the threads it starts later) to one core."""
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return core


def _epoch(dataset) -> tuple[float, float, int, int]:
    """Wall seconds, CPU seconds, batches and rows of one pass over ``dataset``."""
    start, cpu_start = time.perf_counter(), time.process_time()
    batches = rows = 0
    for batch in dataset:
        batches += 1
        rows += int(batch["click"].shape[0])
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return wall, cpu, batches, rows


def _ratios(values: list[float]) -> dict:
    return {
        "min": round(min(values), 3),
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
    }


def measure_native(path: Path, batch_size: int, seed: int, pairs: int) -> dict:
    """Prepare once (cold, then cached), then alternate the two input paths.

    Returns:
      prepare seconds (cold and cached), per-pair seconds and batches/s of
      ``make_dataset`` and ``native_dataset``, the native / generator ratio of
      batches/s per pair (min, median, max), and peak RSS.
    """
    core = _pin_to_one_core()
    _import_mtrec()
    from mtrec.data import make_dataset
    from mtrec.data import native_dataset
    from mtrec.data import prepare_data

    with tempfile.TemporaryDirectory() as cache:
        start, cpu_start = time.perf_counter(), time.process_time()
        prepared = prepare_data(path, schema(), cache)
        prepare_cold = time.perf_counter() - start
        prepare_cold_cpu = time.process_time() - cpu_start
        start = time.perf_counter()
        again = prepare_data(path, schema(), cache)
        prepare_cached = time.perf_counter() - start
        assert again == prepared
        shard_mb = sum(p.stat().st_size for p in prepared.part().shards) / 2**20

        generator = make_dataset(
            path,
            schema(),
            batch_size=batch_size,
            shuffle=True,
            seed=seed,
            shuffle_buffer_rows=SHUFFLE_BUFFER_ROWS,
        )
        native = native_dataset(
            prepared,
            batch_size,
            shuffle=True,
            seed=seed,
            shuffle_buffer_rows=SHUFFLE_BUFFER_ROWS,
        )
        for dataset in (generator, native):  # untimed: tracing, thread pools
            next(iter(dataset))
        timings: dict[str, list[float]] = {"make_dataset": [], "native_dataset": []}
        cpu_timings: dict[str, list[float]] = {name: [] for name in timings}
        counts = {}
        for _ in range(pairs):
            for name, dataset in (
                ("make_dataset", generator),
                ("native_dataset", native),
            ):
                seconds, cpu_seconds, batches, rows = _epoch(dataset)
                timings[name].append(seconds)
                cpu_timings[name].append(cpu_seconds)
                counts[name] = (batches, rows)
        if counts["make_dataset"] != counts["native_dataset"]:
            raise RuntimeError(f"the two paths yield different counts: {counts}")
    batches, rows = counts["native_dataset"]
    per_pair = [
        generator_seconds / native_seconds
        for generator_seconds, native_seconds in zip(
            timings["make_dataset"], timings["native_dataset"], strict=True
        )
    ]
    per_pair_cpu = [
        generator_seconds / native_seconds
        for generator_seconds, native_seconds in zip(
            cpu_timings["make_dataset"], cpu_timings["native_dataset"], strict=True
        )
    ]
    return {
        "core": core,
        "rows": rows,
        "batches_per_epoch": batches,
        "pairs": pairs,
        "prepare_data": {
            "cold_seconds": round(prepare_cold, 3),
            "cold_rows_per_second": round(rows / prepare_cold),
            "cold_cpu_seconds": round(prepare_cold_cpu, 3),
            "cached_seconds": round(prepare_cached, 3),
            "shards": len(prepared.part().shards),
            "shard_mb": round(shard_mb, 1),
        },
        **{
            name: {
                "seconds": [round(s, 3) for s in seconds],
                "batches_per_second": [round(batches / s, 1) for s in seconds],
                "batches_per_second_median": round(
                    batches / statistics.median(seconds), 1
                ),
                "ms_per_batch_median": round(
                    1000 * statistics.median(seconds) / batches, 3
                ),
                "cpu_seconds": [round(s, 3) for s in cpu_timings[name]],
                "cpu_ms_per_batch_median": round(
                    1000 * statistics.median(cpu_timings[name]) / batches, 3
                ),
            }
            for name, seconds in timings.items()
        },
        "native_vs_make_dataset_batches_per_second": _ratios(per_pair),
        "native_vs_make_dataset_batches_per_cpu_second": _ratios(per_pair_cpu),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--measure", choices=(*METHODS, NATIVE), help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure == NATIVE:
        result = measure_native(args.path, args.batch_size, args.seed, args.pairs)
        print(json.dumps(result))
        return result
    if args.measure:  # child process: one measurement, JSON on stdout
        result = measure(
            args.measure, args.path, args.batch_size, args.seed, args.repeats
        )
        print(json.dumps(result))
        return result

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    info = machine()  # before the runs: its load is the load they met
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "click_log.csv"
        start = time.perf_counter()
        write_csv(path, args.rows, args.seed)
        logger.info(
            "Wrote %d rows (%.1f MB) in %.1f s",
            args.rows,
            path.stat().st_size / 2**20,
            time.perf_counter() - start,
        )
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        results = {}
        for method in (*METHODS, NATIVE):
            command = [
                sys.executable,
                __file__,
                "--measure",
                method,
                "--path",
                str(path),
                "--batch-size",
                str(args.batch_size),
                "--seed",
                str(args.seed),
                "--repeats",
                str(args.repeats),
                "--pairs",
                str(args.pairs),
            ]
            done = subprocess.run(
                command, capture_output=True, text=True, env=env, check=True
            )
            results[method] = json.loads(done.stdout.strip().splitlines()[-1])
            logger.info("%s: %s", method, results[method])
        file_mb = path.stat().st_size / 2**20
    baseline = results["pandas_read_csv"]["rows_per_second"]
    report = {
        "rows": args.rows,
        "columns_in_file": 16,
        "columns_read": 15,
        "file_mb": round(file_mb, 1),
        "batch_size": args.batch_size,
        "shuffle": True,
        "machine": info,
        "results": results,
        "make_dataset_vs_pandas": round(
            results["make_dataset"]["rows_per_second"] / baseline, 3
        ),
        "iter_chunks_vs_pandas": round(
            results["iter_chunks"]["rows_per_second"] / baseline, 3
        ),
        "native_vs_make_dataset_one_core": {
            "wall_clock": results[NATIVE]["native_vs_make_dataset_batches_per_second"],
            "cpu_time": results[NATIVE][
                "native_vs_make_dataset_batches_per_cpu_second"
            ],
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
