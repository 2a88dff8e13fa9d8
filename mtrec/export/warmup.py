"""TF Serving warmup requests: a TFRecord of ``PredictionLog`` protos.

TF Serving replays ``assets.extra/tf_serving_warmup_requests`` when it loads a
version, before the version receives traffic, so lazily initialised state
(lookup tables, ``tf.function`` tracing, memory pools, GPU kernels) is ready and
the first real requests are not slow. The file holds at most 1000 records of
``tensorflow.serving.PredictionLog`` (from ``tensorflow-serving-api``); each
record here is a ``predict_log`` whose request names a signature and carries
real rows (by default the first rows of the run's validation split).
"""

import logging
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

logger = logging.getLogger(__name__)

#: The file name TF Serving looks for under ``assets.extra/``.
WARMUP_FILE = "tf_serving_warmup_requests"
#: TF Serving reads at most this many warmup records.
MAX_WARMUP_RECORDS = 1000
#: Rows taken from the validation split when none are given.
DEFAULT_WARMUP_ROWS = 100


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


def eval_rows_from_config(
    config_path: str | os.PathLike, num_rows: int = DEFAULT_WARMUP_ROWS
) -> dict[str, np.ndarray] | None:
    """The first ``num_rows`` validated rows of a run's validation split.

    Reads ``data.eval`` if the config names one, else the ``eval`` part of the
    deterministic split of ``data.train`` (the rows ``train()`` evaluated on).

    Returns:
      ``{feature: values}``, or ``None`` (logged) when the data cannot be read,
      e.g. the click log has moved since training.
    """
    from mtrec.data.reader import Split
    from mtrec.data.reader import iter_chunks
    from mtrec.data.schema import DataError
    from mtrec.training.builders import build_feature_set
    from mtrec.training.config import ConfigError
    from mtrec.training.config import load_config

    try:
        config = load_config(config_path)
        feature_set = build_feature_set(config)
        if config.data.eval:
            paths, split = config.data.eval, None
        else:
            paths = config.data.train
            split = Split("eval", config.data.eval_fraction, config.seed)
        parts, count = [], 0
        for chunk in iter_chunks(
            paths,
            feature_set.column_schema(),
            chunk_rows=max(num_rows, 4096),
            file_format=config.data.format,
            split=split,
        ):
            parts.append(chunk)
            count += len(chunk[feature_set.names[0]])
            if count >= num_rows:
                break
    except (ConfigError, DataError, OSError, ValueError) as err:
        logger.warning("no warmup rows from %s: %s", config_path, err)
        return None
    if not parts:
        logger.warning(
            "no warmup rows from %s: the validation split is empty", config_path
        )
        return None
    return {
        name: np.concatenate([part[name] for part in parts])[:num_rows]
        for name in feature_set.names
    }
