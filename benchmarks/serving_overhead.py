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

With ``--batching``, it measures cross-request batching instead: two servers
on the same export, ``none`` (the baseline: one model call per request) and
``batching`` (``enable_batching`` with ``--batching-parameters``, the shipped
``serving/batching_parameters.txt`` by default), loaded in turn by
``--clients`` clients sending single-row requests, ``--repeats`` rounds
with the order alternating between rounds. It reports QPS and latency per
variant (median over rounds) and the ratio batching ÷ none per round (min /
median / max), plus the batcher's mean batch size; writes
``benchmarks/results/serving_batching.json`` and the ``serving_batching``
section of ``docs/benchmarks.md``.

Usage (from the repository root, with the serving extra installed)::

    python benchmarks/serving_overhead.py [--rows 50000] [--clients 4]
        [--duration 60] [--latency-duration 15]
    python benchmarks/serving_overhead.py --batching [--rows 20000]
        [--clients 8] [--duration 15] [--repeats 3]
"""

import argparse
import json
import logging
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from doc_sections import update_doc_section
from machine_info import cpu_description
from machine_info import machine
from machine_info import machine_cores

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "serving_overhead.json"
BATCHING_RESULTS = REPO / "benchmarks" / "results" / "serving_batching.json"
BATCHING_PARAMETERS = REPO / "serving" / "batching_parameters.txt"
DOC = REPO / "docs" / "benchmarks.md"
DOC_SECTION = "serving_batching"
MODEL = "esmm"
BATCH_SIZE = 100
#: The batching comparison's variants; the first is the baseline.
VARIANTS = ("none", "batching")

logger = logging.getLogger("serving_overhead")


def _import_mtrec() -> None:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    import mtrec  # noqa: F401


def train_and_export(workdir: Path, rows: int) -> tuple[Path, Path, dict]:
    """Generates a click log, trains the shipped ESMM for one epoch, exports."""
    from mtrec import shipped_config
    from mtrec.data import generate_click_log
    from mtrec.data import write_table
    from mtrec.training import load_config
    from mtrec.training import train

    data = workdir / "click_log.csv"
    write_table(generate_click_log(rows, seed=7), data)
    config = load_config(
        shipped_config("esmm"),
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

    from mtrec.serving import percentiles_ms

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
    """A model server in a subprocess, with its RSS sampled every second.

    Args:
      export_base: the export base to serve.
      batching_parameters: ``None`` runs ``mtrec serve``; a path runs this
        script's ``--serve-child`` with ``enable_batching`` and that file;
        ``""`` runs ``--serve-child`` without batching (the same code path).
    """

    def __init__(self, export_base: Path, batching_parameters: str | None = None):
        if batching_parameters is None:
            command = [sys.executable, "-m", "mtrec.cli", "serve", str(export_base)]
            command += ["--name", MODEL, "--rest-port", "0", "--grpc-port", "0"]
        else:
            command = [sys.executable, __file__, "--serve-child", str(export_base)]
            command += ["--batching-parameters", batching_parameters]
        self.process = subprocess.Popen(
            command,
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
        rest = re.search(r"REST\s+http://[\d.]+:(\d+)", text)
        grpc = re.search(r"gRPC\s+[\d.]+:(\d+)", text)
        if not (rest and grpc):
            self.process.kill()
            raise RuntimeError(f"the server did not start: {text!r}")
        self.rest_port = int(rest.group(1))
        self.grpc_port = int(grpc.group(1))
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def port(self, protocol: str) -> int:
        return self.rest_port if protocol == "rest" else self.grpc_port

    def _sample(self) -> None:
        import psutil

        process = psutil.Process(self.process.pid)
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), process.memory_info().rss / 2**20))
            self._stop.wait(1.0)

    def stop(self) -> str:
        """Stops the server; returns what it printed after starting."""
        self._stop.set()
        self._sampler.join()
        self.process.send_signal(signal.SIGTERM)
        remaining, _ = self.process.communicate(timeout=60)
        return remaining


def serve_child(export_base: str, batching_parameters: str) -> int:
    """``--serve-child``: a ModelServer in this process until SIGTERM; prints
    its ports as ``mtrec serve`` does, and the batcher's counts on exit."""
    _import_mtrec()
    from mtrec.serving import ModelManager
    from mtrec.serving import ModelServer
    from mtrec.serving import ServerOptions

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    options = ServerOptions(
        rest_port=0,
        grpc_port=0,
        enable_batching=bool(batching_parameters),
        batching_parameters_file=batching_parameters or None,
    )
    server = ModelServer(ModelManager(MODEL, export_base, poll_seconds=0), options)
    server.start()
    print(f"REST  {server.rest_url}\ngRPC  {server.grpc_target}", flush=True)
    stop.wait()
    stats = server.batcher.stats() if server.batcher is not None else {}
    server.stop()
    print(json.dumps({"batcher": stats}), flush=True)
    return 0


