"""Mixing expert outputs with gate weights: ``sum_i g_i E_i``, the cheap ways.

Every mixture layer ends in these: :func:`mix_experts` for one gate over one
group of experts, :func:`mix_expert_groups` over several groups,
and :func:`mix_experts_per_gate` for several gates over the same experts
(MMoE). All give the same values; they differ in the ops and copies of the
forward and backward pass.
"""

from collections.abc import Sequence

import tensorflow as tf

from mtrec.layers.shared_matmuls import matmuls_separate


def mix_experts(gates: tf.Tensor, experts: tf.Tensor) -> tf.Tensor:
    """``sum_i gates[b, i] * experts[b, i, :]``: ``(b, n), (b, n, u) -> (b, u)``.

    A multiply and a sum. Forward and backward on one CPU thread it measured
    1.35-1.57x (median) faster than ``tf.einsum("bn,bnu->bu")`` at 8 and 4
    experts; a batched ``matmul`` was as fast at 8 experts but slower at 4
    (``benchmarks/expert_mixing.py``).
    """
    return tf.reduce_sum(gates[:, :, None] * experts, axis=1)


def mix_expert_groups(gates: tf.Tensor, groups: Sequence[tf.Tensor]) -> tf.Tensor:
    """``mix_experts(gates, concat(groups, axis=1))`` without the concatenation.

    ``(b, n), [(b, n_j, u)] -> (b, u)`` with ``n = sum_j n_j``: the gate's
    columns are split by group, each group mixed by its columns, and the
    mixtures added. A CGC task mixes its own experts with the shared ones;
    concatenating them copied ``b * n * u`` values forward and again in the
    backward pass (a split) for every gate, where here only the ``(b, n)``
    gates are split.

    Example:

    >>> own = tf.reshape(tf.range(4.0), (1, 1, 4))
    >>> shared = tf.reshape(tf.range(4.0, 12.0), (1, 2, 4))
    >>> gates = tf.constant([[0.5, 0.25, 0.25]])
    >>> mix_expert_groups(gates, [own, shared]).numpy().tolist()
    [[3.0, 4.0, 5.0, 6.0]]
    """
    if len(groups) == 1:
        return mix_experts(gates, groups[0])
    columns = tf.split(gates, [int(group.shape[1]) for group in groups], axis=1)
    return tf.add_n(
        [mix_experts(g, group) for g, group in zip(columns, groups, strict=True)]
    )


def mix_experts_per_gate(
    gates: Sequence[tf.Tensor], experts: tf.Tensor
) -> list[tf.Tensor]:
    """``[mix_experts(g, experts) for g in gates]``, as one batched matmul.

    With ``t`` gates over the same experts, ``G = stack(gates)`` ``(b, t, n)``
    and ``G @ experts`` ``(b, t, u)``: one op forward and two backward
    instead of a multiply and a sum per gate (MMoE's training step measured
    1.12x faster with two tasks and 8 experts on one core). One gate, or
    any number inside :func:`separate_matmuls` (the stacked matmul would
    connect every gate to every task's loss), is :func:`mix_experts` each.

    Example:

    >>> experts = tf.reshape(tf.range(12.0), (1, 3, 4))
    >>> gates = [tf.constant([[1.0, 0.0, 0.0]]), tf.constant([[0.0, 0.5, 0.5]])]
    >>> [m.numpy().tolist() for m in mix_experts_per_gate(gates, experts)]
    [[[0.0, 1.0, 2.0, 3.0]], [[6.0, 7.0, 8.0, 9.0]]]
    """
    if len(gates) == 1 or matmuls_separate():
        return [mix_experts(g, experts) for g in gates]
    mixed = tf.matmul(tf.stack(list(gates), axis=1), experts)
    return tf.unstack(mixed, num=len(gates), axis=1)
