"""The REST API through a real HTTP client: predictions, status, metadata, errors."""

import base64
import json
import socket
import urllib.parse

import numpy as np
import pytest
import tensorflow as tf
from serving_helpers import MAX_BATCH_SIZE
from serving_helpers import MAX_REQUEST_BYTES
from serving_helpers import MODEL
from serving_helpers import json_columns
from serving_helpers import json_rows

from mtrec.export import to_examples

httpx = pytest.importorskip("httpx", reason="needs the serving extra")

from mtrec.serving import ModelManager  # noqa: E402
from mtrec.serving import ModelServer  # noqa: E402
from mtrec.serving import ServerOptions  # noqa: E402

OUTPUTS = ("ctcvr", "ctr", "cvr")


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.rest_url, timeout=30) as http:
        yield http


def _predict(client, body, path=f"/v1/models/{MODEL}:predict"):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(path, content=content)


def _assert_close(predictions, expected):
    for name in OUTPUTS:
        np.testing.assert_allclose(predictions[name], expected[name], atol=1e-5)


def test_status_reports_the_available_version(client):
    response = client.get(f"/v1/models/{MODEL}")
    assert response.status_code == 200
    assert response.json() == {
        "model_version_status": [
            {
                "version": "1",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    assert client.get(f"/v1/models/{MODEL}/versions/1").json() == response.json()


def test_metadata_lists_both_signatures_keyed_by_feature(client, run):
    response = client.get(f"/v1/models/{MODEL}/metadata")
    assert response.status_code == 200
    body = response.json()
    assert body["model_spec"] == {"name": MODEL, "version": "1", "signature_name": ""}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    serving = signatures["serving_default"]
    assert serving["method_name"] == "tensorflow/serving/predict"
    assert sorted(serving["inputs"]) == sorted(run.feature_set.names)
    assert serving["inputs"]["user_id"]["dtype"] == "DT_INT64"
    assert serving["inputs"]["device"]["dtype"] == "DT_STRING"
    assert serving["inputs"]["item_price"]["dtype"] == "DT_FLOAT"
    assert sorted(serving["outputs"]) == list(OUTPUTS)
    examples = signatures["predict_examples"]
    assert list(examples["inputs"]) == ["examples"]
    assert examples["method_name"] == "tensorflow/serving/predict"
    assert client.get(f"/v1/models/{MODEL}/versions/1/metadata").json() == body


def test_row_format_returns_the_in_process_predictions(client, rows, expected):
    response = _predict(client, {"instances": json_rows(rows)})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == 40 and sorted(predictions[0]) == list(OUTPUTS)
    _assert_close({k: [p[k] for p in predictions] for k in OUTPUTS}, expected)


def test_columnar_format_returns_the_in_process_predictions(client, rows, expected):
    response = _predict(
        client,
        {"signature_name": "serving_default", "inputs": json_columns(rows)},
        path=f"/v1/models/{MODEL}/versions/1:predict",
    )
    assert response.status_code == 200, response.text
    outputs = response.json()["outputs"]
    assert sorted(outputs) == list(OUTPUTS)
    _assert_close(outputs, expected)


def test_b64_values_feed_string_inputs(client, rows, expected):
    instances = json_rows(rows)
    for instance in instances:
        instance["device"] = {
            "b64": base64.b64encode(instance["device"].encode()).decode()
        }
    response = _predict(client, {"instances": instances})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    _assert_close({k: [p[k] for p in predictions] for k in OUTPUTS}, expected)


@pytest.mark.parametrize("fmt", ["row", "columnar"])
def test_serialized_examples_as_b64_through_predict_examples(
    client, run, rows, expected, fmt
):
    encoded = [
        {"b64": base64.b64encode(e).decode()}
        for e in to_examples(rows, run.feature_set)
    ]
    if fmt == "row":
        body = {"signature_name": "predict_examples", "instances": encoded}
    else:
        body = {"signature_name": "predict_examples", "inputs": {"examples": encoded}}
    response = _predict(client, body)
    assert response.status_code == 200, response.text
    result = response.json()
    if fmt == "row":
        result = {k: [p[k] for p in result["predictions"]] for k in OUTPUTS}
    else:
        result = result["outputs"]
    _assert_close(result, expected)


def _one_row(rows):
    return json_rows({k: v[:1] for k, v in rows.items()})[0]


def _bad_requests(rows, feature_set):
    """(case, path or None, body, expected status, expected error fragment)."""
    good = _one_row(rows)
    columns = json_columns({k: v[:3] for k, v in rows.items()})
    too_many = json_rows({k: np.resize(v, MAX_BATCH_SIZE + 1) for k, v in rows.items()})
    example = tf.train.Example.FromString(to_examples(rows, feature_set)[0])
    example.features.feature["user_id"].Clear()
    example.features.feature["user_id"].bytes_list.value.append(b"7")
    wrong_example = {"b64": base64.b64encode(example.SerializeToString()).decode()}
    deep = 1
    for _ in range(200):
        deep = [deep]
    return [
        ("malformed_json", None, b'{"instances": [', 400, "JSON Parse error"),
        ("not_an_object", None, b"[1, 2]", 400, "must be a JSON object"),
        ("no_instances_or_inputs", None, {"rows": [good]}, 400, "Missing 'inputs'"),
        (
            "missing_feature",
            None,
            {"instances": [{k: v for k, v in good.items() if k != "device"}]},
            400,
            "Missing but required: {device}",
        ),
        (
            "unknown_feature",
            None,
            {"instances": [{**good, "colour": "red"}]},
            400,
            "Sent extra: {colour}",
        ),
        (
            "string_for_int64",
            None,
            {"instances": [{**good, "user_id": "abc"}]},
            400,
            "is not of expected type: int64",
        ),
        (
            "float_for_int64",
            None,
            {"instances": [{**good, "position": 1.5}]},
            400,
            "is not of expected type: int64",
        ),
        (
            "number_for_string",
            None,
            {"instances": [{**good, "device": 3}]},
            400,
            "is not of expected type: string",
        ),
        (
            "bool_for_float",
            None,
            {"instances": [{**good, "item_price": True}]},
            400,
            "is not of expected type: float",
        ),
        (
            "columns_of_different_lengths",
            None,
            {"inputs": {**columns, "user_id": columns["user_id"][:2]}},
            400,
            "different batch sizes",
        ),
        (
            "ragged_nested_list",
            None,
            {"inputs": {**columns, "user_id": [[1, 2], [3], [4, 5]]}},
            400,
            "ragged",
        ),
        (
            "mis_shaped_column",
            None,
            {"inputs": {**columns, "user_id": [[1], [2], [3]]}},
            400,
            "has shape [3, 1]",
        ),
        (
            "scalar_instead_of_column",
            None,
            {"inputs": {**columns, "user_id": 7}},
            400,
            "has shape []",
        ),
        (
            "mis_shaped_instance",
            None,
            {"instances": [good, {**good, "user_id": [1, 2]}]},
            400,
            "instance 1 has shape [2]",
        ),
        (
            "invalid_b64",
            None,
            {"instances": [{**good, "device": {"b64": "***"}}]},
            400,
            "base64",
        ),
        (
            "unknown_model",
            "/v1/models/nope:predict",
            {"instances": [good]},
            404,
            "Servable not found for request: Latest(nope)",
        ),
        (
            "unknown_version",
            f"/v1/models/{MODEL}/versions/7:predict",
            {"instances": [good]},
            404,
            f"Servable not found for request: Specific({MODEL}, 7)",
        ),
        (
            "unknown_signature",
            None,
            {"signature_name": "rank", "instances": [good]},
            400,
            'Serving signature name: "rank" not found in signature def',
        ),
        (
            "unknown_version_label",
            f"/v1/models/{MODEL}/labels/stable:predict",
            {"instances": [good]},
            400,
            "Unrecognized servable version label: stable",
        ),
        (
            "version_not_a_number",
            f"/v1/models/{MODEL}/versions/one:predict",
            {"instances": [good]},
            400,
            f"Malformed request: POST /v1/models/{MODEL}/versions/one:predict",
        ),
        (
            "version_over_int64",
            f"/v1/models/{MODEL}/versions/99999999999999999999:predict",
            {"instances": [good]},
            400,
            "Failed to convert version: 99999999999999999999 to numeric.",
        ),
        (
            "unknown_method",
            f"/v1/models/{MODEL}:score",
            {"instances": [good]},
            400,
            f"Malformed request: POST /v1/models/{MODEL}:score",
        ),
        (
            "corrupt_example",
            None,
            {
                "signature_name": "predict_examples",
                "instances": [{"b64": base64.b64encode(b"garbage\x01\x02").decode()}],
            },
            400,
            "Could not parse example input",
        ),
        (
            "example_of_wrong_kind",
            None,
            {"signature_name": "predict_examples", "instances": [wrong_example]},
            400,
            "Key: user_id, Index: 0.  Data types don't match. Data type: string "
            "but expected type: int64",
        ),
        (
            "deeply_nested_body",
            None,
            b'{"instances": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",
            400,
            "JSON Parse error",
        ),
        (
            "deeply_nested_value",
            None,
            {"instances": [{**good, "user_id": deep}]},
            400,
            "nested deeper than 32 levels",
        ),
        (
            "escaped_lone_surrogate",
            None,
            b'{"instances": ['
            + json.dumps({**good, "device": "\ud800"}).encode()
            + b"]}",
            400,
            "The surrogate pair in string is invalid",
        ),
        (
            "utf16_body",
            None,
            json.dumps({"instances": [good]}).encode("utf-16"),
            400,
            "JSON Parse error",
        ),
        ("empty_body", None, b"", 400, "JSON Parse error: The document is empty"),
        (
            "key_twice_in_an_instance",
            None,
            b'{"instances": [' + json.dumps(good).encode()[:-1] + b', "hour": 3}]}',
            400,
            "Key(s) 'hour' given more than once in one instance",
        ),
        ("empty_batch_rows", None, {"instances": []}, 400, "the batch is empty"),
        (
            "empty_batch_columns",
            None,
            {"inputs": {k: [] for k in columns}},
            400,
            "the batch is empty",
        ),
        (
            "batch_over_the_limit",
            None,
            {"instances": too_many},
            400,
            f"larger than maximum input batch size {MAX_BATCH_SIZE}",
        ),
        (
            "infinite_dense_value",
            None,
            {"instances": [good, {**good, "item_price": float("inf")}]},
            400,
            "Input `item_price` is NaN or infinite at row 1 of the batch",
        ),
        (
            "oversized_body",
            None,
            b'{"instances": [' + b" " * MAX_REQUEST_BYTES + b"]}",
            413,
            f"larger than the limit of {MAX_REQUEST_BYTES} bytes",
        ),
        (
            "classify_method",
            f"/v1/models/{MODEL}:classify",
            {"examples": [good]},
            400,
            "Expected one input Tensor.",
        ),
        (
            "regress_method",
            f"/v1/models/{MODEL}:regress",
            {"signature_name": "predict_examples", "examples": [good]},
            400,
            "Expected one output Tensor.",
        ),
        (
            "classify_unknown_signature",
            f"/v1/models/{MODEL}/versions/1:CLASSIFY",
            {"signature_name": "rank", "examples": [good]},
            400,
            "No signature was found with the name: rank",
        ),
        ("unknown_path", "/v2/models/x:predict", {}, 404, "Not found"),
    ]


BAD_CASES = (
    "malformed_json",
    "not_an_object",
    "no_instances_or_inputs",
    "missing_feature",
    "unknown_feature",
    "string_for_int64",
    "float_for_int64",
    "number_for_string",
    "bool_for_float",
    "columns_of_different_lengths",
    "ragged_nested_list",
    "mis_shaped_column",
    "scalar_instead_of_column",
    "mis_shaped_instance",
    "invalid_b64",
    "unknown_model",
    "unknown_version",
    "unknown_signature",
    "unknown_version_label",
    "version_not_a_number",
    "version_over_int64",
    "unknown_method",
    "corrupt_example",
    "example_of_wrong_kind",
    "deeply_nested_body",
    "deeply_nested_value",
    "escaped_lone_surrogate",
    "utf16_body",
    "empty_body",
    "key_twice_in_an_instance",
    "empty_batch_rows",
    "empty_batch_columns",
    "batch_over_the_limit",
    "infinite_dense_value",
    "oversized_body",
    "classify_method",
    "regress_method",
    "classify_unknown_signature",
    "unknown_path",
)


@pytest.fixture(scope="module")
def bad_requests(rows, run):
    cases = {case[0]: case[1:] for case in _bad_requests(rows, run.feature_set)}
    assert tuple(cases) == BAD_CASES
    return cases


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_request_gets_a_tf_serving_error_and_the_server_keeps_serving(
    client, rows, expected, bad_requests, case
):
    path, body, status, fragment = bad_requests[case]
    response = _predict(client, body, path=path or f"/v1/models/{MODEL}:predict")
    assert response.status_code == status, response.text
    payload = response.json()
    assert list(payload) == ["error"]
    assert fragment in payload["error"]
    # the next good request is served
    good = _predict(client, {"instances": [_one_row(rows)]})
    assert good.status_code == 200, good.text
    np.testing.assert_allclose(
        good.json()["predictions"][0]["ctr"], expected["ctr"][0], atol=1e-5
    )


def test_batch_at_the_limit_is_served(client, rows):
    batch = json_rows({k: np.resize(v, MAX_BATCH_SIZE) for k, v in rows.items()})
    response = _predict(client, {"instances": batch})
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == MAX_BATCH_SIZE


def test_unknown_model_status_is_not_found(client):
    response = client.get("/v1/models/nope")
    assert response.status_code == 404
    assert "nope" in response.json()["error"]
    response = client.get(f"/v1/models/{MODEL}/versions/9/metadata")
    assert response.status_code == 404
    assert response.json() == {
        "error": f"Servable not found for request: Specific({MODEL}, 9)"
    }


def _read_reply(sock: socket.socket) -> str:
    """One HTTP response (headers and a Content-Length body), however it is
    split into segments."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            break
        body += chunk
    return (head + b"\r\n\r\n" + body).decode()


def test_a_body_that_never_completes_gets_408_and_the_server_keeps_serving(run):
    manager = ModelManager(MODEL, run.export_path.parent, poll_seconds=0)
    options = ServerOptions(rest_port=0, grpc_port=None, body_timeout_seconds=0.5)
    with ModelServer(manager, options) as server:
        url = urllib.parse.urlsplit(server.rest_url)
        with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
            sock.sendall(
                f"POST /v1/models/{MODEL}:predict HTTP/1.1\r\nHost: x\r\n"
                "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                '{"instances": '.encode()
            )  # 14 of the 100 bytes, then nothing
            reply = _read_reply(sock)
        assert reply.startswith("HTTP/1.1 408"), reply
        assert "was not received within 0.5 s" in reply
        with httpx.Client(base_url=server.rest_url, timeout=30) as http:
            assert http.get(f"/v1/models/{MODEL}").status_code == 200
    with pytest.raises(ValueError, match="`body_timeout_seconds` must be > 0"):
        ServerOptions(body_timeout_seconds=0)


@pytest.mark.parametrize(
    "method, path, status, fragment",
    [
        ("GET", f"/v1/models/{MODEL}:predict", 400, "Malformed request: GET"),
        ("PUT", f"/v1/models/{MODEL}", 400, "Malformed request: PUT"),
        ("POST", f"/v1/models/{MODEL}", 400, "Malformed request: POST"),
        ("GET", f"/v1/models/{MODEL}/", 400, "Malformed request: GET"),
        ("GET", "/v1/models", 400, "Missing model name in request."),
        ("GET", f"/v1/models/{MODEL}/labels/x/metadata", 400, "version label: x"),
        ("OPTIONS", f"/v1/models/{MODEL}", 400, "Origin header is missing"),
        ("GET", "/metrics", 404, "Not found"),
    ],
)
def test_malformed_urls_are_400_under_v1_and_404_elsewhere(
    client, method, path, status, fragment
):
    response = client.request(method, path)
    assert response.status_code == status, response.text
    assert fragment in response.json()["error"]


def test_status_ignores_a_version_label_as_tf_serving_does(client):
    labelled = client.get(f"/v1/models/{MODEL}/labels/stable")
    assert labelled.status_code == 200, labelled.text
    assert labelled.json() == client.get(f"/v1/models/{MODEL}").json()


def test_a_key_given_twice_counts_once_first_value_as_tf_serving(client, rows):
    good, other = json_rows({k: v[:2] for k, v in rows.items()})
    one = _predict(client, {"instances": [good]}).json()
    body = (
        b'{"instances": ['
        + json.dumps(good).encode()
        + b'], "instances": ['
        + json.dumps(other).encode()
        + b"]}"
    )
    response = _predict(client, body)
    assert response.status_code == 200, response.text
    assert response.json() == one


def test_text_after_the_json_value_is_ignored_as_tf_serving(client, rows):
    body = json.dumps({"instances": [_one_row(rows)]}).encode()
    plain = _predict(client, body)
    response = _predict(client, b"\xef\xbb\xbf \n" + body + b" trailing \xff")
    assert response.status_code == 200, response.text
    assert response.json() == plain.json()


def test_bytes_that_are_not_utf8_in_a_string_reach_the_model_unchanged(
    client, server, rows
):
    """TF Serving parses without UTF-8 validation, so ``\\xff`` is a byte of the
    string input; the same bytes over gRPC give the same scores."""
    grpc = pytest.importorskip("grpc", reason="needs the serving extra")
    from tensorflow_serving.apis import predict_pb2
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    one = {k: v[:1] for k, v in rows.items()}
    body = json.dumps({"instances": json_rows(one)}).encode()
    device = json.dumps(str(one["device"][0])).encode()
    body = body.replace(device, b'"\xff\xfe"')
    response = _predict(client, body)
    assert response.status_code == 200, response.text
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    for name, values in {**one, "device": np.array([b"\xff\xfe"], object)}.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(values))
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        reply = stub.Predict(request, timeout=30)
    assert response.json()["predictions"][0]["ctr"] == pytest.approx(
        float(tf.make_ndarray(reply.outputs["ctr"])[0]), abs=1e-6
    )
