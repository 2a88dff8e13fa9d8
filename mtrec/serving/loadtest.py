"""Load test a TF Serving-compatible server (mtrec serve or TF Serving itself).

``N`` client threads send predict requests back to back for ``T`` seconds,
each request a batch of ``batch_size`` candidate rows sampled from a real click
log, over REST (``httpx``, one keep-alive connection per client) or gRPC (the
official ``PredictionServiceStub``, one channel per client). The input names
and dtypes come from the server's own metadata API, so the tool needs nothing
but the click log and the address. Payloads are encoded before the clock
starts, so the figures measure the server, not the client's encoding.

The report (JSON): requests, errors by kind, QPS (requests per second),
candidates per second, and latency percentiles in milliseconds, over the
measured window (after ``warmup_s``).
"""

import dataclasses
import ipaddress
import json
import logging
import os
import socket
import threading
import time
from collections import Counter

import numpy as np
import tensorflow as tf

logger = logging.getLogger(__name__)

PROTOCOLS = ("rest", "grpc")
#: Socket option for HTTP clients: send small writes at once (no Nagle delay).
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
FORMATS = ("row", "columnar")


@dataclasses.dataclass
class LoadTestConfig:
    """What to load and how hard.

    Attributes:
      protocol: ``"rest"`` or ``"grpc"``.
      port: the server's REST or gRPC port.
      model: the model name.
      data: a click log (CSV or Parquet) holding every input column.
      host: the server host. Default ``127.0.0.1``; anything that is not a
        loopback address needs ``allow_remote``.
      clients: concurrent clients. Default 4.
      duration_s: measured seconds. Default 30.
      warmup_s: seconds of load before measuring. Default 2.
      batch_size: candidate rows per request. Default 100.
      signature: the signature to call. Default ``serving_default``.
      rest_format: REST body format, ``"row"`` (``instances``, default) or
        ``"columnar"`` (``inputs``).
      num_batches: distinct batches, cycled through. Default 64.
      max_rows: rows read from the click log to sample batches from. Default
        20000.
      seed: sampling seed for the batches. Default 0.
      timeout_s: per-request timeout. Default 10.
      allow_remote: allow a non-loopback host.
    """

    protocol: str
    port: int
    model: str
    data: str | os.PathLike
    host: str = "127.0.0.1"
    clients: int = 4
    duration_s: float = 30.0
    warmup_s: float = 2.0
    batch_size: int = 100
    signature: str = "serving_default"
    rest_format: str = "row"
    num_batches: int = 64
    max_rows: int = 20_000
    seed: int = 0
    timeout_s: float = 10.0
    allow_remote: bool = False

    def __post_init__(self):
        if self.protocol not in PROTOCOLS:
            raise ValueError(
                f"`protocol` must be one of {PROTOCOLS}. "
                f"Received: `protocol={self.protocol!r}`"
            )
        if self.rest_format not in FORMATS:
            raise ValueError(
                f"`rest_format` must be one of {FORMATS}. "
                f"Received: `rest_format={self.rest_format!r}`"
            )
        for name in ("clients", "batch_size", "num_batches", "max_rows"):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"`{name}` must be >= 1. Received: `{name}={getattr(self, name)}`"
                )
        if self.duration_s <= 0 or self.warmup_s < 0:
            raise ValueError(
                "`duration_s` must be > 0 and `warmup_s` >= 0. Received: "
                f"`duration_s={self.duration_s}`, `warmup_s={self.warmup_s}`"
            )
        if not self.allow_remote and not is_loopback(self.host):
            raise ValueError(
                f"`host` {self.host!r} is not a loopback address; load testing "
                "another machine needs `allow_remote` (--allow-remote)"
            )


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        return False


# --------------------------------------------------------------------------- #
# Clients
# --------------------------------------------------------------------------- #


