"""``gate_softmax``: tf.nn.softmax's values and gradient in element-wise ops."""

import mtrec  # noqa: F401  (the Keras switch, before TensorFlow)

# isort: split
import numpy as np
import pytest
import tensorflow as tf

from mtrec.layers import gate_softmax


def _values_and_gradient(softmax, logits, upstream):
    with tf.GradientTape() as tape:
        tape.watch(logits)
        y = softmax(logits)
        loss = tf.reduce_sum(y * upstream)
    return y.numpy(), tape.gradient(loss, logits).numpy()


@pytest.mark.parametrize("width", [1, 2, 4, 6, 33])
@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_equals_tf_softmax_values_and_gradient(width, scale):
    rng = np.random.default_rng(width)
    logits = tf.constant(scale * rng.normal(size=(64, width)), tf.float32)
    upstream = tf.constant(rng.normal(size=(64, width)), tf.float32)
    ours = _values_and_gradient(gate_softmax, logits, upstream)
    reference = _values_and_gradient(tf.nn.softmax, logits, upstream)
    np.testing.assert_allclose(ours[0], reference[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ours[1], reference[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours[0].sum(axis=-1), 1.0, rtol=1e-6)


def test_extreme_logits_stay_finite_and_exact():
    logits = tf.constant([[1e4, -1e4, 0.0], [-1e30, -1e30, -1e30], [88.0, 89.0, 90.0]])
    y = gate_softmax(logits).numpy()
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y, tf.nn.softmax(logits).numpy(), rtol=1e-6, atol=0)
    np.testing.assert_array_equal(y[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(y[1], [1 / 3] * 3, rtol=1e-6)


def test_higher_rank_dtype_and_graph():
    logits = tf.random.stateless_normal((3, 5, 4), seed=(1, 2))
    np.testing.assert_allclose(
        tf.function(gate_softmax)(logits).numpy(),
        tf.nn.softmax(logits).numpy(),
        rtol=1e-6,
        atol=1e-7,
    )
    half = tf.cast(logits, tf.bfloat16)
    y = gate_softmax(half)
    assert y.dtype == tf.bfloat16 and y.shape == (3, 5, 4)
    np.testing.assert_allclose(
        tf.cast(y, tf.float32).numpy(),
        tf.nn.softmax(logits).numpy(),
        atol=1e-2,
    )
