"""What ``mtrec serve`` adds to a model call, and whether its memory stays flat.

Trains the shipped ESMM config for one epoch on a synthetic click log, exports
it, then:

1. **in-process**: calls the SavedModel's ``serving_default`` on one batch of
   100 candidates (tensors built beforehand) and times it: the floor;
2. starts ``mtrec serve`` in a subprocess (127.0.0.1, ephemeral ports) and runs
   ``mtrec.serving.loadtest`` with **one client** over REST and over gRPC, with
   the same batches: ``overhead ratio = server p50 / in-process p50``;
3. runs **concurrent load** (``--clients`` clients, ``--duration`` seconds per
   protocol) and samples the server's RSS every second over all phases:
   ``memory.growth_mb`` compares the first and last 10 s of the concurrent
   load, ``memory.slope_mb_per_min`` is a least-squares fit over it.

The load generator runs on the same machine as the server, so on a small box
the client's CPU use inflates the latencies: the figures are an upper bound
on the overhead. Prints JSON and writes ``benchmarks/results/serving_overhead.json``.

Usage (from the repository root, with the serving extra installed)::

    python benchmarks/serving_overhead.py [--rows 50000] [--clients 4]
        [--duration 60] [--latency-duration 15]
"""

import argparse
import json
import logging
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "serving_overhead.json"
MODEL = "esmm"
BATCH_SIZE = 100

logger = logging.getLogger("serving_overhead")


def _import_mtrec() -> None:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    import mtrec  # noqa: F401


def train_and_export(workdir: Path, rows: int) -> tuple[Path, Path, dict]:
    """Generates a click log, trains the shipped ESMM for one epoch, exports."""
    from mtrec.cli import _shipped_config
    from mtrec.data.synthetic import generate_click_log
    from mtrec.data.synthetic import write_table
    from mtrec.training import load_config
    from mtrec.training import train

    data = workdir / "click_log.csv"
    write_table(generate_click_log(rows, seed=7), data)
    config = load_config(
        _shipped_config("esmm"),
        [
            f"data.train={data}",
            f"runs_dir={workdir / 'runs'}",
            f"export.base={workdir / 'exports' / MODEL}",
            "train.epochs=1",
            "train.progress=false",
        ],
    )
    start = time.perf_counter()
    result = train(config)
    model = {
        "config": "mtrec/configs/esmm.yaml (1 epoch)",
        "train_rows": result.metrics["train_rows"],
        "parameters": int(result.model.count_params()),
        "train_seconds": round(time.perf_counter() - start, 1),
        "eval_auc": {
            k: round(v["auc"], 4)
            for k, v in result.metrics["eval"].items()
            if v.get("auc") is not None
        },
    }
    return data, result.export_path, model


def in_process_latency(export_path: Path, batch: dict, calls: int) -> dict:
    """p50/p95 of the SavedModel's ``serving_default`` on one prebuilt batch."""
    import tensorflow as tf

    from mtrec.serving.loadtest import percentiles_ms

    serve = tf.saved_model.load(str(export_path)).signatures["serving_default"]
    specs = serve.structured_input_signature[1]
    tensors = {k: tf.constant(v, dtype=specs[k].dtype) for k, v in batch.items()}
    for _ in range(20):
        serve(**tensors)
    latencies = []
    for _ in range(calls):
        start = time.perf_counter()
        outputs = serve(**tensors)
        _ = {k: v.numpy() for k, v in outputs.items()}
        latencies.append(time.perf_counter() - start)
    return {"calls": calls, "latency_ms": percentiles_ms(latencies)}


class Server:
    """``mtrec serve`` in a subprocess, with its RSS sampled every second."""

    def __init__(self, export_base: Path):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mtrec.cli", "serve", str(export_base)]
            + ["--name", MODEL, "--rest-port", "0", "--grpc-port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
        lines = []
        for line in self.process.stdout:
            lines.append(line)
            if line.startswith("gRPC"):
                break
        text = "".join(lines)
        self.rest_port = int(re.search(r"REST\s+http://[\d.]+:(\d+)", text).group(1))
        self.grpc_port = int(re.search(r"gRPC\s+[\d.]+:(\d+)", text).group(1))
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        import psutil

        process = psutil.Process(self.process.pid)
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), process.memory_info().rss / 2**20))
            self._stop.wait(1.0)

    def stop(self) -> None:
        self._stop.set()
        self._sampler.join()
        self.process.send_signal(signal.SIGTERM)
        self.process.communicate(timeout=60)


