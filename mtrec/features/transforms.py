"""Value transforms shared by fitting (numpy) and the model (graph)."""

import numpy as np
import tensorflow as tf


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
