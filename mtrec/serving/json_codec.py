"""TF Serving's JSON predict format: requests to numpy inputs, outputs to JSON.

Request (https://www.tensorflow.org/tfx/serving/api_rest)::

    {"signature_name": "serving_default",          # optional
     "instances": [{"user_id": 7, "city": "rome"}, ...]}   # row format
    {"inputs": {"user_id": [7, ...], "city": ["rome", ...]}}  # columnar format

A signature with a single input also accepts bare values (``"instances":
[v1, v2]``, ``"inputs": [v1, v2]``). A string value may be given as
``{"b64": "<base64>"}`` (binary data, e.g. serialized ``tf.Example`` protos).

Response: ``{"predictions": [...]}`` for the row format, one entry per
instance (an object of outputs, or a bare value for a single output), and
``{"outputs": {...}}`` for the columnar format (a bare value for a single
output). String outputs whose alias ends in ``_bytes`` are base64-encoded.
"""

import base64
import binascii
import json
from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from mtrec.serving.errors import ServingError
from mtrec.serving.servable import check_input_names

ROW = "row"
COLUMNAR = "columnar"

_JSON_TYPE = {
    bool: "Bool",
    int: "Number",
    float: "Number",
    str: "String",
    list: "Array",
    dict: "Object",
    type(None): "Null",
}


#: Deepest nesting of lists accepted in one input value (TensorFlow tensors
#: have at most 254 dimensions; recommender inputs have one or two).
MAX_VALUE_DEPTH = 32


class _JsonObject(dict):
    """A JSON object that had a key more than once (the first value kept)."""

    duplicates: tuple[str, ...] = ()


def _json_object(pairs: list[tuple[str, object]]) -> dict:
    result = dict(pairs)
    if len(result) == len(pairs):
        return result
    first = _JsonObject()
    duplicates = []
    for key, value in pairs:
        if key in first:
            duplicates.append(key)
        else:
            first[key] = value
    first.duplicates = tuple(dict.fromkeys(duplicates))
    return first


_DECODER = json.JSONDecoder(object_pairs_hook=_json_object)


class PredictRequest:
    """A parsed JSON predict request: signature name, format and raw values."""

    def __init__(self, signature_name: str, fmt: str, payload):
        self.signature_name = signature_name
        self.format = fmt
        self.payload = payload


def parse_json_object(body: bytes) -> dict:
    """Parses a request body as TF Serving's rapidjson reader does.

    TF Serving (``ParseJson`` in tensorflow_serving/util/json_tensor.cc)
    parses with ``kParseIterativeFlag | kParseNanAndInfFlag |
    kParseStopWhenDoneFlag`` and without ``kParseValidateEncodingFlag``, and
    reads members with ``FindMember``. So, here too: the body is UTF-8 (a
    UTF-8 BOM is skipped; UTF-16/32 bodies are parse errors); bytes that are
    not UTF-8 inside a string reach string inputs unchanged, elsewhere they
    are parse errors; text after the first JSON value is ignored; ``NaN`` and
    ``Infinity`` are numbers; of a key given twice in one object the first
    value counts. Nesting too deep for Python's parser (about 1000 levels) is
    a 400 as well, where rapidjson's iterative parser would go on.

    Raises:
      ServingError: INVALID_ARGUMENT (``JSON Parse error: ...``) for a body
        that is not a JSON object.
    """
    text = body.decode("utf-8", "surrogateescape").removeprefix("\ufeff")
    start = len(text) - len(text.lstrip(" \t\n\r"))
    if start == len(text):
        raise ServingError.invalid("JSON Parse error: The document is empty")
    try:
        request, _ = _DECODER.raw_decode(text, start)
    except ValueError as err:
        raise ServingError.invalid(f"JSON Parse error: {err}") from err
    except RecursionError:
        raise ServingError.invalid(
            "JSON Parse error: arrays or objects nested too deeply"
        ) from None
    if not isinstance(request, dict):
        raise ServingError.invalid(
            f"JSON Parse error: the request must be a JSON object, got "
            f"{_json_type(request)}"
        )
    return request


def signature_name_of(request: dict) -> str:
    """The request's ``signature_name`` (``""`` when absent).

    Raises:
      ServingError: INVALID_ARGUMENT when it is not a string.
    """
    signature_name = request.get("signature_name", "")
    if not isinstance(signature_name, str):
        raise ServingError.invalid(
            "'signature_name' key must be a string value. Received: "
            f"{_clip(signature_name)}"
        )
    return signature_name


def predict_request(request: dict) -> PredictRequest:
    """The predict request in a parsed body: its format and raw values.

    Raises:
      ServingError: INVALID_ARGUMENT for both or neither of ``instances`` and
        ``inputs``, or ``instances`` that is not a list.
    """
    signature_name = signature_name_of(request)
    has_instances, has_inputs = "instances" in request, "inputs" in request
    if has_instances == has_inputs:
        raise ServingError.invalid(
            "Missing 'inputs' or 'instances' key"
            if not has_instances
            else "Not allowed to specify both 'instances' and 'inputs' in a request"
        )
    if has_instances:
        instances = request["instances"]
        if not isinstance(instances, list):
            raise ServingError.invalid(
                "Expecting 'instances' to be an list/array, got "
                f"{_json_type(instances)}"
            )
        return PredictRequest(signature_name, ROW, instances)
    return PredictRequest(signature_name, COLUMNAR, request["inputs"])


