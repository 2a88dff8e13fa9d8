"""Value transforms shared by fitting (numpy) and the model (graph)."""

import numpy as np
import tensorflow as tf

from mtrec.features.dense import DenseFeature
from mtrec.features.input_checks import checked_finite


def signed_log1p(x):
    """``sign(x) * log(1 + |x|)``, one implementation for fitting and serving.

    A ``tf.Tensor`` stays a tensor (the model, any float dtype); anything else
    is computed by the same TensorFlow ops in float64 and returned as numpy
    (the statistics fitted on the train split).

    Example:

    >>> signed_log1p(np.array([-3.0, 0.0, 1e30])).round(4)
    array([-1.3863,  0.    , 69.0776])
    """
    if isinstance(x, tf.Tensor):
        return tf.sign(x) * tf.math.log1p(tf.abs(x))
    values = tf.constant(np.asarray(x, dtype=np.float64))
    return (tf.sign(values) * tf.math.log1p(tf.abs(values))).numpy()


def dense_value(spec: DenseFeature, raw: tf.Tensor, stats: dict) -> tf.Tensor:
    """The transformed value of a dense feature, the same in training and
    serving, before its z-score or buckets.

    NaN is the feature's ``fill_value`` (a missing cell) when it has one; a
    value still NaN or infinite is an error naming the feature and the row
    (:func:`~mtrec.features.input_checks.checked_finite`); then
    :func:`signed_log1p` if ``spec.log1p``; then clipped to the training
    range ``[stats["min"], stats["max"]]`` when both are known.

    Example:

    >>> spec = DenseFeature(name="price", log1p=True, fill_value=0.0)
    >>> raw = tf.constant([float("nan"), 1.0, 1e6])
    >>> value = dense_value(spec, raw, {"min": 0.0, "max": 5.0})
    >>> value.numpy().astype("float64").round(3)
    array([0.   , 0.693, 5.   ])
    """
    x = tf.cast(raw, tf.float32)
    if spec.fill_value is not None:
        x = tf.where(tf.math.is_nan(x), tf.constant(spec.fill_value, x.dtype), x)
    x = checked_finite(spec.name, x)
    if spec.log1p:
        x = signed_log1p(x)
    if stats.get("min") is not None and stats.get("max") is not None:
        x = tf.clip_by_value(x, stats["min"], stats["max"])
    return x