class RestClient:
    """TF Serving REST predict over one keep-alive ``httpx`` connection."""

    def __init__(self, config: LoadTestConfig):
        import httpx

        self.config = config
        self.url = (
            f"http://{config.host}:{config.port}/v1/models/{config.model}:predict"
        )
        # TCP_NODELAY: httpx writes the headers and the body separately, and
        # Nagle's algorithm would hold the body until the server's delayed ACK
        # (~40 ms on Linux); curl and TF Serving's clients disable it too.
        self._http = httpx.Client(
            timeout=config.timeout_s,
            limits=httpx.Limits(max_connections=1),
            transport=httpx.HTTPTransport(socket_options=NODELAY),
        )

    @staticmethod
    def input_specs(config: LoadTestConfig) -> dict[str, tf.DType]:
        import httpx

        url = f"http://{config.host}:{config.port}/v1/models/{config.model}/metadata"
        response = httpx.get(url, timeout=config.timeout_s)
        if response.status_code != 200:
            raise RuntimeError(f"GET {url}: {response.status_code} {response.text}")
        signatures = response.json()["metadata"]["signature_def"]["signature_def"]
        if config.signature not in signatures:
            raise RuntimeError(
                f"signature {config.signature!r} not in {sorted(signatures)}"
            )
        return {
            name: tf.dtypes.as_dtype(info["dtype"].removeprefix("DT_").lower())
            for name, info in signatures[config.signature]["inputs"].items()
        }

    def encode(self, batch: dict[str, np.ndarray]) -> bytes:
        columns = {name: _json_column(values) for name, values in batch.items()}
        body = {"signature_name": self.config.signature}
        if self.config.rest_format == "columnar":
            body["inputs"] = columns
        else:
            names = list(columns)
            body["instances"] = [
                dict(zip(names, row)) for row in zip(*columns.values())
            ]
        return json.dumps(body, separators=(",", ":")).encode()

    def send(self, payload: bytes) -> str | None:
        """Sends one request; returns ``None`` or the error kind."""
        try:
            response = self._http.post(
                self.url, content=payload, headers={"Content-Type": "application/json"}
            )
        except Exception as err:  # counted, the load goes on
            return type(err).__name__
        if response.status_code != 200:
            return f"HTTP {response.status_code}"
        response.read()
        return None

    def close(self) -> None:
        self._http.close()


class GrpcClient:
    """TF Serving gRPC ``Predict`` through ``PredictionServiceStub``."""

    def __init__(self, config: LoadTestConfig):
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        self.config = config
        self._channel = grpc.insecure_channel(
            f"{config.host}:{config.port}",
            options=[("grpc.max_receive_message_length", -1)],
        )
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)

    @staticmethod
    def input_specs(config: LoadTestConfig) -> dict[str, tf.DType]:
        import grpc
        from tensorflow_serving.apis import get_model_metadata_pb2
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        with grpc.insecure_channel(f"{config.host}:{config.port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            request = get_model_metadata_pb2.GetModelMetadataRequest()
            request.model_spec.name = config.model
            request.metadata_field.append("signature_def")
            response = stub.GetModelMetadata(request, timeout=config.timeout_s)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signatures)
        if config.signature not in signatures.signature_def:
            raise RuntimeError(
                f"signature {config.signature!r} not in "
                f"{sorted(signatures.signature_def)}"
            )
        return {
            name: tf.dtypes.as_dtype(info.dtype)
            for name, info in signatures.signature_def[config.signature].inputs.items()
        }

    def encode(self, batch: dict[str, np.ndarray]):
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        request.model_spec.name = self.config.model
        request.model_spec.signature_name = self.config.signature
        for name, values in batch.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(values))
        return request

    def send(self, payload) -> str | None:
        import grpc

        try:
            self._stub.Predict(payload, timeout=self.config.timeout_s)
        except grpc.RpcError as err:
            return f"gRPC {err.code().name}"
        except Exception as err:  # counted, the load goes on
            return type(err).__name__
        return None

    def close(self) -> None:
        self._channel.close()


def _json_column(values: np.ndarray) -> list:
    if values.dtype == object:
        return [v.decode() if isinstance(v, bytes) else str(v) for v in values]
    return values.tolist()


# --------------------------------------------------------------------------- #
# Data
# --------------------------------------------------------------------------- #


def read_rows(
    path: str | os.PathLike, specs: dict[str, tf.DType], max_rows: int
) -> dict[str, np.ndarray]:
    """Up to ``max_rows`` validated rows of the input columns of a click log."""
    from mtrec.data.reader import iter_chunks
    from mtrec.data.schema import ColumnSchema

    unsupported = {n: d.name for n, d in specs.items() if d not in _READABLE}
    if unsupported:
        raise ValueError(
            f"inputs {unsupported} cannot be read from a click log; "
            "load testing needs string, int64 or float32 inputs"
        )
    schema = ColumnSchema(
        string_columns=tuple(n for n, d in specs.items() if d == tf.string),
        int_columns=tuple(n for n, d in specs.items() if d == tf.int64),
        float_columns={n: 0.0 for n, d in specs.items() if d == tf.float32},
    )
    chunk = next(iter_chunks(path, schema, chunk_rows=max_rows), None)
    if chunk is None:
        raise ValueError(f"{path} holds no rows")
    rows = {}
    for name, dtype in specs.items():
        values = chunk[name]
        if dtype == tf.string:
            values = np.array([str(v).encode() for v in values], dtype=object)
        rows[name] = values
    return rows


