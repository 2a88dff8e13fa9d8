"""TF Serving warmup requests: a TFRecord of ``PredictionLog`` protos.

TF Serving replays ``assets.extra/tf_serving_warmup_requests`` when it loads a
version, before the version receives traffic, so lazily initialised state
(lookup tables, ``tf.function`` tracing, memory pools, GPU kernels) is ready and
the first real requests are not slow. The file holds at most 1000 records of
``tensorflow.serving.PredictionLog`` (from ``tensorflow-serving-api``); each
record here is a ``predict_log`` whose request names a signature and carries
real rows (``mtrec.training`` passes the first rows of the run's eval split).
"""

import os
import pathlib
from collections.abc import Mapping
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from mtrec.export.signatures import EXAMPLES_INPUT
from mtrec.export.signatures import PREDICT_EXAMPLES
from mtrec.export.signatures import SERVING_DEFAULT
from mtrec.export.signatures import feature_arrays
from mtrec.export.signatures import to_examples
from mtrec.features.feature_set import FeatureSet

#: The file name TF Serving looks for under ``assets.extra/``.
WARMUP_FILE = "tf_serving_warmup_requests"
#: TF Serving reads at most this many warmup records.
MAX_WARMUP_RECORDS = 1000


def warmup_requests(
    rows: Mapping[str, Sequence],
    feature_set: FeatureSet,
    *,
    signatures: Sequence[str] = (SERVING_DEFAULT, PREDICT_EXAMPLES),
) -> list:
    """``PredictionLog`` protos exercising each signature with the given rows.

    Two requests per signature: a single row (the smallest batch) and all the
    rows (a typical candidate batch), so both ends of the batch-size range
    are traced and warm.

    Args:
      rows: raw feature columns (``{feature: values}``), e.g. validation rows.
      feature_set: the model's features (names and dtypes).
      signatures: which signatures to warm.

    Returns:
      A list of ``tensorflow.serving.PredictionLog``.
    """
    from tensorflow_serving.apis import predict_pb2
    from tensorflow_serving.apis import prediction_log_pb2

    arrays = feature_arrays(rows, feature_set)
    count = len(next(iter(arrays.values())))
    if count == 0:
        raise ValueError("warmup rows are empty")
    examples = np.array(to_examples(arrays, feature_set), dtype=object)
    logs = []
    for signature in signatures:
        for size in sorted({1, count}):
            request = predict_pb2.PredictRequest()
            request.model_spec.signature_name = signature
            if signature == PREDICT_EXAMPLES:
                inputs = {EXAMPLES_INPUT: examples[:size]}
            else:
                inputs = {name: values[:size] for name, values in arrays.items()}
            for name, values in inputs.items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(values))
            logs.append(
                prediction_log_pb2.PredictionLog(
                    predict_log=prediction_log_pb2.PredictLog(request=request)
                )
            )
    return logs[:MAX_WARMUP_RECORDS]


def write_warmup_file(path: str | os.PathLike, logs: Sequence) -> pathlib.Path:
    """Writes ``PredictionLog`` protos as a TFRecord file."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return path


def read_warmup_file(path: str | os.PathLike) -> list:
    """The ``PredictionLog`` protos of a warmup file (at most 1000, as TF Serving)."""
    from tensorflow_serving.apis import prediction_log_pb2

    logs = []
    for record in tf.data.TFRecordDataset(str(path)).take(MAX_WARMUP_RECORDS):
        logs.append(prediction_log_pb2.PredictionLog.FromString(record.numpy()))
    return logs
