"""The top-level serving/ folder: configs parse, examples run against the server."""

import importlib.util
import json
import pathlib
import re
import shutil
import subprocess

import pytest
import tensorflow as tf
import yaml
from serving_helpers import FEATURES_FILE
from serving_helpers import MODEL

from mtrec.features import FeatureSet

httpx = pytest.importorskip("httpx", reason="needs the serving extra")

from google.protobuf import text_format  # noqa: E402
from tensorflow_serving.config import model_server_config_pb2  # noqa: E402

from mtrec.serving.batching_parameters import read_batching_parameters  # noqa: E402
from mtrec.serving.server import DEFAULT_MAX_BATCH_SIZE  # noqa: E402

SERVING = pathlib.Path(__file__).resolve().parents[2] / "serving"
EXAMPLES = SERVING / "examples"


def test_models_config_is_a_model_server_config_for_the_export_base():
    config = text_format.Parse(
        (SERVING / "models.config").read_text(),
        model_server_config_pb2.ModelServerConfig(),
    )
    (model,) = config.model_config_list.config
    assert model.name == "esmm"
    assert model.base_path == "/models/esmm"
    assert model.model_platform == "tensorflow"
    assert model.model_version_policy.latest.num_versions == 1


@pytest.mark.parametrize(
    "name", ["batching_parameters.txt", "batching_parameters_gpu.txt"]
)
def test_batching_parameters_are_valid(name):
    """Both files parse with mtrec serve's reader (the one --enable_batching
    uses), which checks TF Serving's field names, forms and rules."""
    parameters = read_batching_parameters(SERVING / name)
    assert parameters.batch_timeout_micros >= 0
    if parameters.allowed_batch_sizes:
        assert parameters.allowed_batch_sizes[-1] == parameters.max_batch_size
    if name == "batching_parameters.txt":
        # local and production agree
        assert parameters.max_batch_size == DEFAULT_MAX_BATCH_SIZE
        assert parameters.batch_timeout_micros == 0
        assert parameters.max_enqueued_batches == 8


def test_compose_runs_cpu_and_gpu_images_on_the_mounted_export():
    compose = yaml.safe_load((SERVING / "docker-compose.yml").read_text())
    services = compose["services"]
    # Pinned to the TF Serving release of the TensorFlow mtrec exports with.
    release = ".".join(tf.__version__.split(".")[:2])
    assert re.fullmatch(
        rf"tensorflow/serving:{re.escape(release)}\.\d+",
        services["serving-cpu"]["image"],
    )
    assert services["serving-gpu"]["image"] == services["serving-cpu"]["image"] + "-gpu"
    gpu = services["serving-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert gpu[0]["capabilities"] == ["gpu"]
    for service in services.values():
        mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in service["volumes"])
        assert mounts["../exports/esmm"] == "/models/esmm"
        for host in mounts:
            if not host.startswith("../exports"):
                assert (SERVING / host).is_file(), host
        for flag in service["command"]:
            if flag.endswith((".config", ".txt")):
                assert flag.split("=", 1)[1] in mounts.values(), flag
        # models.config names the path the compose file mounts it at.
        config_flag = next(f for f in service["command"] if "model_config_file=" in f)
        assert config_flag in (SERVING / "models.config").read_text()
        assert all(p.startswith("127.0.0.1:") for p in service["ports"])


def test_example_request_sends_every_feature_of_the_shipped_config():
    body = json.loads((EXAMPLES / "predict_request.json").read_text())
    names = FeatureSet.from_yaml(FEATURES_FILE).names
    assert all(sorted(row) == sorted(names) for row in body["instances"])


def test_example_request_is_served(server):
    response = httpx.post(
        f"{server.rest_url}/v1/models/{MODEL}:predict",
        content=(EXAMPLES / "predict_request.json").read_bytes(),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == 3
    assert all(0 < p["ctcvr"] <= p["ctr"] < 1 for p in predictions)


def test_grpc_example_client_runs_against_the_server(server, capsys):
    spec = importlib.util.spec_from_file_location(
        "grpc_predict", EXAMPLES / "grpc_predict.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--target", server.grpc_target, "--model", MODEL]) == 0
    lines = capsys.readouterr().out.splitlines()
    scores = [line.split(": ", 1)[1] for line in lines if line.startswith("candidate")]
    assert len(scores) == 6
    assert scores[:3] == scores[3:]  # serving_default == predict_examples
    assert lines[0] == f"model {MODEL} version 1, signature serving_default"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_examples_run_against_the_server(server):
    target = server.rest_url.removeprefix("http://")
    result = subprocess.run(
        ["bash", str(EXAMPLES / "rest_requests.sh"), target, MODEL],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert '"predictions":[{' in result.stdout
    assert '"outputs":{' in result.stdout
    assert '{"error":' in result.stdout and "(HTTP 400)" in result.stdout