def load(
    protocol: str,
    port: int,
    data: Path,
    clients: int,
    duration: float,
    batch_size: int = BATCH_SIZE,
) -> dict:
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
            batch_size=batch_size,
        )
    )


def serving_machine(tf, info: dict, note: str) -> dict:
    """The report's ``machine``: ``info``, ``machine_info.machine()`` taken
    before the run (cores, platform, Python, the CPU), TensorFlow's version,
    the 1-minute load average then and now, and ``note``."""
    return {
        **info,
        "tensorflow": tf.__version__,
        "load_average_1min": {
            "start": info["load_average_at_start"][0],
            "end": os.getloadavg()[0],
        },
        "note": note,
    }


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


def batching_summary(runs: list[dict], protocols: list[str]) -> dict:
    """Per protocol and variant: median QPS and p50/p99 over rounds, and the
    per-round ratio of QPS to the baseline's (min / median / max)."""
    out = {}
    for protocol in protocols:
        by = {
            v: [r for r in runs if r["protocol"] == protocol and r["variant"] == v]
            for v in VARIANTS
        }
        baseline = [r["qps"] for r in by[VARIANTS[0]]]
        out[protocol] = {}
        for variant, rounds in by.items():
            qps = [r["qps"] for r in rounds]
            per_round = [a / b for a, b in zip(qps, baseline, strict=True)]
            out[protocol][variant] = {
                "qps": round(statistics.median(qps), 1),
                "p50_ms": round(statistics.median(r["p50_ms"] for r in rounds), 2),
                "p99_ms": round(statistics.median(r["p99_ms"] for r in rounds), 2),
                "errors": sum(r["errors"] for r in rounds),
                "ratio_qps": {
                    "min": round(min(per_round), 3),
                    "median": round(statistics.median(per_round), 3),
                    "max": round(max(per_round), 3),
                    "per_round": [round(x, 3) for x in per_round],
                },
            }
    return out


def batching_markdown(report: dict) -> str:
    info = report["machine"]
    load = info["load_average_1min"]
    stats = report["batcher"]
    lines = [
        f"`{report['command']}`",
        "",
        f"Rows: {report['rows']:,} (synthetic click log, seed 7); model: the "
        "shipped `esmm` config, 1 epoch; two servers on the same export, "
        "`none` (one model call per request, the baseline) and `batching` "
        f"(`enable_batching` with `{report['batching_parameters']}`); "
        f"{report['clients']} clients sending single-row requests back to back, "
        f"{report['duration_s']:g} s per load after 2 s of warm-up; "
        f"{report['repeats']} rounds, the order of the two alternating; load "
        "generator and servers on this machine's "
        f"{machine_cores(info)} cores, {cpu_description(info)} (load "
        f"average {load['start']:.2f} at start, {load['end']:.2f} at end).",
        "",
        "| protocol | variant | QPS | p50 ms | p99 ms | QPS ÷ none (median, min–max) |",
        "|---|---|---|---|---|---|",
    ]
    for protocol, variants in report["summary"].items():
        for variant, e in variants.items():
            r = e["ratio_qps"]
            lines.append(
                f"| {protocol} | {variant} | {e['qps']:,.0f} | {e['p50_ms']} | "
                f"{e['p99_ms']} | {r['median']} ({r['min']}–{r['max']}) |"
            )
    if stats.get("batches"):
        lines += [
            "",
            f"The batcher merged {stats['requests']:,} requests into "
            f"{stats['batches']:,} batches: {stats['rows'] / stats['batches']:.2f} "
            "rows per model call on average (1.0 would be no merging).",
        ]
    return "\n".join(lines)