def parse_predict_body(body: bytes) -> PredictRequest:
    """Parses the JSON body; the values are decoded later, per signature.

    Raises:
      ServingError: INVALID_ARGUMENT for malformed JSON or a malformed request.
    """
    return predict_request(parse_json_object(body))


def decode_inputs(
    request: PredictRequest, input_specs: Mapping[str, tf.TensorSpec]
) -> dict[str, np.ndarray]:
    """The request's values as numpy arrays of the signature's dtypes.

    Raises:
      ServingError: INVALID_ARGUMENT for missing or unknown inputs, values of
        the wrong JSON type, invalid base64, or ragged nested lists.
    """
    if request.format == ROW:
        return _decode_rows(request.payload, input_specs)
    return _decode_columns(request.payload, input_specs)


def encode_outputs(outputs: Mapping[str, np.ndarray], fmt: str) -> dict:
    """``{"predictions": ...}`` (row format) or ``{"outputs": ...}`` (columnar)."""
    values = {name: _to_json_values(name, array) for name, array in outputs.items()}
    if fmt == COLUMNAR:
        if len(values) == 1:
            return {"outputs": next(iter(values.values()))}
        return {"outputs": values}
    sizes = {
        name: len(v) if isinstance(v, list) else None for name, v in values.items()
    }
    if None in sizes.values() or len(set(sizes.values())) > 1:
        raise ServingError.invalid(
            "Tensor name: outputs must have the same size in the first dimension "
            f"to be returned in the row format; got {sizes}. Use the columnar "
            "('inputs') format."
        )
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    names = list(values)
    return {"predictions": [dict(zip(names, row)) for row in zip(*values.values())]}


def _decode_rows(instances: list, specs: Mapping[str, tf.TensorSpec]) -> dict:
    if not instances:
        raise ServingError.invalid(
            "the batch is empty: 'instances' must hold at least one instance"
        )
    single = next(iter(specs)) if len(specs) == 1 else None
    if single is not None and not _is_named_instance(instances[0], single):
        columns = {single: list(instances)}
    else:
        columns = _named_instance_columns(instances, specs)
    return {
        name: _instances_array(name, values, specs[name].dtype)
        for name, values in columns.items()
    }


def _named_instance_columns(
    instances: list, specs: Mapping[str, tf.TensorSpec]
) -> dict[str, list]:
    """``{input: [value per instance]}`` of instances that are objects with one
    key per input, all with the keys of element 0."""
    columns = {}
    for i, instance in enumerate(instances):
        if not isinstance(instance, dict) or _is_b64(instance):
            raise ServingError.invalid(
                f"Failed to process element: {i} of 'instances' list. JSON "
                f"Value: {_clip(instance)} is not an object with one key per "
                f"input of the signature {sorted(specs)}"
            )
        if isinstance(instance, _JsonObject):
            # TF Serving appends both values to the tensor and fails the
            # request ("tensor parsing error: <name>").
            raise ServingError.invalid(
                f"Failed to process element: {i} of 'instances' list. Key(s) "
                f"{', '.join(map(repr, instance.duplicates))} given more than "
                "once in one instance"
            )
        if i == 0:
            check_input_names(instance, specs)
            columns = {name: [] for name in instance}
        elif instance.keys() != columns.keys():
            raise ServingError.invalid(
                f"Failed to process element: {i} of 'instances' list. It has "
                f"keys {sorted(instance)} but element 0 has {sorted(columns)}"
            )
        for name, value in instance.items():
            columns[name].append(value)
    return columns


def _instances_array(name: str, values: list, dtype: tf.DType) -> np.ndarray:
    """One input's values, one per instance, stacked into one array; every
    instance's value must have the same shape."""
    if not any(isinstance(v, list) for v in values):  # one scalar per instance
        return _to_array(values, dtype, f"input '{name}'")
    rows = [_to_array(v, dtype, f"input '{name}'") for v in values]
    shapes = {row.shape for row in rows}
    if len(shapes) > 1:
        first = rows[0].shape
        bad = next(i for i, row in enumerate(rows) if row.shape != first)
        raise ServingError.invalid(
            f"input '{name}': instance {bad} has shape {list(rows[bad].shape)} "
            f"but instance 0 has shape {list(first)}; all instances must have "
            "the same shape"
        )
    return np.stack(rows) if rows[0].ndim else np.array(rows, rows[0].dtype)


def _decode_columns(inputs, specs: Mapping[str, tf.TensorSpec]) -> dict:
    if isinstance(inputs, dict) and not _is_b64(inputs):
        named = inputs
    elif len(specs) == 1:
        named = {next(iter(specs)): inputs}
    else:
        raise ServingError.invalid(
            "'inputs' must be an object with one key per input of the signature "
            f"{sorted(specs)}; got {_json_type(inputs)}"
        )
    check_input_names(named, specs)
    return {
        name: _to_array(value, specs[name].dtype, f"input '{name}'")
        for name, value in named.items()
    }


