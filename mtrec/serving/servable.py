"""One loaded SavedModel version: its signatures, validation and prediction."""

import dataclasses
import functools
import logging
import os
import pathlib
from collections.abc import Iterable
from collections.abc import Mapping
from typing import TYPE_CHECKING

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow.core.protobuf import saved_model_pb2

from mtrec.serving.errors import ServingError
from mtrec.serving.errors import status_code_from_number

if TYPE_CHECKING:
    from mtrec.serving.batcher import Batcher

logger = logging.getLogger(__name__)

#: TF Serving's default signature key.
DEFAULT_SIGNATURE = "serving_default"
#: The only method name this server (and TF Serving's Predict API) serves.
PREDICT_METHOD_NAME = "tensorflow/serving/predict"
#: Where TF Serving looks for warmup requests inside a version folder.
WARMUP_PATH = pathlib.Path("assets.extra") / "tf_serving_warmup_requests"


@dataclasses.dataclass(frozen=True)
class Signature:
    """A callable signature: its name, input and output specs, the function."""

    name: str
    inputs: dict[str, tf.TensorSpec]
    outputs: dict[str, tf.TensorSpec]
    function: tf.types.experimental.ConcreteFunction


def is_version_dir(path: pathlib.Path) -> bool:
    """An integer-named folder holding a SavedModel (as TF Serving discovers them)."""
    return (
        path.name.isdigit()
        and path.is_dir()
        and (
            (path / "saved_model.pb").is_file()
            or (path / "saved_model.pbtxt").is_file()
        )
    )


def read_meta_graph(path: str | os.PathLike) -> meta_graph_pb2.MetaGraphDef:
    """The ``serve``-tagged MetaGraphDef of a SavedModel folder."""
    proto = saved_model_pb2.SavedModel()
    path = pathlib.Path(path)
    if (path / "saved_model.pb").is_file():
        proto.ParseFromString((path / "saved_model.pb").read_bytes())
    else:
        from google.protobuf import text_format

        text_format.Parse((path / "saved_model.pbtxt").read_text(), proto)
    for meta_graph in proto.meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags:
            return meta_graph
    raise ValueError(f"{path} has no MetaGraphDef tagged 'serve'")


def check_input_names(sent: Iterable[str], expected: Iterable[str]) -> None:
    """Raises INVALID_ARGUMENT, worded as TF Serving, unless the names match."""
    sent, expected = set(sent), set(expected)
    if sent == expected:
        return
    extra = sorted(sent - expected)
    missing = sorted(expected - sent)
    raise ServingError.invalid(
        f"input size does not match signature: {len(sent)}!={len(expected)} "
        f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(expected))}}}). "
        f"Sent extra: {{{','.join(extra)}}}. "
        f"Missing but required: {{{','.join(missing)}}}."
    )