def run_batching(args: argparse.Namespace) -> int:
    """``--batching``: the batching comparison (see the module docstring)."""
    _import_mtrec()
    import tensorflow as tf

    info = machine()  # before the loads: other jobs on the machine skew latency
    runs = []
    with tempfile.TemporaryDirectory(prefix="mtrec-serving-batching-") as tmp:
        logger.info("training the shipped ESMM on %d rows", args.rows)
        data, export_path, model = train_and_export(Path(tmp), args.rows)
        servers = {
            "none": Server(export_path.parent, ""),
            "batching": Server(export_path.parent, str(args.batching_parameters)),
        }
        try:
            for round_index in range(args.repeats):
                order = VARIANTS if round_index % 2 == 0 else VARIANTS[::-1]
                for protocol in args.protocols:
                    for variant in order:
                        logger.info(
                            "round %d, %s, %s, %d clients, %.0fs",
                            round_index,
                            protocol,
                            variant,
                            args.clients,
                            args.duration,
                        )
                        result = load(
                            protocol,
                            servers[variant].port(protocol),
                            data,
                            args.clients,
                            args.duration,
                            batch_size=1,
                        )
                        runs.append(
                            {
                                "round": round_index,
                                "protocol": protocol,
                                "variant": variant,
                                "qps": result["qps"],
                                "p50_ms": result["latency_ms"]["p50"],
                                "p99_ms": result["latency_ms"]["p99"],
                                "errors": result["errors"],
                                "error_kinds": result["error_kinds"],
                            }
                        )
        finally:
            printed = {name: server.stop() for name, server in servers.items()}
    stats = json.loads(printed["batching"].strip().splitlines()[-1])["batcher"]
    report = {
        "benchmark": "serving_batching",
        "command": "python benchmarks/serving_overhead.py --batching "
        + " ".join(
            [
                f"--rows {args.rows}",
                f"--clients {args.clients}",
                f"--duration {args.duration:g}",
                f"--repeats {args.repeats}",
            ]
        ),
        "machine": serving_machine(
            tf,
            info,
            "load generator and both servers share the machine's CPUs",
        ),
        "model": model,
        "rows": args.rows,
        "clients": args.clients,
        "batch_size": 1,
        "duration_s": args.duration,
        "repeats": args.repeats,
        "batching_parameters": str(
            Path(args.batching_parameters).resolve().relative_to(REPO)
            if Path(args.batching_parameters).resolve().is_relative_to(REPO)
            else args.batching_parameters
        ),
        "batcher": stats,
        "summary": batching_summary(runs, args.protocols),
        "runs": runs,
    }
    text = json.dumps(report, indent=2)
    print(text)
    out = Path(args.out or BATCHING_RESULTS)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    markdown = batching_markdown(report)
    print(markdown)
    if args.doc:
        update_doc_section(Path(args.doc), DOC_SECTION, markdown)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--clients", type=int, default=None)
    parser.add_argument("--duration", type=float, default=None)
    parser.add_argument("--latency-duration", type=float, default=15.0)
    parser.add_argument("--in-process-calls", type=int, default=500)
    parser.add_argument("--out", default=None)
    parser.add_argument(
        "--batching", action="store_true", help="compare batching with none"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--protocols", nargs="+", default=["rest", "grpc"], choices=["rest", "grpc"]
    )
    parser.add_argument("--batching-parameters", default=str(BATCHING_PARAMETERS))
    parser.add_argument("--doc", default=str(DOC), help="'' to leave docs alone")
    parser.add_argument("--serve-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if args.serve_child:
        return serve_child(args.serve_child, args.batching_parameters)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for noisy in ("absl", "tensorflow", "httpx", "mtrec"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.batching:
        args.rows = args.rows or 20_000
        args.clients = args.clients or 8
        args.duration = args.duration or 15.0
        if args.repeats < 1 or args.clients < 1 or args.duration <= 0:
            raise SystemExit(
                "Need --repeats >= 1, --clients >= 1 and --duration > 0. Received: "
                f"--repeats {args.repeats}, --clients {args.clients}, "
                f"--duration {args.duration:g}"
            )
        return run_batching(args)
    args.rows = args.rows or 50_000
    args.clients = args.clients or 4
    args.duration = args.duration or 60.0
    args.out = args.out or str(RESULTS)
    _import_mtrec()
    import tensorflow as tf

    from mtrec.serving import read_rows
    from mtrec.serving import sample_batches

    info = machine()  # before the loads: other jobs on the machine skew latency
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
        "machine": serving_machine(
            tf, info, "load generator and server share the machine's CPUs"
        ),
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
