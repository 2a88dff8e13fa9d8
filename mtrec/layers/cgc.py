"""Customized Gate Control (CGC): task-specific and shared experts."""

from collections.abc import Sequence

import tensorflow as tf

from mtrec.layers import expert_mix
from mtrec.layers import mixture
from mtrec.layers import shared_matmuls
from mtrec.layers import validation


@tf.keras.utils.register_keras_serializable(package="mtrec")
class CGC(mixture.MixtureOfExperts):
    """Customized Gate Control, the single-level extraction network of PLE.

    Task ``k`` owns experts ``E_k = [e_{k,1} .. e_{k,m_k}]``; all tasks share
    ``E_s = [e_{s,1} .. e_{s,m_s}]``. Task ``k``'s gate mixes only its own and the
    shared experts: ``S_k(x) = [E_k(x_k), E_s(x_s)]``,
    ``g_k(x) = softmax(W_k x_k)``, ``f_k(x) = g_k(x)^T S_k(x)``. So task ``k``'s
    output never depends on another task's experts. With ``return_shared=True``
    a shared gate mixes every expert, ``S_s = [E_1, .., E_K, E_s]``,
    ``f_s(x) = softmax(W_s x_s)^T S_s(x)``, which PLE feeds to its next level.

    Args:
      task_names: names of the tasks, the keys of the output dict; ``"shared"``
        is reserved.
      num_shared_experts: ``m_s``, experts shared by all tasks. Default ``1``.
      num_task_experts: ``m_k``, experts owned by each task. Default ``1``.
        ``num_shared_experts + num_task_experts`` must be >= 1.
      expert_units, gate_units, activation, dropout, l2, kernel_initializer:
        keyword-only, as in :class:`MixtureOfExperts`.
      return_shared: also compute the shared gate and output ``"shared"``, as
        the non-final levels of PLE do. Default ``False``.

    Call arguments:
      inputs: float tensor ``(batch, input_dim)`` read by every expert and gate,
        or a dict ``{task: (batch, d), "shared": (batch, d)}`` (the outputs of a
        previous level): task ``k``'s experts and gate read ``inputs[k]``, the
        shared experts and shared gate read ``inputs["shared"]``.
      training: Python bool, whether dropout is active.
      return_gates: if ``True``, also return the gate weights.

    Returns:
      Dict ``{task: (batch, expert_units[-1])}``, plus ``"shared"`` if
      ``return_shared``. With ``return_gates=True`` a pair ``(outputs, gates)``
      with ``gates[task]`` of shape ``(batch, num_task_experts +
      num_shared_experts)`` (task experts first, then shared experts) and, if
      ``return_shared``, ``gates["shared"]`` of shape
      ``(batch, len(task_names) * num_task_experts + num_shared_experts)``
      (experts of each task in ``task_names`` order, then shared experts).

    Sublayers: ``task_experts``, one :class:`Experts` per task named
    ``{task}_experts`` (empty if ``num_task_experts=0``); ``shared_experts``, an
    :class:`Experts` named ``shared_experts`` (``None`` if
    ``num_shared_experts=0``); ``task_gates``, one :class:`Gate` per task named
    ``gate_{task}``; ``shared_gate``, a :class:`Gate` named ``gate_shared`` or
    ``None``. Each group computes its experts in one matmul per depth.

    Example:

    >>> cgc = CGC(["ctr", "cvr"], num_shared_experts=2, return_shared=True,
    ...           expert_units=[8, 4])
    >>> outputs, gates = cgc(tf.ones((2, 3)), return_gates=True)
    >>> {k: tuple(v.shape) for k, v in outputs.items()}
    {'ctr': (2, 4), 'cvr': (2, 4), 'shared': (2, 4)}
    >>> {k: g.shape[-1] for k, g in gates.items()}  # own + shared, all experts
    {'ctr': 3, 'cvr': 3, 'shared': 4}

    References:
      Tang et al., "Progressive Layered Extraction (PLE): A Novel Multi-Task
      Learning (MTL) Model for Personalized Recommendations", RecSys 2020,
      section 4.1 (CGC).
    """

    reserved_task_names = (mixture.SHARED,)

    def __init__(
        self,
        task_names: Sequence[str],
        num_shared_experts: int = 1,
        num_task_experts: int = 1,
        *,
        return_shared: bool = False,
        **kwargs,
    ):
        super().__init__(task_names, **kwargs)
        self.num_shared_experts, self.num_task_experts = check_expert_counts(
            num_shared_experts, num_task_experts
        )
        self.return_shared = validation.check_bool("return_shared", return_shared)
        self.task_experts = (
            [
                self.make_experts(self.num_task_experts, f"{t}_experts")
                for t in self.task_names
            ]
            if self.num_task_experts
            else []
        )
        self.shared_experts = (
            self.make_experts(self.num_shared_experts, f"{mixture.SHARED}_experts")
            if self.num_shared_experts
            else None
        )
        self.task_gates = [
            self.make_gate(
                self.num_task_experts + self.num_shared_experts, f"gate_{task}"
            )
            for task in self.task_names
        ]
        self.shared_gate = (
            self.make_gate(
                len(self.task_names) * self.num_task_experts + self.num_shared_experts,
                f"gate_{mixture.SHARED}",
            )
            if self.return_shared
            else None
        )

    def experts_of(self, task: str):
        """The :class:`Experts` of ``task`` (``"shared"``: the shared experts).

        ``None`` if that group has no experts.
        """
        if task == mixture.SHARED:
            return self.shared_experts
        if not self.task_experts:
            return None
        return self.task_experts[self.task_names.index(task)]

    def sublayer_input_shapes(self, input_shape):
        keys = [*self.task_names, mixture.SHARED]
        shapes = mixture.as_shapes(input_shape, keys)
        layers = [(t, self.experts_of(t)) for t in keys]
        layers += list(zip(self.task_names, self.task_gates))
        layers.append((mixture.SHARED, self.shared_gate))
        return [(layer, shapes[key]) for key, layer in layers if layer is not None]

    def shared_layer_variables(self) -> list:
        """The variables of the last shared layer (GradNorm's ``W``, Chen et al.,
        ICML 2018): the last kernel of its shared experts (task experts and
        gates belong to one task each); empty without shared experts.
        """
        return [] if self.shared_experts is None else [self.shared_experts.kernels[-1]]

    def call(self, inputs, training=None, return_gates=False):
        shared_key = mixture.SHARED
        keys = [*self.task_names, shared_key]
        if isinstance(inputs, dict):
            inputs = {key: inputs[key] for key in keys}
        else:
            inputs = {key: inputs for key in keys}
        # Each group runs once, (batch, m, units); a gate mixes its groups.
        # Groups and linear gates reading the same input share one matmul.
        group_keys = [key for key in keys if self.experts_of(key) is not None]
        gate_calls = [(inputs[t], g) for t, g in zip(self.task_names, self.task_gates)]
        if self.shared_gate is not None:
            gate_calls.append((inputs[shared_key], self.shared_gate))
        # Outside `separate_matmuls` with several gates, every gate mixes
        # from one batched matmul over all groups: they come joined, in
        # group_keys order (from one activation where they read one input).
        joined = (
            len(group_keys)
            if len(gate_calls) > 1 and not shared_matmuls.matmuls_separate()
            else 0
        )
        results = shared_matmuls.apply_layers(
            [(inputs[key], self.experts_of(key)) for key in group_keys] + gate_calls,
            training=training,
            joined=joined,
        )
        gate_keys = [*self.task_names, shared_key][: len(gate_calls)]
        gates = dict(zip(gate_keys, results[-len(gate_calls) :], strict=True))
        order = group_keys
        members = self._gate_members(order)
        gate_weights = [gates[key] for key in gate_keys]
        if joined:
            sizes = [self.experts_of(key).num_experts for key in order]
            mixed = expert_mix.mix_gates_over_joined(
                gate_weights, members, results[0], sizes
            )
        else:
            mixed = expert_mix.mix_gates_over_groups(
                gate_weights, members, results[: len(group_keys)]
            )
        outputs = dict(zip(gate_keys, mixed, strict=True))
        if return_gates:
            return outputs, gates
        return outputs

    def _gate_members(self, order: list[str]) -> list[list[int]]:
        """For each gate (the tasks', then the shared one if any), the indices
        into ``order`` (the keys of the groups that exist) of the groups it
        mixes, in the order of its weights: a task gate its own group, then
        the shared one; the shared gate every group, in key order."""
        shared_key = mixture.SHARED
        shared = [order.index(shared_key)] if shared_key in order else []
        members = [
            ([order.index(task)] if task in order else []) + shared
            for task in self.task_names
        ]
        if self.shared_gate is not None:
            members.append(list(range(len(order))))
        return members


def check_expert_counts(
    num_shared_experts: int, num_task_experts: int
) -> tuple[int, int]:
    """Validated ``(num_shared_experts, num_task_experts)``: each >= 0, sum >= 1."""
    shared = validation.check_count("num_shared_experts", num_shared_experts, 0)
    task = validation.check_count("num_task_experts", num_task_experts, 0)
    if shared + task < 1:
        raise ValueError(
            "`num_shared_experts + num_task_experts` must be >= 1. Received: "
            f"`num_shared_experts={num_shared_experts}`, "
            f"`num_task_experts={num_task_experts}`"
        )
    return shared, task
