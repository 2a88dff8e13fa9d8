"""One-gate Mixture-of-Experts (OMoE): shared experts, one gate for all tasks."""

from collections.abc import Sequence

import tensorflow as tf

from mtrec.layers import expert_mix
from mtrec.layers import mixture
from mtrec.layers import shared_matmuls
from mtrec.layers import validation


@tf.keras.utils.register_keras_serializable(package="mtrec")
class OMoE(mixture.MixtureOfExperts):
    """One-gate Mixture-of-Experts, the single-gate baseline of the MMoE paper.

    Experts ``e_i(x) = MLP_i(x)``, one gate ``g(x) = softmax(W x)`` shared by all
    tasks, ``f(x) = sum_i g(x)_i * e_i(x)``; every task receives the same ``f(x)``.
    Tasks differ only in their towers, so OMoE isolates what MMoE's per-task
    gates add.

    Args:
      task_names: names of the tasks, the keys of the output dict.
      num_experts: number of experts. Default ``4``.
      expert_units, gate_units, activation, dropout, l2, kernel_initializer:
        keyword-only, as in :class:`MixtureOfExperts` (``gate_units`` of the
        single gate).

    Call arguments:
      inputs: float tensor ``(batch, input_dim)``.
      training: Python bool, whether dropout is active.
      return_gates: if ``True``, also return the gate weights.

    Returns:
      Dict ``{task: (batch, expert_units[-1])}`` (all values equal); with
      ``return_gates=True`` a pair ``(outputs, gates)`` where ``gates`` maps every
      task to the single gate's ``(batch, num_experts)`` weights.

    Sublayers: ``experts`` (an :class:`Experts`) and ``gate`` (a :class:`Gate`).

    Example:

    >>> omoe = OMoE(["ctr", "cvr"], num_experts=2, expert_units=[8, 4])
    >>> outputs = omoe(tf.ones((2, 3)))
    >>> outputs["ctr"].shape, outputs["ctr"] is outputs["cvr"]
    (TensorShape([2, 4]), True)

    References:
      Ma et al., "Modeling Task Relationships in Multi-task Learning with
      Multi-gate Mixture-of-Experts", KDD 2018 (the OMoE baseline).
    """

    def __init__(self, task_names: Sequence[str], num_experts: int = 4, **kwargs):
        super().__init__(task_names, **kwargs)
        self.num_experts = validation.check_count("num_experts", num_experts, 1)
        self.experts = self.make_experts(self.num_experts, "experts")
        self.gate = self.make_gate(self.num_experts, "gate")

    def sublayer_input_shapes(self, input_shape):
        return [(self.experts, input_shape), (self.gate, input_shape)]

    def shared_layer_variables(self) -> list:
        """The variables of the last shared layer (GradNorm's ``W``, Chen et al.,
        ICML 2018): the last kernel of its experts, all experts together (its
        one gate only weighs them).
        """
        return [self.experts.kernels[-1]]

    def call(self, inputs, training=None, return_gates=False):
        experts, gate = shared_matmuls.apply_layers(
            [(inputs, self.experts), (inputs, self.gate)], training=training
        )
        mixed = expert_mix.mix_experts(gate, experts)
        outputs = {task: mixed for task in self.task_names}
        if return_gates:
            return outputs, {task: gate for task in self.task_names}
        return outputs
