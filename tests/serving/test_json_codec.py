"""TF Serving's JSON format without a server: decoding, encoding, error messages."""

import base64
import json

import numpy as np
import pytest
import tensorflow as tf

pytest.importorskip("grpc", reason="needs the serving extra")

from mtrec.serving.errors import ServingError  # noqa: E402
from mtrec.serving.json_codec import COLUMNAR  # noqa: E402
from mtrec.serving.json_codec import ROW  # noqa: E402
from mtrec.serving.json_codec import decode_inputs  # noqa: E402
from mtrec.serving.json_codec import encode_outputs  # noqa: E402
from mtrec.serving.json_codec import parse_predict_body  # noqa: E402

SPECS = {
    "user_id": tf.TensorSpec([None], tf.int64),
    "city": tf.TensorSpec([None], tf.string),
    "price": tf.TensorSpec([None], tf.float32),
}


def _decode(body, specs=SPECS):
    return decode_inputs(parse_predict_body(json.dumps(body).encode()), specs)


def test_row_and_columnar_formats_decode_to_the_same_arrays():
    rows = _decode(
        {
            "instances": [
                {"user_id": 1, "city": "rome", "price": 2},
                {"user_id": 2, "city": "oslo", "price": 3.5},
            ]
        }
    )
    columns = _decode(
        {"inputs": {"user_id": [1, 2], "city": ["rome", "oslo"], "price": [2, 3.5]}}
    )
    for arrays in (rows, columns):
        assert arrays["user_id"].dtype == np.int64
        assert arrays["price"].dtype == np.float32
        assert arrays["city"].tolist() == [b"rome", b"oslo"]
        np.testing.assert_array_equal(arrays["price"], [2.0, 3.5])


def test_b64_values_are_decoded_to_bytes():
    raw = b"\x00\xffbinary"
    arrays = _decode(
        {
            "inputs": {
                "user_id": [1],
                "city": [{"b64": base64.b64encode(raw).decode()}],
                "price": [1.0],
            }
        }
    )
    assert arrays["city"].tolist() == [raw]


def test_a_single_input_signature_takes_bare_values():
    specs = {"examples": tf.TensorSpec([None], tf.string)}
    b64 = {"b64": base64.b64encode(b"e1").decode()}
    assert _decode({"instances": [b64, "e2"]}, specs)["examples"].tolist() == [
        b"e1",
        b"e2",
    ]
    assert _decode({"inputs": [b64]}, specs)["examples"].tolist() == [b"e1"]
    assert _decode({"instances": [{"examples": b64}]}, specs)["examples"].tolist() == [
        b"e1"
    ]


def test_nested_lists_keep_their_shape():
    specs = {"x": tf.TensorSpec([None, 2], tf.float32)}
    assert _decode({"instances": [[1, 2], [3, 4], [5, 6]]}, specs)["x"].shape == (3, 2)
    assert _decode({"inputs": {"x": [[1, 2]]}}, specs)["x"].shape == (1, 2)


ONE = {"user_id": [1], "city": ["a"], "price": [1]}
GOOD_ROW = {"user_id": 1, "city": "a", "price": 1}


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"inputs": {**ONE, "user_id": [2**63]}}, "out of range for int64"),
        ({"inputs": {**ONE, "user_id": [True]}}, "Type: Bool is not of expected"),
        ({"inputs": {**ONE, "city": [None]}}, "Type: Null is not of expected"),
        ({"inputs": {**ONE, "city": [{"b64": 5}]}}, "Type: Object is not of"),
        ({"inputs": {**ONE, "user_id": [[1], [2, 3]]}}, "ragged nested list"),
        ({"instances": "rows"}, "to be an list/array"),
        ({"instances": [1, 2]}, "is not an object"),
        ({"instances": [GOOD_ROW, {"user_id": 2}]}, "It has keys ['user_id']"),
        ({"inputs": {}, "instances": []}, "Not allowed to specify both"),
        ({"signature_name": 3, "inputs": {}}, "'signature_name' key must be"),
    ],
)
def test_invalid_values_are_invalid_argument(body, fragment):
    with pytest.raises(ServingError) as info:
        _decode(body)
    assert info.value.http_status == 400
    assert fragment in info.value.message


def test_outputs_encode_as_predictions_or_outputs():
    outputs = {"ctr": np.array([0.5, 0.25], np.float32), "cvr": np.array([1.0, 0.0])}
    assert encode_outputs(outputs, ROW) == {
        "predictions": [{"ctr": 0.5, "cvr": 1.0}, {"ctr": 0.25, "cvr": 0.0}]
    }
    assert encode_outputs(outputs, COLUMNAR) == {
        "outputs": {"ctr": [0.5, 0.25], "cvr": [1.0, 0.0]}
    }
    single = {"ctr": np.array([0.5], np.float32)}
    assert encode_outputs(single, ROW) == {"predictions": [0.5]}
    assert encode_outputs(single, COLUMNAR) == {"outputs": [0.5]}


def test_bytes_outputs_are_text_or_b64_by_alias():
    outputs = {
        "label": np.array([b"yes"], dtype=object),
        "id_bytes": np.array([b"\x01"], dtype=object),
    }
    assert encode_outputs(outputs, COLUMNAR) == {
        "outputs": {"label": ["yes"], "id_bytes": [{"b64": "AQ=="}]}
    }
