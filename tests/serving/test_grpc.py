"""The gRPC API through TF Serving's own stubs: Predict, metadata, status, errors."""

import numpy as np
import pytest
import tensorflow as tf
from serving_helpers import MAX_BATCH_SIZE
from serving_helpers import MAX_REQUEST_BYTES
from serving_helpers import MODEL

from mtrec.export import to_examples

grpc = pytest.importorskip("grpc", reason="needs the serving extra")
apis = pytest.importorskip("tensorflow_serving.apis", reason="needs the serving extra")

from tensorflow_serving.apis import classification_pb2  # noqa: E402
from tensorflow_serving.apis import get_model_metadata_pb2  # noqa: E402
from tensorflow_serving.apis import get_model_status_pb2  # noqa: E402
from tensorflow_serving.apis import inference_pb2  # noqa: E402
from tensorflow_serving.apis import model_service_pb2_grpc  # noqa: E402
from tensorflow_serving.apis import predict_pb2  # noqa: E402
from tensorflow_serving.apis import prediction_service_pb2_grpc  # noqa: E402
from tensorflow_serving.apis import regression_pb2  # noqa: E402

OUTPUTS = ("ctcvr", "ctr", "cvr")


@pytest.fixture(scope="module")
def channel(server):
    with grpc.insecure_channel(server.grpc_target) as chan:
        yield chan


@pytest.fixture(scope="module")
def stub(channel):
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


def _request(rows, *, name=MODEL, signature="", version=None, dtypes=None):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    for key, values in rows.items():
        dtype = (dtypes or {}).get(key)
        request.inputs[key].CopyFrom(tf.make_tensor_proto(values, dtype=dtype))
    return request


def _outputs(response):
    return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


def test_predict_returns_the_in_process_predictions(stub, rows, expected):
    response = stub.Predict(_request(rows), timeout=30)
    assert response.model_spec.name == MODEL
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"
    outputs = _outputs(response)
    assert sorted(outputs) == list(OUTPUTS)
    for name in OUTPUTS:
        assert outputs[name].shape == (40,)
        np.testing.assert_allclose(outputs[name], expected[name], atol=1e-5)


def test_predict_examples_takes_serialized_examples(stub, run, rows, expected):
    examples = np.array(to_examples(rows, run.feature_set), dtype=object)
    response = stub.Predict(
        _request({"examples": examples}, signature="predict_examples", version=1),
        timeout=30,
    )
    outputs = _outputs(response)
    for name in OUTPUTS:
        np.testing.assert_allclose(outputs[name], expected[name], atol=1e-5)


def test_output_filter_returns_only_the_named_outputs(stub, rows, expected):
    request = _request(rows)
    request.output_filter.append("cvr")
    outputs = _outputs(stub.Predict(request, timeout=30))
    assert list(outputs) == ["cvr"]
    np.testing.assert_allclose(outputs["cvr"], expected["cvr"], atol=1e-5)


def test_metadata_is_the_saved_model_signature_def_map(stub, run):
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = MODEL
    request.metadata_field.append("signature_def")
    response = stub.GetModelMetadata(request, timeout=30)
    assert response.model_spec.version.value == 1
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    serving = signatures.signature_def["serving_default"]
    assert serving.method_name == "tensorflow/serving/predict"
    assert sorted(serving.inputs) == sorted(run.feature_set.names)
    assert serving.inputs["user_id"].dtype == tf.int64.as_datatype_enum
    assert sorted(serving.outputs) == list(OUTPUTS)
    assert list(signatures.signature_def["predict_examples"].inputs) == ["examples"]


def test_model_status_through_the_model_service(channel):
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = MODEL
    (status,) = stub.GetModelStatus(request, timeout=30).model_version_status
    assert status.version == 1
    assert status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert status.status.error_code == 0


