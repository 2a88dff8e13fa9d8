"""Mixing expert outputs with gate weights: ``sum_i g_i E_i``, the cheap ways.

Every mixture layer ends in these: :func:`mix_experts` for one gate over one
group of experts, :func:`mix_expert_groups` over several groups,
:func:`mix_experts_per_gate` for several gates over the same experts
(MMoE), and :func:`mix_gates_over_groups` for several gates, each over its
own choice of groups (CGC, PLE). All give the same values; they differ in the
ops and copies of the forward and backward pass.
"""

from collections.abc import Sequence

import numpy as np
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


def mix_gates_over_groups(
    gates: Sequence[tf.Tensor],
    members: Sequence[Sequence[int]],
    groups: Sequence[tf.Tensor],
) -> list[tf.Tensor]:
    """``[mix_expert_groups(g, [groups[j] for j in m]) for g, m in zip(gates,
    members)]``, every gate in one batched matmul.

    With ``X = concat(groups, axis=1)`` ``(b, E, u)`` (all ``E`` experts) and
    gate ``k``'s weights scattered to the positions of the experts it mixes
    (zero elsewhere) by a constant 0/1 matrix ``S`` ``(sum_k n_k, t E)``,
    ``G = reshape(concat(gates) S, (b, t, E))`` and the mixtures are the rows
    of ``G @ X`` ``(b, t, u)``. A CGC level's task gates each mix their own
    group and the shared one, its shared gate all of them: one matmul, one
    batched matmul and one unstack forward (two batched matmuls and a matmul
    backward) instead of a multiply and a sum per gate and group. In the
    DeepCTR comparison (census PLE, 2 levels of 2 + 2 experts, one core,
    3 pairs) mtrec's PLE went from 1.90x to 1.96x DeepCTR's training
    examples/s and from 1.68x to 1.75x its prediction examples/s
    (``benchmarks/results/deepctr_comparison_db352ba_xeon.json`` and
    ``deepctr_comparison_gate_matrix_xeon.json``). One gate, or
    any number inside :func:`separate_matmuls` (the gate matrix would connect
    every gate to every task's loss, with a zero gradient), is
    :func:`mix_expert_groups` each.

    Args:
      gates: ``t`` gate weights, gate ``k`` ``(b, n_k)``.
      members: for gate ``k``, the indices into ``groups`` of the groups it
        mixes, in the order of its columns; ``n_k`` is the sum of their sizes.
      groups: expert outputs ``(b, m_j, u)``, their sizes ``m_j`` known.

    Returns:
      ``t`` mixtures ``(b, u)``, in the order of ``gates``.

    Example:

    >>> own = tf.reshape(tf.range(4.0), (1, 1, 4))
    >>> shared = tf.reshape(tf.range(4.0, 8.0), (1, 1, 4))
    >>> gates = [tf.constant([[0.5, 0.5]]), tf.constant([[1.0]])]
    >>> mixed = mix_gates_over_groups(gates, [[0, 1], [1]], [own, shared])
    >>> [m.numpy().tolist() for m in mixed]
    [[[2.0, 3.0, 4.0, 5.0]], [[4.0, 5.0, 6.0, 7.0]]]
    """
    sizes = [int(group.shape[1]) for group in groups]
    _check_gate_widths(gates, members, sizes)
    if len(gates) == 1 or matmuls_separate():
        return [
            mix_expert_groups(g, [groups[j] for j in chosen])
            for g, chosen in zip(gates, members, strict=True)
        ]
    experts = tf.concat(list(groups), axis=1) if len(groups) > 1 else groups[0]
    return _mix_joined(gates, members, sizes, experts)


def mix_gates_over_joined(
    gates: Sequence[tf.Tensor],
    members: Sequence[Sequence[int]],
    experts: tf.Tensor,
    sizes: Sequence[int],
) -> list[tf.Tensor]:
    """:func:`mix_gates_over_groups` of groups given joined:
    ``experts = concat(groups, axis=1)`` ``(b, E, u)`` and the groups' sizes
    ``sizes`` (group ``j`` is rows ``sum(sizes[:j]) ..`` of axis 1), as
    ``shared_matmuls.apply_layers(..., joined=...)`` returns them.

    Every gate in one batched matmul, also for one gate; not for use inside
    :func:`separate_matmuls`, where a gate must read only its own groups
    (use :func:`mix_gates_over_groups`).

    Example:

    >>> experts = tf.reshape(tf.range(8.0), (1, 2, 4))
    >>> gates = [tf.constant([[0.5, 0.5]]), tf.constant([[1.0]])]
    >>> mixed = mix_gates_over_joined(gates, [[0, 1], [1]], experts, [1, 1])
    >>> [m.numpy().tolist() for m in mixed]
    [[[2.0, 3.0, 4.0, 5.0]], [[4.0, 5.0, 6.0, 7.0]]]
    """
    if int(experts.shape[1]) != sum(sizes):
        raise ValueError(
            f"`experts` holds {int(experts.shape[1])} experts but the groups' "
            f"sizes add up to {sum(sizes)}. Received: `sizes={list(sizes)}`"
        )
    _check_gate_widths(gates, members, sizes)
    return _mix_joined(gates, members, sizes, experts)


def _mix_joined(gates, members, sizes, experts) -> list[tf.Tensor]:
    """The batched matmul of :func:`mix_gates_over_groups`."""
    scatter = _gate_scatter(sizes, members)
    weights = tf.matmul(
        tf.concat(list(gates), axis=1), tf.constant(scatter, gates[0].dtype)
    )
    weights = tf.reshape(weights, (-1, len(gates), sum(sizes)))
    return tf.unstack(tf.matmul(weights, experts), num=len(gates), axis=1)


def _check_gate_widths(gates, members, sizes) -> None:
    """Raises ``ValueError`` unless there is one ``members`` entry per gate
    and gate ``k`` has one weight per expert of its groups."""
    if len(gates) != len(members):
        raise ValueError(
            "`gates` and `members` must have the same length. Received: "
            f"`len(gates)={len(gates)}`, `len(members)={len(members)}`"
        )
    for k, (gate, chosen) in enumerate(zip(gates, members, strict=True)):
        width = sum(sizes[j] for j in chosen)
        if int(gate.shape[-1]) != width:
            raise ValueError(
                f"Gate {k} mixes groups {list(chosen)} of {width} experts but has "
                f"{int(gate.shape[-1])} weights. Received: `members={members}`, "
                f"group sizes {sizes}"
            )


def _gate_scatter(sizes: Sequence[int], members: Sequence[Sequence[int]]):
    """The 0/1 ``(sum_k n_k, t E)`` matrix taking column ``c`` of gate ``k``
    to the position of its expert in row ``k`` of ``G`` (see
    :func:`mix_gates_over_groups`)."""
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
    total = int(sum(sizes))
    positions = []  # (gate column, flat position in G)
    for k, chosen in enumerate(members):
        for j in chosen:
            positions += [k * total + offsets[j] + e for e in range(sizes[j])]
    scatter = np.zeros((len(positions), len(members) * total), np.float32)
    scatter[np.arange(len(positions)), positions] = 1.0
    return scatter
