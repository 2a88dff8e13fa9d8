"""Tests of the expert-mixing ops: values and gradients against plain mixes."""

# Keras 2 switch: mtrec must be imported before TensorFlow.
from mtrec.layers import mix_expert_groups  # isort: split

import numpy as np
import pytest
import tensorflow as tf

from mtrec.layers import mix_experts
from mtrec.layers import mix_experts_per_gate
from mtrec.layers import mix_gates_over_groups
from mtrec.layers import mix_gates_over_joined
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


def _weighted_sum(outputs):
    """A loss that weights each output differently (``k + 1``)."""
    return tf.add_n([tf.reduce_sum(m * (k + 1.0)) for k, m in enumerate(outputs)])


def _assert_equal_gradients(
    tape, losses, sources, rtol, unconnected=tf.UnconnectedGradients.NONE
):
    """Both ``losses`` have the same gradients with respect to ``sources``
    (``unconnected``: what a source neither loss reaches gets)."""
    for a, b in zip(
        tape.gradient(losses[0], sources, unconnected_gradients=unconnected),
        tape.gradient(losses[1], sources, unconnected_gradients=unconnected),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-6)


@pytest.mark.parametrize("num_gates", [1, 2, 3])
def test_mix_experts_per_gate_equals_one_mix_per_gate(num_gates):
    tf.keras.utils.set_random_seed(4)
    experts = tf.random.normal((5, 4, 3))
    gates = [tf.nn.softmax(tf.random.normal((5, 4))) for _ in range(num_gates)]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([experts, *gates])
        many = mix_experts_per_gate(gates, experts)
        one = [mix_experts(g, experts) for g in gates]
        losses = [_weighted_sum(out) for out in (many, one)]
    assert len(many) == num_gates
    for a, b in zip(many, one, strict=True):
        assert a.shape == (5, 3)
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    _assert_equal_gradients(tape, losses, [experts, *gates], rtol=1e-5)


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


def _random_gates(sizes, members):
    """A softmax gate ``(5, n)`` per member list, over its groups' experts."""
    return [
        tf.nn.softmax(tf.random.normal((5, sum(sizes[j] for j in chosen))))
        for chosen in members
    ]


def _mix_each(gates, members, groups):
    """Each gate's mixture of its groups, one ``mix_expert_groups`` each."""
    return [
        mix_expert_groups(g, [groups[j] for j in chosen])
        for g, chosen in zip(gates, members, strict=True)
    ]


@pytest.mark.parametrize(
    "sizes, members",
    [
        ([2, 2, 2], [[0, 2], [1, 2], [0, 1, 2]]),  # a CGC level: 2 tasks, shared
        ([1, 3], [[1, 0], [1]]),  # columns in another order than the groups
        ([2, 1, 2], [[0], [2]]),  # a group no gate mixes
        ([3], [[0]]),  # one gate
    ],
)
def test_mix_gates_over_groups_equals_a_grouped_mix_per_gate(sizes, members):
    tf.keras.utils.set_random_seed(6)
    groups = [tf.random.normal((5, n, 3)) for n in sizes]
    gates = _random_gates(sizes, members)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([*gates, *groups])
        batched = mix_gates_over_groups(gates, members, groups)
        each = _mix_each(gates, members, groups)
        losses = [_weighted_sum(out) for out in (batched, each)]
    assert [m.shape for m in batched] == [(5, 3)] * len(members)
    for a, b in zip(batched, each, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    # A group no gate mixes gets a zero gradient here, none there.
    _assert_equal_gradients(
        tape,
        losses,
        [*gates, *groups],
        rtol=1e-5,
        unconnected=tf.UnconnectedGradients.ZERO,
    )


def test_mix_gates_over_groups_by_hand_and_inside_separate_matmuls():
    own = tf.constant([[[1.0, 2.0]]])  # (1, 1, 2)
    shared = tf.constant([[[10.0, 20.0], [30.0, 40.0]]])  # (1, 2, 2)
    gates = [tf.constant([[0.5, 0.25, 0.25]]), tf.constant([[0.1, 0.9]])]
    members = [[0, 1], [1]]
    expected = [[[10.5, 16.0]], [[28.0, 38.0]]]
    mixed = mix_gates_over_groups(gates, members, [own, shared])
    np.testing.assert_allclose([m.numpy() for m in mixed], expected, rtol=1e-6)
    graph = (
        tf.function(lambda: mix_gates_over_groups(gates, members, [own, shared]))
        .get_concrete_function()
        .graph
    )
    assert sum(op.type == "BatchMatMulV2" for op in graph.get_operations()) == 1
    with separate_matmuls():
        separate = mix_gates_over_groups(gates, members, [own, shared])
        graph = (
            tf.function(lambda: mix_gates_over_groups(gates, members, [own, shared]))
            .get_concrete_function()
            .graph
        )
    np.testing.assert_allclose([m.numpy() for m in separate], expected, rtol=1e-6)
    assert sum(op.type == "BatchMatMulV2" for op in graph.get_operations()) == 0


def test_mix_gates_over_groups_errors():
    groups = [tf.ones((2, 2, 3)), tf.ones((2, 1, 3))]
    with pytest.raises(ValueError) as caught:
        mix_gates_over_groups([tf.ones((2, 2))], [[0], [1]], groups)
    assert str(caught.value) == (
        "`gates` and `members` must have the same length. Received: "
        "`len(gates)=1`, `len(members)=2`"
    )
    with pytest.raises(ValueError) as caught:
        mix_gates_over_groups([tf.ones((2, 2)), tf.ones((2, 2))], [[0], [0, 1]], groups)
    assert str(caught.value) == (
        "Gate 1 mixes groups [0, 1] of 3 experts but has 2 weights. Received: "
        "`members=[[0], [0, 1]]`, group sizes [2, 1]"
    )


@pytest.mark.parametrize(
    "sizes, members",
    [([2, 2, 2], [[0, 2], [1, 2], [0, 1, 2]]), ([1, 3], [[1, 0], [1]]), ([3], [[0]])],
)
def test_mix_gates_over_joined_equals_the_mix_of_the_groups(sizes, members):
    tf.keras.utils.set_random_seed(7)
    experts = tf.random.normal((5, sum(sizes), 3))
    gates = _random_gates(sizes, members)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([*gates, experts])
        joined = mix_gates_over_joined(gates, members, experts, sizes)
        groups = tf.split(experts, sizes, axis=1)
        each = _mix_each(gates, members, groups)
        losses = [_weighted_sum(out) for out in (joined, each)]
    for a, b in zip(joined, each, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    _assert_equal_gradients(tape, losses, [*gates, experts], rtol=1e-5)


def test_mix_gates_over_joined_errors():
    experts = tf.ones((2, 3, 4))
    with pytest.raises(ValueError) as caught:
        mix_gates_over_joined([tf.ones((2, 3))], [[0, 1]], experts, [2, 2])
    assert str(caught.value) == (
        "`experts` holds 3 experts but the groups' sizes add up to 4. "
        "Received: `sizes=[2, 2]`"
    )
    with pytest.raises(ValueError) as caught:
        mix_gates_over_joined([tf.ones((2, 2))], [[0, 1]], experts, [2, 1])
    assert str(caught.value) == (
        "Gate 0 mixes groups [0, 1] of 3 experts but has 2 weights. Received: "
        "`members=[[0, 1]]`, group sizes [2, 1]"
    )
