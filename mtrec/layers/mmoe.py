"""Multi-gate Mixture-of-Experts (MMoE): shared experts, one gate per task."""

from collections.abc import Sequence

import tensorflow as tf

from mtrec.layers import mixture
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
      expert_units: hidden sizes of every expert MLP. Default ``(64, 32)``.
      gate_units: hidden sizes of an MLP inside each gate. Default ``()``, the
        paper's linear softmax gate.
      activation: activation of the expert (and gate) hidden layers. Default
        ``"relu"``.
      dropout: dropout rate after each expert layer. Default ``0.0``.
      l2: L2 penalty on all kernels. Default ``0.0``.
      kernel_initializer: initialiser of all kernels. Each expert and gate gets
        its own copy; a seeded initialiser gets a derived seed per sublayer, so
        runs are reproducible and experts still start different. Default
        ``"glorot_uniform"``.

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

    def __init__(
        self,
        task_names: Sequence[str],
        num_experts: int = 4,
        expert_units: Sequence[int] = (64, 32),
        gate_units: Sequence[int] = (),
        activation: str = "relu",
        dropout: float = 0.0,
        l2: float = 0.0,
        kernel_initializer: str | dict = "glorot_uniform",
        **kwargs,
    ):
        super().__init__(
            task_names,
            expert_units=expert_units,
            gate_units=gate_units,
            activation=activation,
            dropout=dropout,
            l2=l2,
            kernel_initializer=kernel_initializer,
            **kwargs,
        )
        self.num_experts = validation.check_count("num_experts", num_experts, 1)
        self.experts = self.make_experts(self.num_experts, "experts")
        self.gates = [
            self.make_gate(self.num_experts, f"gate_{task}") for task in self.task_names
        ]

    def build(self, input_shape):
        for layer in [self.experts, *self.gates]:
            with tf.name_scope(layer.name):
                layer.build(input_shape)
        super().build(input_shape)

    def call(self, inputs, training=None, return_gates=False):
        # The experts and linear gates read `inputs`: one matmul for all.
        experts, *task_gates = mixture.apply_layers(
            [(inputs, self.experts)] + [(inputs, gate) for gate in self.gates],
            training=training,
        )
        gates = dict(zip(self.task_names, task_gates, strict=True))
        mixed = mixture.mix_experts_per_gate(task_gates, experts)
        outputs = dict(zip(self.task_names, mixed, strict=True))
        if return_gates:
            return outputs, gates
        return outputs

    def get_config(self):
        config = super().get_config()
        config["num_experts"] = self.num_experts
        return config
