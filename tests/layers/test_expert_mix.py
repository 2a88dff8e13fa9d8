"""Tests of the expert-mixing ops: values and gradients against plain mixes."""

# Keras 2 switch: mtrec must be imported before TensorFlow.
from mtrec.layers import mix_expert_groups  # isort: split

import numpy as np
import pytest
import tensorflow as tf

from mtrec.layers import mix_experts
from mtrec.layers import mix_experts_per_gate
from mtrec.layers import mix_gates_over_groups
from mtrec.layers import separate_matmuls


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


#: (group sizes, each gate's groups): CGC's task gates (own + shared), with
#: the shared gate (all), without task experts, and one gate alone.
GATED_LAYOUTS = [
    ([2, 2, 2], [[0, 2], [1, 2]]),
    ([2, 2, 2], [[0, 2], [1, 2], [0, 1, 2]]),
    ([1, 3, 2], [[0, 2], [1, 2], [0, 1, 2]]),
    ([3], [[0], [0]]),
    ([2, 1], [[1, 0]]),
]


@pytest.mark.parametrize(("sizes", "members"), GATED_LAYOUTS)
def test_mix_gates_over_groups_equals_one_grouped_mix_per_gate(sizes, members):
    tf.keras.utils.set_random_seed(6)
    groups = [tf.random.normal((5, n, 3)) for n in sizes]
    gates = [
        tf.nn.softmax(tf.random.normal((5, sum(sizes[j] for j in m)))) for m in members
    ]
    gated = list(zip(gates, members, strict=True))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([*gates, *groups])
        fused = mix_gates_over_groups(gated, groups)
        one = [mix_expert_groups(g, [groups[j] for j in m]) for g, m in gated]
        losses = [
            tf.add_n([tf.reduce_sum(x * (i + 1.0)) for i, x in enumerate(out)])
            for out in (fused, one)
        ]
    assert [tuple(x.shape) for x in fused] == [(5, 3)] * len(members)
    for a, b in zip(fused, one, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    _assert_equal_gradients(tape, losses, [*gates, *groups], rtol=1e-5)


def test_a_gate_ignores_the_groups_it_does_not_weigh_exactly():
    tf.keras.utils.set_random_seed(7)
    groups = [tf.random.normal((4, 2, 3)) for _ in range(3)]
    gated = [(tf.nn.softmax(tf.random.normal((4, 4))), m) for m in ([0, 2], [1, 2])]
    before = mix_gates_over_groups(gated, groups)
    changed = [groups[0], groups[1] * 1e3 + 7.0, groups[2]]
    after = mix_gates_over_groups(gated, changed)
    np.testing.assert_array_equal(after[0], before[0])
    assert not np.allclose(after[1], before[1])


def test_mix_gates_over_groups_keeps_each_gate_apart_in_separate_matmuls():
    tf.keras.utils.set_random_seed(8)
    groups = [tf.random.normal((4, 2, 3)) for _ in range(3)]
    gated = [(tf.nn.softmax(tf.random.normal((4, 4))), m) for m in ([0, 2], [1, 2])]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(groups)
        with separate_matmuls():
            apart = mix_gates_over_groups(gated, groups)
        fused = mix_gates_over_groups(gated, groups)
    # Apart, the first gate's mix is not connected to the second task's
    # group at all; fused, it is, with a zero gradient.
    assert tape.gradient(apart[0], groups[1]) is None
    np.testing.assert_array_equal(tape.gradient(fused[0], groups[1]), 0.0)
    for a, b in zip(apart, fused, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