def _bad_requests(rows):
    """case -> (request builder, expected code, expected message fragment)."""
    few = {k: v[:3] for k, v in rows.items()}
    without = {k: v for k, v in few.items() if k != "device"}
    big = {k: np.resize(v, MAX_BATCH_SIZE + 1) for k, v in rows.items()}
    huge = {**few, "device": np.array([b"x" * MAX_REQUEST_BYTES] * 3, dtype=object)}
    code = grpc.StatusCode
    return {
        "unknown_model": (
            lambda: _request(few, name="nope"),
            code.NOT_FOUND,
            "Servable not found for request: Latest(nope)",
        ),
        "unknown_version": (
            lambda: _request(few, version=5),
            code.NOT_FOUND,
            f"Specific({MODEL}, 5)",
        ),
        "unknown_signature": (
            lambda: _request(few, signature="rank"),
            code.FAILED_PRECONDITION,
            'Serving signature key "rank" not found.',
        ),
        "unknown_version_label": (
            lambda: _with_label(_request(few), "stable"),
            code.INVALID_ARGUMENT,
            "Unrecognized servable version label: stable",
        ),
        "no_model_name": (
            lambda: _request(few, name=""),
            code.INVALID_ARGUMENT,
            "ModelSpec has no name specified.",
        ),
        "corrupt_example": (
            lambda: _request(
                {"examples": np.array([b"garbage\x01\x02"], dtype=object)},
                signature="predict_examples",
            ),
            code.INVALID_ARGUMENT,
            "Could not parse example input",
        ),
        "missing_input": (
            lambda: _request(without),
            code.INVALID_ARGUMENT,
            "Missing but required: {device}",
        ),
        "unknown_input": (
            lambda: _request({**few, "colour": np.array([b"red"] * 3, dtype=object)}),
            code.INVALID_ARGUMENT,
            "Sent extra: {colour}",
        ),
        "int32_for_int64": (
            lambda: _request(few, dtypes={"user_id": tf.int32}),
            code.INVALID_ARGUMENT,
            "input 'user_id' expects dtype int64 but int32 is provided",
        ),
        "float_for_string": (
            lambda: _request({**few, "device": np.ones(3, np.float32)}),
            code.INVALID_ARGUMENT,
            "expects dtype string but float32 is provided",
        ),
        "mis_shaped": (
            lambda: _request({**few, "user_id": few["user_id"][:, None]}),
            code.INVALID_ARGUMENT,
            "has shape [3, 1]",
        ),
        "different_batch_sizes": (
            lambda: _request({**few, "user_id": few["user_id"][:2]}),
            code.INVALID_ARGUMENT,
            "different batch sizes",
        ),
        "empty_batch": (
            lambda: _request({k: v[:0] for k, v in few.items()}),
            code.INVALID_ARGUMENT,
            "the batch is empty",
        ),
        "batch_over_the_limit": (
            lambda: _request(big),
            code.INVALID_ARGUMENT,
            f"larger than maximum input batch size {MAX_BATCH_SIZE}",
        ),
        "nan_dense_value": (
            lambda: _request(
                {**few, "item_price": np.array([1.0, np.nan, 2.0], np.float32)}
            ),
            code.INVALID_ARGUMENT,
            "Input `item_price` is NaN or infinite at row 1 of the batch",
        ),
        "unknown_output_filter": (
            lambda: _with_filter(_request(few), "score"),
            code.INVALID_ARGUMENT,
            "output tensor alias not found in signature: score",
        ),
        "oversized_message": (
            lambda: _request(huge),
            code.RESOURCE_EXHAUSTED,
            "",
        ),
    }


def _with_label(request, label):
    request.model_spec.version_label = label
    return request


def _with_filter(request, name):
    request.output_filter.append(name)
    return request


BAD_CASES = (
    "unknown_model",
    "unknown_version",
    "unknown_signature",
    "unknown_version_label",
    "no_model_name",
    "corrupt_example",
    "missing_input",
    "unknown_input",
    "int32_for_int64",
    "float_for_string",
    "mis_shaped",
    "different_batch_sizes",
    "empty_batch",
    "batch_over_the_limit",
    "nan_dense_value",
    "unknown_output_filter",
    "oversized_message",
)


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_request_gets_a_status_and_the_server_keeps_serving(
    stub, rows, expected, case
):
    cases = _bad_requests(rows)
    assert tuple(cases) == BAD_CASES
    build, code, fragment = cases[case]
    with pytest.raises(grpc.RpcError) as info:
        stub.Predict(build(), timeout=30)
    assert info.value.code() == code
    assert fragment in info.value.details()
    response = stub.Predict(_request({k: v[:1] for k, v in rows.items()}), timeout=30)
    np.testing.assert_allclose(
        tf.make_ndarray(response.outputs["ctr"]), expected["ctr"][:1], atol=1e-5
    )


@pytest.mark.parametrize(
    "fields, fragment",
    [([], "at least one metadata_field"), (["labels"], "labels is not supported")],
)
def test_bad_metadata_request_is_invalid_argument(stub, fields, fragment):
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = MODEL
    request.metadata_field.extend(fields)
    with pytest.raises(grpc.RpcError) as info:
        stub.GetModelMetadata(request, timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fragment in info.value.details()


def _model_spec(request, name=MODEL, signature=""):
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    return request


@pytest.mark.parametrize(
    "call, signature, code, fragment",
    [
        ("Classify", "", "INVALID_ARGUMENT", "Expected one input Tensor."),
        ("Regress", "predict_examples", "INVALID_ARGUMENT", "Expected one output"),
        ("Classify", "rank", "INVALID_ARGUMENT", "No signature was found"),
        ("MultiInference", "", "INVALID_ARGUMENT", "Expected one input Tensor."),
    ],
)
def test_classify_and_regress_are_refused_as_tf_serving_refuses_them(
    stub, call, signature, code, fragment
):
    """TF Serving answers INVALID_ARGUMENT (400), not UNIMPLEMENTED, for
    Classify / Regress on predict signatures (classifier.cc, regressor.cc)."""
    if call == "Classify":
        request = _model_spec(
            classification_pb2.ClassificationRequest(), signature=signature
        )
    elif call == "Regress":
        request = _model_spec(regression_pb2.RegressionRequest(), signature=signature)
    else:
        request = inference_pb2.MultiInferenceRequest()
        task = request.tasks.add()
        _model_spec(task, signature=signature)
        task.method_name = "tensorflow/serving/classify"
    with pytest.raises(grpc.RpcError) as info:
        getattr(stub, call)(request, timeout=30)
    assert info.value.code() == getattr(grpc.StatusCode, code)
    assert fragment in info.value.details()


def test_model_status_ignores_a_version_label_as_tf_serving_does(channel):
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = MODEL
    plain = stub.GetModelStatus(request, timeout=30)
    request.model_spec.version_label = "stable"
    assert stub.GetModelStatus(request, timeout=30) == plain