_READABLE = (tf.string, tf.int64, tf.float32)


def sample_batches(
    rows: dict[str, np.ndarray], batch_size: int, num_batches: int, seed: int
) -> list[dict[str, np.ndarray]]:
    """``num_batches`` batches of ``batch_size`` rows sampled without replacement."""
    count = len(next(iter(rows.values())))
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(num_batches):
        index = rng.choice(count, size=batch_size, replace=count < batch_size)
        batches.append({name: values[index] for name, values in rows.items()})
    return batches


# --------------------------------------------------------------------------- #
# The run
# --------------------------------------------------------------------------- #


def percentiles_ms(latencies_s: list[float]) -> dict[str, float | None]:
    if not latencies_s:
        return {"p50": None, "p95": None, "p99": None, "mean": None, "max": None}
    values = np.asarray(latencies_s) * 1000.0
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {
        "p50": round(float(p50), 3),
        "p95": round(float(p95), 3),
        "p99": round(float(p99), 3),
        "mean": round(float(values.mean()), 3),
        "max": round(float(values.max()), 3),
    }


def run_load_test(config: LoadTestConfig) -> dict:
    """Runs the load test; returns the report (see the module docstring)."""
    client_cls = RestClient if config.protocol == "rest" else GrpcClient
    specs = client_cls.input_specs(config)
    rows = read_rows(config.data, specs, config.max_rows)
    batches = sample_batches(
        rows, config.batch_size, config.num_batches, seed=config.seed
    )
    clients = [client_cls(config) for _ in range(config.clients)]
    payloads = [clients[0].encode(batch) for batch in batches]
    done, elapsed = _run_clients(
        clients, payloads, warmup_s=config.warmup_s, duration_s=config.duration_s
    )
    for client in clients:
        client.close()
    return _report(config, done, elapsed)


def _run_clients(
    clients: list, payloads: list, *, warmup_s: float, duration_s: float
) -> tuple[list[tuple[float, str | None]], float]:
    """Runs one thread per client for ``warmup_s + duration_s`` seconds; returns
    the ``(latency_s, error)`` of every measured request and the measured
    seconds."""
    start = time.perf_counter()
    measure_from = start + warmup_s
    stop_at = measure_from + duration_s
    results: list[list[tuple[float, str | None]]] = [[] for _ in clients]
    threads = [
        threading.Thread(
            target=_send_until,
            args=(client, payloads, i, measure_from, stop_at, results[i]),
            name=f"loadtest-{i}",
            daemon=True,
        )
        for i, client in enumerate(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = max(time.perf_counter() - measure_from, 1e-9)
    return [r for per_client in results for r in per_client], elapsed


def _send_until(
    client,
    payloads: list,
    first: int,
    measure_from: float,
    stop_at: float,
    out: list[tuple[float, str | None]],
) -> None:
    """One client's loop: sends the payloads in turn, from index ``first``, until
    ``stop_at``; appends ``(latency_s, error)`` of requests begun after
    ``measure_from`` to ``out``."""
    i = first
    while True:
        began = time.perf_counter()
        if began >= stop_at:
            return
        error = client.send(payloads[i % len(payloads)])
        if began >= measure_from:
            out.append((time.perf_counter() - began, error))
        i += 1


def _report(
    config: LoadTestConfig, done: list[tuple[float, str | None]], elapsed: float
) -> dict:
    """The report of the measured requests ``done`` over ``elapsed`` seconds."""
    ok = [latency for latency, error in done if error is None]
    errors = Counter(error for _, error in done if error is not None)
    return {
        "protocol": config.protocol,
        "target": f"{config.host}:{config.port}",
        "model": config.model,
        "signature": config.signature,
        "format": config.rest_format if config.protocol == "rest" else "tensor_proto",
        "clients": config.clients,
        "batch_size": config.batch_size,
        "duration_s": round(elapsed, 3),
        "requests": len(done),
        "ok": len(ok),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "qps": round(len(ok) / elapsed, 2),
        "candidates_per_s": round(len(ok) * config.batch_size / elapsed, 1),
        "latency_ms": percentiles_ms(ok),
    }
