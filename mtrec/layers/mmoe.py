"""Multi-gate Mixture-of-Experts (MMoE): shared experts, one gate per task."""

from collections.abc import Sequence

import tensorflow as tf

from mtrec.layers import expert_mix
from mtrec.layers import mixture
from mtrec.layers import shared_matmuls
from mtrec.layers import validation


@tf.keras.utils.register_keras_serializable(package="mtrec")
class MMoE(mixture.MixtureOfExperts):
    """Multi-gate Mixture-of-Experts.

    Experts ``e_i(x) = MLP_i(x)`` for ``i = 1..num_experts`` are shared by all
    tasks; task ``k`` mixes them with its own gate:
    ``g_k(x) = softmax(W_k x)``, ``f_k(x) = sum_i g_k(x)_i * e_i(x)``.
    All experts are one :class:`Experts` layer (one matmul per depth, output
    ``(batch, num_experts, units)``); each task mixes them with a multiply and
    a sum.

    Args:
      task_names: names of the tasks, the keys of the output dict.
      num_experts: number of shared experts. Default ``4``, small enough for CPU
        training; the paper uses up to 8.
      expert_units, gate_units, activation, dropout, l2, kernel_initializer:
        keyword-only, as in :class:`MixtureOfExperts` (one gate per task; a
        seeded initialiser gets a derived seed per expert and gate, so runs
        are reproducible and experts still start different).

    Call arguments:
      inputs: float tensor ``(batch, input_dim)``.
      training: Python bool, whether dropout is active.
      return_gates: if ``True``, also return the gate weights.

    Returns:
      Dict ``{task: (batch, expert_units[-1])}``; with ``return_gates=True`` a
      pair ``(outputs, gates)`` where ``gates`` is
      ``{task: (batch, num_experts)}`` of softmax weights.

    Sublayers: ``experts`` (an :class:`Experts`) and ``gates``, one
    :class:`Gate` per task named ``gate_{task}``.

    Example:

    >>> mmoe = MMoE(["ctr", "cvr"], num_experts=2, expert_units=[8, 4])
    >>> {k: v.shape for k, v in mmoe(tf.ones((2, 3))).items()}
    {'ctr': TensorShape([2, 4]), 'cvr': TensorShape([2, 4])}

    References:
      Ma et al., "Modeling Task Relationships in Multi-task Learning with
      Multi-gate Mixture-of-Experts", KDD 2018.
    """

    def __init__(self, task_names: Sequence[str], num_experts: int = 4, **kwargs):
        super().__init__(task_names, **kwargs)
        self.num_experts = validation.check_count("num_experts", num_experts, 1)
        self.experts = self.make_experts(self.num_experts, "experts")
        self.gates = [
            self.make_gate(self.num_experts, f"gate_{task}") for task in self.task_names
        ]

    def sublayer_input_shapes(self, input_shape):
        return [(layer, input_shape) for layer in [self.experts, *self.gates]]

    def shared_layer_variables(self) -> list:
        """The variables of the last shared layer (GradNorm's ``W``, Chen et al.,
        ICML 2018): the last kernel of its experts, all experts together: the
        representation every task's gate mixes (the gates are per task).
        """
        return [self.experts.kernels[-1]]

    def call(self, inputs, training=None, return_gates=False):
        # The experts and linear gates read `inputs`: one matmul for all.
        experts, *task_gates = shared_matmuls.apply_layers(
            [(inputs, self.experts)] + [(inputs, gate) for gate in self.gates],
            training=training,
        )
        gates = dict(zip(self.task_names, task_gates, strict=True))
        mixed = expert_mix.mix_experts_per_gate(task_gates, experts)
        outputs = dict(zip(self.task_names, mixed, strict=True))
        if return_gates:
            return outputs, gates
        return outputs
