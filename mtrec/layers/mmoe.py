"""Multi-gate Mixture-of-Experts (MMoE): shared experts, one gate per task."""

from collections.abc import Sequence

import tensorflow as tf

from mtrec.layers import gate as gate_lib


@tf.keras.utils.register_keras_serializable(package="mtrec")
class MMoE(tf.keras.layers.Layer):
    """Multi-gate Mixture-of-Experts.

    Experts ``e_i(x) = MLP_i(x)`` for ``i = 1..num_experts`` are shared by all
    tasks; task ``k`` mixes them with its own gate:
    ``g_k(x) = softmax(W_k x)``, ``f_k(x) = sum_i g_k(x)_i * e_i(x)``.
    Each expert is computed once; the experts are stacked to
    ``(batch, num_experts, units)`` and mixed with one ``einsum`` per task.

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
        super().__init__(**kwargs)
        self.task_names = gate_lib.check_task_names(task_names)
        self.num_experts = gate_lib.check_count("num_experts", num_experts, 1)
        gate_lib.set_expert_args(
            self, expert_units, gate_units, activation, dropout, l2, kernel_initializer
        )
        self.experts = [
            gate_lib.make_expert(self, f"expert_{i}") for i in range(self.num_experts)
        ]
        self.gates = [
            gate_lib.make_gate(self, self.num_experts, f"gate_{task}")
            for task in self.task_names
        ]

    def build(self, input_shape):
        for layer in [*self.experts, *self.gates]:
            with tf.name_scope(layer.name):
                layer.build(input_shape)
        super().build(input_shape)

    def call(self, inputs, training=None, return_gates=False):
        experts = tf.stack(
            [expert(inputs, training=training) for expert in self.experts], axis=1
        )
        outputs, gates = {}, {}
        for task, gate in zip(self.task_names, self.gates):
            gates[task] = gate(inputs, training=training)
            outputs[task] = gate_lib.mix_experts(gates[task], experts)
        if return_gates:
            return outputs, gates
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "task_names": self.task_names,
                "num_experts": self.num_experts,
                **gate_lib.expert_args_config(self),
            }
        )
        return config