def _is_named_instance(instance, input_name: str) -> bool:
    return (
        isinstance(instance, dict) and not _is_b64(instance) and input_name in instance
    )


def _is_b64(value) -> bool:
    return (
        isinstance(value, dict)
        and len(value) == 1
        and "b64" in value
        and not isinstance(value, _JsonObject)  # {"b64": .., "b64": ..}
    )


def _to_array(value, dtype: tf.DType, where: str) -> np.ndarray:
    """A JSON value (scalar or rectangular nested lists) as a numpy array."""
    if isinstance(value, list) and value and not isinstance(value[0], list | dict):
        flat = _flat_scalars(value, dtype)
        if flat is not None:
            return flat
    shape = _shape(value, where)
    leaves = []
    _collect(value, leaves)
    converted = [_scalar(v, dtype, where) for v in leaves]
    numpy_dtype = object if dtype == tf.string else dtype.as_numpy_dtype
    array = np.empty(len(converted), dtype=numpy_dtype)
    array[:] = converted
    return array.reshape(shape)


def _flat_scalars(values: list, dtype: tf.DType) -> np.ndarray | None:
    """Fast path for a flat list of plain scalars; None to take the slow path."""
    types = set(map(type, values))
    if dtype == tf.string:
        if types == {str}:
            try:
                return np.array([_utf8(v) for v in values], dtype=object)
            except UnicodeEncodeError:
                return None  # the slow path names the value
        return None
    if dtype.is_integer:
        if types == {int}:
            try:
                return np.array(values, dtype=dtype.as_numpy_dtype)
            except OverflowError:
                return None
        return None
    if dtype.is_floating and types <= {int, float}:
        return np.array(values, dtype=dtype.as_numpy_dtype)
    if dtype == tf.bool and types == {bool}:
        return np.array(values, dtype=bool)
    return None


def _shape(value, where: str, depth: int = 0) -> tuple[int, ...]:
    if not isinstance(value, list):
        return ()
    if depth == MAX_VALUE_DEPTH:
        raise ServingError.invalid(
            f"{where}: lists nested deeper than {MAX_VALUE_DEPTH} levels"
        )
    if not value:
        return (0,)
    shapes = [_shape(v, where, depth + 1) for v in value]
    if any(s != shapes[0] for s in shapes):
        raise ServingError.invalid(
            f"{where}: ragged nested list {_clip(value)}; every list at one depth "
            "must have the same length (a tensor is rectangular)"
        )
    return (len(value), *shapes[0])


def _collect(value, leaves: list) -> None:
    if isinstance(value, list):
        for v in value:
            _collect(v, leaves)
    else:
        leaves.append(value)


def _scalar(value, dtype: tf.DType, where: str):
    if dtype == tf.string:
        if isinstance(value, str):
            try:
                return _utf8(value)
            except UnicodeEncodeError:
                # rapidjson refuses an escaped lone surrogate ("\\ud800")
                raise ServingError.invalid(
                    f"{where}: JSON Parse error: The surrogate pair in string "
                    f"is invalid: {_clip(value)}"
                ) from None
        if _is_b64(value) and isinstance(value["b64"], str):
            try:
                return base64.b64decode(value["b64"], validate=True)
            except (binascii.Error, ValueError) as err:
                raise ServingError.invalid(
                    f"{where}: Unable to base64 decode {_clip(value['b64'])}: {err}"
                ) from err
    elif dtype.is_integer:
        if isinstance(value, int) and not isinstance(value, bool):
            info = np.iinfo(dtype.as_numpy_dtype)
            if info.min <= value <= info.max:
                return value
            raise ServingError.invalid(
                f"{where}: JSON Value: {value} is out of range for {dtype.name}"
            )
    elif dtype.is_floating:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
    elif dtype == tf.bool and isinstance(value, bool):
        return value
    raise ServingError.invalid(
        f"{where}: JSON Value: {_clip(value)} Type: {_json_type(value)} is not of "
        f"expected type: {dtype.name}"
    )


def _utf8(text: str) -> bytes:
    """The bytes of a parsed JSON string; bytes that were not UTF-8 in the
    body come back unchanged (``surrogateescape``, see ``parse_json_object``)."""
    return text.encode("utf-8", "surrogateescape")


def _to_json_values(name: str, array: np.ndarray):
    if array.dtype == object or array.dtype.kind == "S":
        flat = [_bytes_to_json(name, v) for v in array.reshape(-1)]
        return np.array(flat, dtype=object).reshape(array.shape).tolist()
    return array.tolist()


def _bytes_to_json(name: str, value: bytes):
    if name.endswith("_bytes"):
        return {"b64": base64.b64encode(value).decode()}
    try:
        return value.decode()
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(value).decode()}


def _json_type(value) -> str:
    return _JSON_TYPE.get(type(value), type(value).__name__)


def _clip(value, limit: int = 80) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