class Servable:
    """A SavedModel version loaded for serving.

    Validates a request as TF Serving does (signature, input names, dtypes,
    shapes) plus what TF Serving leaves to the graph or to its batcher (one
    batch size across inputs, a non-empty batch, a batch-size limit), so a bad
    request is an INVALID_ARGUMENT naming the problem rather than an error deep
    in the graph. Calls are thread-safe.

    Args:
      name: the model name.
      version: the version number.
      path: the version folder.
    """

    def __init__(self, name: str, version: int, path: str | os.PathLike):
        self.name = name
        self.version = int(version)
        self.path = pathlib.Path(path)
        self.meta_graph = read_meta_graph(self.path)
        self._loaded = tf.saved_model.load(str(self.path), tags=["serve"])
        self.signatures: dict[str, Signature] = {}
        for key, function in self._loaded.signatures.items():
            method = self.meta_graph.signature_def[key].method_name
            if method != PREDICT_METHOD_NAME:
                logger.info(
                    "%s v%d: signature %r has method %r; not served by Predict",
                    name,
                    version,
                    key,
                    method,
                )
                continue
            self.signatures[key] = Signature(
                name=key,
                inputs=dict(function.structured_input_signature[1]),
                outputs=dict(function.structured_outputs),
                function=function,
            )

    def signature(self, name: str | None) -> Signature:
        """The signature of that name (``""``/``None``: ``serving_default``)."""
        name = name or DEFAULT_SIGNATURE
        if name not in self.signatures:
            raise ServingError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f'Serving signature key "{name}" not found.',
            )
        return self.signatures[name]

    def predict(
        self,
        signature_name: str | None,
        inputs: Mapping[str, np.ndarray],
        *,
        output_filter: Iterable[str] = (),
        max_batch_size: int | None = None,
        batcher: "Batcher | None" = None,
    ) -> dict[str, np.ndarray]:
        """Runs a signature on numpy inputs; returns ``{output: np.ndarray}``.

        With a ``batcher``, the validated request is merged with concurrent
        ones of the same signature and input shapes into one call.

        Raises:
          ServingError: FAILED_PRECONDITION for an unknown signature,
            INVALID_ARGUMENT for bad inputs or output filter, or the status of
            an error raised inside the graph.
        """
        signature = self.signature(signature_name)
        check_input_names(inputs, signature.inputs)
        tensors, batch_sizes = _checked_inputs(signature, inputs)
        batch = _batch_size(batch_sizes, max_batch_size)
        fetch = _output_names(signature, output_filter)
        batched = batch is not None and all(
            spec.shape.rank and spec.shape[0] is None
            for spec in signature.inputs.values()
        )
        if batcher is not None and batched:
            outputs = self._run_batched(signature, tensors, batch, batcher)
        else:
            outputs = self.call(signature, tensors)
        return {name: outputs[name] for name in fetch}

    def _run_batched(
        self,
        signature: Signature,
        tensors: dict[str, np.ndarray],
        batch: int,
        batcher: "Batcher",
    ) -> dict[str, np.ndarray]:
        """Runs the request through ``batcher``, merged with requests of the
        same servable, signature, input dtypes and row shapes."""
        key = (
            self,
            signature.name,
            tuple(
                (name, value.dtype.str, value.shape[1:])
                for name, value in sorted(tensors.items())
            ),
        )
        return batcher.run(key, tensors, batch, functools.partial(self.call, signature))

    def call(
        self, signature: Signature, inputs: Mapping[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Calls a signature on validated inputs; every output, as numpy.

        Raises:
          ServingError: the status of an error raised inside the graph, with
            TensorFlow's cause as the message.
        """
        try:
            outputs = signature.function(
                **{
                    name: tf.convert_to_tensor(value, signature.inputs[name].dtype)
                    for name, value in inputs.items()
                }
            )
        except tf.errors.OpError as err:
            raise ServingError(
                status_code_from_number(err.error_code), tf_error_cause(err.message)
            ) from err
        return {name: value.numpy() for name, value in outputs.items()}

    def warmup(self) -> int:
        """Replays ``assets.extra/tf_serving_warmup_requests``; returns the count.

        Raises:
          ServingError: a warmup request fails (the version must not load).
        """
        path = self.path / WARMUP_PATH
        if not path.is_file():
            return 0
        from mtrec.export.warmup import read_warmup_file

        count = 0
        for log in read_warmup_file(path):
            kind = log.WhichOneof("log_type")
            if kind != "predict_log":
                raise ServingError(
                    grpc.StatusCode.UNIMPLEMENTED,
                    f"warmup record #{count} is a {kind}; only predict_log is served",
                )
            request = log.predict_log.request
            self.predict(
                request.model_spec.signature_name,
                {k: tf.make_ndarray(v) for k, v in request.inputs.items()},
                output_filter=request.output_filter,
            )
            count += 1
        return count


def _checked_inputs(
    signature: Signature, inputs: Mapping[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Checks each input's dtype and shape against the signature, in its order.

    Returns the inputs by name and the first dimension of each input whose
    signature shape has a variable first dimension.
    """
    batch_sizes = {}
    tensors = {}
    for name, spec in signature.inputs.items():
        value = inputs[name]
        dtype = (
            tf.string
            if value.dtype == object or value.dtype.kind in "SU"
            else tf.as_dtype(value.dtype)
        )
        if dtype != spec.dtype:
            raise ServingError.invalid(
                f"input '{name}' expects dtype {spec.dtype.name} but "
                f"{dtype.name} is provided"
            )
        if not spec.shape.is_compatible_with(value.shape):
            raise ServingError.invalid(
                f"input '{name}' has shape {list(value.shape)} but the signature "
                f"expects {_shape_text(spec.shape)}"
            )
        if spec.shape.rank and spec.shape[0] is None:
            batch_sizes[name] = value.shape[0]
        tensors[name] = value
    return tensors, batch_sizes


def _batch_size(batch_sizes: dict[str, int], max_batch_size: int | None) -> int | None:
    """The request's one batch size (``None``: no batched input), checked to be
    shared by every batched input, non-zero and within ``max_batch_size``."""
    if len(set(batch_sizes.values())) > 1:
        raise ServingError.invalid(
            f"inputs have different batch sizes (first dimension): {batch_sizes}"
        )
    batch = next(iter(batch_sizes.values()), None)
    if batch == 0:
        raise ServingError.invalid("the batch is empty: inputs have 0 rows")
    if max_batch_size and batch is not None and batch > max_batch_size:
        raise ServingError.invalid(
            f"Task size {batch} is larger than maximum input batch size "
            f"{max_batch_size}"
        )
    return batch


def _output_names(signature: Signature, output_filter: Iterable[str]) -> list[str]:
    requested = list(output_filter)
    if not requested:
        return sorted(signature.outputs)
    seen = set()
    for alias in requested:
        if alias not in signature.outputs:
            raise ServingError.invalid(
                f"output tensor alias not found in signature: {alias} Outputs "
                f"expected to be in the set {{{','.join(sorted(signature.outputs))}}}."
            )
        if alias in seen:
            raise ServingError.invalid(f"duplicate output tensor alias: {alias}")
        seen.add(alias)
    return requested


def _shape_text(shape: tf.TensorShape) -> str:
    if shape.rank is None:
        return "any shape"
    return "[" + ", ".join("-1" if d is None else str(d) for d in shape) + "]"


_NOISE = (
    "Graph execution error",
    "Detected at node",
    "File ",
    "[[",
    "Stack trace",
    "<stack traces unavailable>",
)


def tf_error_cause(message: str) -> str:
    """The cause of a TensorFlow ``OpError`` message, in one line.

    Graph errors wrap it in ``Graph execution error:``, the node's Python
    stack and ``[[{{node ...}}]]``; an assertion's text is
    ``assertion failed: [<text>]``. Returns ``<text>`` (or the first line that
    is none of those).

    Example:

    >>> tf_error_cause("Graph execution error:\\n\\nDetected at node A defined "
    ...     "at:\\n  File \\"x.py\\", line 1\\n\\nassertion failed: [Input 'p' "
    ...     "is NaN]\\n\\t [[{{node A}}]] [Op:f]")
    "Input 'p' is NaN"
    """
    for line in message.splitlines():
        line = line.strip()
        if not line or line.startswith(_NOISE):
            continue
        if line.startswith("assertion failed: [") and "]" in line:
            return line.removeprefix("assertion failed: [").rsplit("]", 1)[0]
        return line
    return message.strip()
