"""Serving signatures: raw feature tensors, or serialized ``tf.Example`` protos."""

from collections.abc import Mapping
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from mtrec.features.dense import DenseFeature
from mtrec.features.feature_set import FeatureSet
from mtrec.models.plain_trace import plain_first_function

#: Signature taking one tensor per feature (the TF Serving default key).
SERVING_DEFAULT = "serving_default"
#: Signature taking a batch of serialized ``tf.Example`` protos.
PREDICT_EXAMPLES = "predict_examples"
#: The input name of ``predict_examples``.
EXAMPLES_INPUT = "examples"
#: The method name TF Serving's Predict API requires of a signature.
PREDICT_METHOD_NAME = "tensorflow/serving/predict"


def serving_function(
    model: tf.keras.Model, feature_set: FeatureSet
) -> tf.types.experimental.GenericFunction:
    """``serving_default``: raw features by name -> ``{output: (batch,)}``,
    traced now (as plain Python where the model allows it,
    ``mtrec.models.plain_trace``)."""

    def serve(features):
        return _flat_outputs(model(features, training=False))

    return plain_first_function(serve, [feature_set.input_signature()], "serving")


def example_parsing_spec(feature_set: FeatureSet) -> dict[str, tf.io.FixedLenFeature]:
    """How ``predict_examples`` reads each feature from a ``tf.Example``.

    A missing feature takes the value the click-log reader gives a missing cell:
    ``""`` for string ids (an out-of-vocabulary bucket), the ``fill_value`` of a
    dense feature; int64 ids, and dense features without a ``fill_value``, are
    required (parsing fails with INVALID_ARGUMENT naming the feature).
    """
    spec = {}
    for feature in feature_set:
        dtype = feature_set.input_dtype(feature.name)
        if dtype == tf.string:
            default = ""
        elif isinstance(feature, DenseFeature) and feature.fill_value is not None:
            default = float(feature.fill_value)
        else:
            default = None
        spec[feature.name] = tf.io.FixedLenFeature([], dtype, default_value=default)
    return spec


def examples_function(
    model: tf.keras.Model, feature_set: FeatureSet
) -> tf.types.experimental.GenericFunction:
    """``predict_examples``: serialized ``tf.Example`` protos -> the same
    outputs, traced now like :func:`serving_function`."""
    spec = example_parsing_spec(feature_set)

    def serve_examples(examples):
        features = tf.io.parse_example(examples, spec)
        return _flat_outputs(model(features, training=False))

    signature = [tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)]
    return plain_first_function(serve_examples, signature, "predict_examples")


def _flat_outputs(outputs: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    return {name: tf.reshape(value, [-1], name=name) for name, value in outputs.items()}


def feature_arrays(
    rows: Mapping[str, Sequence], feature_set: FeatureSet
) -> dict[str, np.ndarray]:
    """Raw feature columns as numpy arrays of the signature dtypes.

    Strings become object arrays of ``bytes``; extra columns are dropped.

    Raises:
      ValueError: a feature is missing or the columns differ in length.
    """
    missing = [name for name in feature_set.names if name not in rows]
    if missing:
        raise ValueError(f"rows lack the feature column(s) {missing}")
    arrays = {}
    for name in feature_set.names:
        dtype = feature_set.input_dtype(name)
        values = rows[name]
        if dtype == tf.string:
            arrays[name] = np.array(
                [v if isinstance(v, bytes) else str(v).encode() for v in values],
                dtype=object,
            )
        else:
            arrays[name] = np.asarray(values, dtype=dtype.as_numpy_dtype)
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"feature columns differ in length: {lengths}")
    return arrays


def to_examples(rows: Mapping[str, Sequence], feature_set: FeatureSet) -> list[bytes]:
    """Serialized ``tf.Example`` protos, one per row, for ``predict_examples``."""
    arrays = feature_arrays(rows, feature_set)
    count = len(next(iter(arrays.values())))
    examples = []
    for i in range(count):
        feature = {}
        for name, values in arrays.items():
            value = values[i]
            if values.dtype == object:
                feature[name] = tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[value])
                )
            elif np.issubdtype(values.dtype, np.integer):
                feature[name] = tf.train.Feature(
                    int64_list=tf.train.Int64List(value=[int(value)])
                )
            else:
                feature[name] = tf.train.Feature(
                    float_list=tf.train.FloatList(value=[float(value)])
                )
        example = tf.train.Example(features=tf.train.Features(feature=feature))
        examples.append(example.SerializeToString())
    return examples