def load(protocol: str, port: int, data: Path, clients: int, duration: float) -> dict:
    from mtrec.serving import LoadTestConfig
    from mtrec.serving import run_load_test

    return run_load_test(
        LoadTestConfig(
            protocol=protocol,
            port=port,
            model=MODEL,
            data=data,
            clients=clients,
            duration_s=duration,
            warmup_s=2.0,
            batch_size=BATCH_SIZE,
        )
    )


def memory_report(samples: list[tuple[float, float]], start: float) -> dict:
    """RSS over the concurrent load: first vs last 10 s, and the fitted slope."""
    window = [(t - start, rss) for t, rss in samples if t >= start]
    times = np.array([t for t, _ in window])
    rss = np.array([r for _, r in window])
    first = rss[times <= times[0] + 10].mean()
    last = rss[times >= times[-1] - 10].mean()
    slope = np.polyfit(times / 60.0, rss, 1)[0] if len(window) > 2 else 0.0
    growth = float(last - first)
    return {
        "rss_mb_server_ready": round(samples[0][1], 1),
        "rss_mb_load_start": round(float(first), 1),
        "rss_mb_load_end": round(float(last), 1),
        "rss_mb_max": round(float(max(r for _, r in samples)), 1),
        "growth_mb": round(growth, 1),
        "slope_mb_per_min": round(float(slope), 2),
        "load_seconds": round(float(times[-1]), 1),
        # allocator noise is a few MB; a leak of one batch per request would
        # be hundreds of MB over thousands of requests
        "stable": bool(abs(growth) < max(25.0, 0.05 * first)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--latency-duration", type=float, default=15.0)
    parser.add_argument("--in-process-calls", type=int, default=500)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for noisy in ("absl", "tensorflow", "httpx", "mtrec"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _import_mtrec()
    import tensorflow as tf

    from mtrec.serving.loadtest import read_rows
    from mtrec.serving.loadtest import sample_batches

    load_start_avg = os.getloadavg()[0]  # other jobs on the machine skew latency
    with tempfile.TemporaryDirectory(prefix="mtrec-serving-bench-") as tmp:
        workdir = Path(tmp)
        logger.info("training the shipped ESMM on %d rows", args.rows)
        data, export_path, model = train_and_export(workdir, args.rows)
        serve = tf.saved_model.load(str(export_path)).signatures["serving_default"]
        specs = {k: v.dtype for k, v in serve.structured_input_signature[1].items()}
        rows = read_rows(data, specs, 20_000)
        batch = sample_batches(rows, BATCH_SIZE, 1, seed=0)[0]  # the load test's first
        logger.info("timing the in-process call")
        in_process = in_process_latency(export_path, batch, args.in_process_calls)

        logger.info("starting mtrec serve")
        server = Server(export_path.parent)
        try:
            single = {}
            for protocol in ("rest", "grpc"):
                port = server.rest_port if protocol == "rest" else server.grpc_port
                logger.info("%s, 1 client, %.0fs", protocol, args.latency_duration)
                single[protocol] = load(protocol, port, data, 1, args.latency_duration)
            concurrent = {}
            load_start = time.monotonic()
            for protocol in ("rest", "grpc"):
                port = server.rest_port if protocol == "rest" else server.grpc_port
                logger.info(
                    "%s, %d clients, %.0fs", protocol, args.clients, args.duration
                )
                concurrent[protocol] = load(
                    protocol, port, data, args.clients, args.duration
                )
        finally:
            server.stop()

    base = in_process["latency_ms"]["p50"]
    report = {
        "benchmark": "serving_overhead",
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "load_average_1min": {"start": load_start_avg, "end": os.getloadavg()[0]},
            "note": "load generator and server share the machine's CPUs",
        },
        "model": model,
        "batch_size": BATCH_SIZE,
        "in_process": in_process,
        "single_client": single,
        "overhead_ratio_p50": {
            p: round(single[p]["latency_ms"]["p50"] / base, 2) for p in single
        },
        "concurrent": concurrent,
        "memory": memory_report(server.samples, load_start),
    }
    text = json.dumps(report, indent=2)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
