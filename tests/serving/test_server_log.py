"""`mtrec serve`'s log stays clean: no traceback for client errors or clients
that hang up (only an unexpected server failure logs one)."""

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from serving_helpers import MODEL
from serving_helpers import json_rows

grpc = pytest.importorskip("grpc", reason="needs the serving extra")
httpx = pytest.importorskip("httpx", reason="needs the serving extra")

import tensorflow as tf  # noqa: E402
from tensorflow_serving.apis import predict_pb2  # noqa: E402
from tensorflow_serving.apis import prediction_service_pb2_grpc  # noqa: E402

START_SECONDS = 120


def _lines(stream, into: queue.Queue) -> None:
    for line in stream:
        into.put(line)
    into.put(None)


def _start(command: list[str]) -> tuple[subprocess.Popen, str, str]:
    """Starts ``mtrec serve``; returns it, its REST URL and gRPC target."""
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(process.stdout, lines), daemon=True).start()
    seen, deadline = "", time.monotonic() + START_SECONDS
    while not seen.count("gRPC") and time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line is None:
            break
        seen += line
    rest = re.search(r"REST\s+(http://127\.0\.0\.1:\d+)", seen)
    target = re.search(r"gRPC\s+(127\.0\.0\.1:\d+)", seen)
    if not (rest and target):
        process.kill()
        pytest.fail(f"mtrec serve did not start: {seen!r} {process.stderr.read()}")
    return process, rest.group(1), target.group(1)


def _hang_up(url: str, payload: bytes, *, send_all: bool) -> None:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        head = (
            f"POST /v1/models/{MODEL}:predict HTTP/1.1\r\nHost: x\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        sock.sendall(head.encode() + (payload if send_all else payload[:10]))
    # closed mid-body, or before the answer was read


@pytest.mark.slow
def test_client_errors_and_disconnects_leave_no_traceback(run, rows):
    command = [sys.executable, "-m", "mtrec.cli", "serve", str(run.export_path.parent)]
    command += ["--name", MODEL, "--rest-port", "0", "--grpc-port", "0"]
    process, rest, target = _start(command)
    try:
        good = json_rows({k: v[:1] for k, v in rows.items()})
        big = json.dumps({"instances": good * 50}).encode()
        bodies = [
            b"{",
            b'{"instances": ' + b"[" * 5000 + b"]" * 5000 + b"}",
            b'{"instances": ['
            + json.dumps({**good[0], "device": "\ud800"}).encode()
            + b"]}",
            json.dumps(
                {"instances": [{**good[0], "item_price": float("nan")}]}
            ).encode(),
            json.dumps({"signature_name": "x", "instances": good}).encode(),
            json.dumps({"instances": [{**good[0], "hour": "x"}]}).encode(),
        ]
        with httpx.Client(base_url=rest, timeout=30) as http:
            for body in bodies:
                response = http.post(f"/v1/models/{MODEL}:predict", content=body)
                assert response.status_code == 400, response.text
            assert http.post(f"/v1/models/{MODEL}:classify", content=b"{}").is_error
            assert http.get("/v1/models/nope").status_code == 404
            assert http.get("/v2").status_code == 404
            _hang_up(rest, big, send_all=False)
            _hang_up(rest, big, send_all=True)
            with grpc.insecure_channel(target) as channel:
                stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
                request = predict_pb2.PredictRequest()
                request.model_spec.name = MODEL
                for name, values in rows.items():
                    request.inputs[name].CopyFrom(
                        tf.make_tensor_proto(np.resize(values, 1000))
                    )
                with pytest.raises(grpc.RpcError):  # cancelled by the client
                    stub.Predict(request, timeout=0.001)
                request.model_spec.signature_name = "x"
                with pytest.raises(grpc.RpcError):
                    stub.Predict(request, timeout=30)
            time.sleep(1)  # let the abandoned requests finish
            assert http.get(f"/v1/models/{MODEL}").status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0
    assert "Traceback" not in stderr, stderr
    assert "ERROR" not in stderr, stderr
