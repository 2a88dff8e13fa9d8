"""The load test against the local server, and the ``mtrec serve`` command."""

import json
import os
import re
import signal
import subprocess
import sys

import pytest
from serving_helpers import MODEL

pytest.importorskip("httpx", reason="needs the serving extra")

from mtrec.cli import main  # noqa: E402
from mtrec.serving import LoadTestConfig  # noqa: E402
from mtrec.serving import run_load_test  # noqa: E402


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_load_test_reports_qps_latency_and_no_errors(server, click_log, protocol):
    port = server.rest_port if protocol == "rest" else server.grpc_port
    report = run_load_test(
        LoadTestConfig(
            protocol=protocol,
            port=port,
            model=MODEL,
            data=click_log,
            clients=2,
            duration_s=1.5,
            warmup_s=0.2,
            batch_size=50,
            num_batches=4,
        )
    )
    assert report["errors"] == 0 and report["error_kinds"] == {}
    assert report["requests"] == report["ok"] > 0
    assert report["qps"] > 0
    assert report["candidates_per_s"] == pytest.approx(report["qps"] * 50, rel=0.01)
    latency = report["latency_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]


def test_load_test_counts_errors_by_kind(server, click_log):
    report = run_load_test(
        LoadTestConfig(
            protocol="rest",
            port=server.rest_port,
            model=MODEL,
            data=click_log,
            clients=1,
            duration_s=0.5,
            warmup_s=0,
            batch_size=65,  # over the test server's limit of 64
            num_batches=1,
        )
    )
    assert report["ok"] == 0
    assert report["errors"] == report["requests"] > 0
    assert report["error_kinds"] == {"HTTP 400": report["errors"]}


def test_load_test_refuses_another_machine_unless_allowed(click_log):
    with pytest.raises(ValueError, match="not a loopback address"):
        LoadTestConfig(
            protocol="rest", port=1, model="m", data=click_log, host="8.8.8.8"
        )
    with pytest.raises(ValueError, match="`protocol` must be one of"):
        LoadTestConfig(protocol="http", port=1, model="m", data=click_log)


def test_loadtest_command_prints_the_report(server, click_log, tmp_path, capsys):
    out = tmp_path / "report.json"
    argv = ["loadtest", "--protocol", "grpc", "--port", str(server.grpc_port)]
    argv += ["--name", MODEL, "--data", str(click_log), "--clients", "1"]
    argv += ["--duration", "0.5", "--warmup", "0", "--batch-size", "20"]
    argv += ["--out", str(out)]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == json.loads(out.read_text())
    assert report["protocol"] == "grpc" and report["errors"] == 0


@pytest.mark.slow
def test_serve_command_serves_until_sigterm(run, tmp_path):
    import httpx

    command = [sys.executable, "-m", "mtrec.cli", "serve", str(run.export_path.parent)]
    command += ["--name", MODEL, "--rest-port", "0", "--grpc-port", "0"]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("gRPC"):
                break
        rest = re.search(r"REST\s+(http://127\.0\.0\.1:\d+)", "".join(lines))
        assert rest, lines
        response = httpx.get(f"{rest.group(1)}/v1/models/{MODEL}", timeout=30)
        assert response.json()["model_version_status"][0]["state"] == "AVAILABLE"
    finally:
        process.send_signal(signal.SIGTERM)
        remaining, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    assert "finishing requests in flight" in remaining
