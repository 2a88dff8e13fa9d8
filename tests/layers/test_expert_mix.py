"""Tests of the expert-mixing ops: values and gradients against plain mixes."""

# Keras 2 switch: mtrec must be imported before TensorFlow.
from mtrec.layers import mix_expert_groups  # isort: split

import numpy as np
import pytest
import tensorflow as tf

from mtrec.layers import mix_experts
from mtrec.layers import mix_experts_per_gate


def test_mix_experts_equals_einsum_forward_and_backward():
    rng = np.random.default_rng(0)
    gates = tf.constant(rng.dirichlet(np.ones(5), size=7).astype("float32"))
    experts = tf.constant(rng.normal(size=(7, 5, 3)).astype("float32"))
    target = tf.constant(rng.normal(size=(7, 3)).astype("float32"))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([gates, experts])
        ours = mix_experts(gates, experts)
        reference = tf.einsum("bn,bnu->bu", gates, experts)
        loss_ours = tf.reduce_sum(ours * target)
        loss_reference = tf.reduce_sum(reference * target)
    np.testing.assert_allclose(ours, reference, atol=1e-6)
    for ours_grad, reference_grad in zip(
        tape.gradient(loss_ours, [gates, experts]),
        tape.gradient(loss_reference, [gates, experts]),
        strict=True,
    ):
        np.testing.assert_allclose(ours_grad, reference_grad, atol=1e-6)
    # By hand for one row: sum_i g_i e_i.
    expected = (gates[0, :, None] * experts[0]).numpy().sum(axis=0)
    np.testing.assert_allclose(ours[0], expected, atol=1e-6)


@pytest.mark.parametrize("num_gates", [1, 2, 3])
def test_mix_experts_per_gate_equals_one_mix_per_gate(num_gates):
    tf.keras.utils.set_random_seed(4)
    experts = tf.random.normal((5, 4, 3))
    gates = [tf.nn.softmax(tf.random.normal((5, 4))) for _ in range(num_gates)]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([experts, *gates])
        many = mix_experts_per_gate(gates, experts)
        one = [mix_experts(g, experts) for g in gates]
        losses = [
            tf.add_n([tf.reduce_sum(m * (i + 1.0)) for i, m in enumerate(out)])
            for out in (many, one)
        ]
    assert len(many) == num_gates
    for a, b in zip(many, one, strict=True):
        assert a.shape == (5, 3)
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    _assert_equal_gradients(tape, losses, [experts, *gates], rtol=1e-5)


def _assert_equal_gradients(tape, losses, sources, rtol):
    """Both ``losses`` have the same gradients with respect to ``sources``."""
    for a, b in zip(
        tape.gradient(losses[0], sources),
        tape.gradient(losses[1], sources),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-6)


@pytest.mark.parametrize("sizes", [[3], [1, 2], [2, 2, 2]])
def test_mix_expert_groups_equals_a_mix_of_the_concatenation(sizes):
    tf.keras.utils.set_random_seed(5)
    groups = [tf.random.normal((5, n, 3)) for n in sizes]
    gates = tf.nn.softmax(tf.random.normal((5, sum(sizes))))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([gates, *groups])
        grouped = mix_expert_groups(gates, groups)
        whole = mix_experts(gates, tf.concat(groups, axis=1))
        losses = [tf.reduce_sum(m * tf.range(1.0, 4.0)) for m in (grouped, whole)]
    assert grouped.shape == (5, 3)
    np.testing.assert_allclose(grouped, whole, rtol=1e-6, atol=1e-6)
    _assert_equal_gradients(tape, losses, [gates, *groups], rtol=1e-6)
