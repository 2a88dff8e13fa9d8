"""Customized Gate Control (CGC): task-specific and shared experts."""

from collections.abc import Sequence

import tensorflow as tf

from mtrec.layers import gate as gate_lib
from mtrec.layers import mlp as mlp_lib


@tf.keras.utils.register_keras_serializable(package="mtrec")
class CGC(tf.keras.layers.Layer):
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
      expert_units: hidden sizes of every expert MLP. Default ``(64, 32)``.
      gate_units: hidden sizes of an MLP inside each gate. Default ``()``, the
        paper's linear softmax gate.
      activation: activation of the expert (and gate) hidden layers. Default
        ``"relu"``.
      dropout: dropout rate after each expert layer. Default ``0.0``.
      l2: L2 penalty on all kernels. Default ``0.0``.
      kernel_initializer: initialiser of all kernels; every expert and gate gets
        its own copy (seeded initialisers get derived seeds). Default
        ``"glorot_uniform"``.
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

    Example:

    >>> cgc = CGC(["ctr", "cvr"], num_shared_experts=2, expert_units=[8, 4])
    >>> {k: v.shape for k, v in cgc(tf.ones((2, 3))).items()}
    {'ctr': TensorShape([2, 4]), 'cvr': TensorShape([2, 4])}

    References:
      Tang et al., "Progressive Layered Extraction (PLE): A Novel Multi-Task
      Learning (MTL) Model for Personalized Recommendations", RecSys 2020.
    """

    def __init__(
        self,
        task_names: Sequence[str],
        num_shared_experts: int = 1,
        num_task_experts: int = 1,
        expert_units: Sequence[int] = (64, 32),
        gate_units: Sequence[int] = (),
        activation: str = "relu",
        dropout: float = 0.0,
        l2: float = 0.0,
        kernel_initializer: str | dict = "glorot_uniform",
        return_shared: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.task_names = gate_lib.check_task_names(
            task_names, reserved=(gate_lib.SHARED,)
        )
        self.num_shared_experts = gate_lib.check_count(
            "num_shared_experts", num_shared_experts, 0
        )
        self.num_task_experts = gate_lib.check_count(
            "num_task_experts", num_task_experts, 0
        )
        if self.num_shared_experts + self.num_task_experts < 1:
            raise ValueError(
                "`num_shared_experts + num_task_experts` must be >= 1. Received: "
                f"`num_shared_experts={num_shared_experts}`, "
                f"`num_task_experts={num_task_experts}`"
            )
        gate_lib.set_expert_args(
            self, expert_units, gate_units, activation, dropout, l2, kernel_initializer
        )
        self.return_shared = bool(return_shared)

        # Flat lists (not nested) so that the `.keras` format saves every expert.
        self.task_experts = [
            gate_lib.make_expert(self, f"{task}_expert_{i}")
            for task in self.task_names
            for i in range(self.num_task_experts)
        ]
        self.shared_experts = [
            gate_lib.make_expert(self, f"shared_expert_{i}")
            for i in range(self.num_shared_experts)
        ]
        self.task_gates = [
            gate_lib.make_gate(
                self, self.num_task_experts + self.num_shared_experts, f"gate_{task}"
            )
            for task in self.task_names
        ]
        self.shared_gate = (
            gate_lib.make_gate(
                self,
                len(self.task_experts) + len(self.shared_experts),
                f"gate_{gate_lib.SHARED}",
            )
            if self.return_shared
            else None
        )

    def experts_of(self, task: str) -> list[mlp_lib.MLP]:
        """The experts owned by ``task`` (``"shared"``: the shared experts)."""
        if task == gate_lib.SHARED:
            return list(self.shared_experts)
        k = self.task_names.index(task)
        n = self.num_task_experts
        return list(self.task_experts[k * n : (k + 1) * n])

    def _with_input(self):
        """Yields ``(input_key, sublayer)`` for every sublayer."""
        for k, task in enumerate(self.task_names):
            for expert in self.experts_of(task):
                yield task, expert
            yield task, self.task_gates[k]
        for expert in self.shared_experts:
            yield gate_lib.SHARED, expert
        if self.shared_gate is not None:
            yield gate_lib.SHARED, self.shared_gate

    def build(self, input_shape):
        shapes = gate_lib.as_shapes(input_shape, [*self.task_names, gate_lib.SHARED])
        for key, layer in self._with_input():
            with tf.name_scope(layer.name):
                layer.build(shapes[key])
        super().build(input_shape)

    def call(self, inputs, training=None, return_gates=False):
        shared_key = gate_lib.SHARED
        keys = [*self.task_names, shared_key]
        if isinstance(inputs, dict):
            inputs = {key: inputs[key] for key in keys}
        else:
            inputs = {key: inputs for key in keys}
        # Each expert runs once; the gates below stack subsets of these outputs.
        shared = [e(inputs[shared_key], training=training) for e in self.shared_experts]
        own = {
            task: [e(inputs[task], training=training) for e in self.experts_of(task)]
            for task in self.task_names
        }
        outputs, gates = {}, {}
        for task, gate in zip(self.task_names, self.task_gates):
            experts = tf.stack(own[task] + shared, axis=1)
            gates[task] = gate(inputs[task], training=training)
            outputs[task] = gate_lib.mix_experts(gates[task], experts)
        if self.shared_gate is not None:
            everyone = [h for task in self.task_names for h in own[task]] + shared
            gates[shared_key] = self.shared_gate(inputs[shared_key], training=training)
            outputs[shared_key] = gate_lib.mix_experts(
                gates[shared_key], tf.stack(everyone, axis=1)
            )
        if return_gates:
            return outputs, gates
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "task_names": self.task_names,
                "num_shared_experts": self.num_shared_experts,
                "num_task_experts": self.num_task_experts,
                **gate_lib.expert_args_config(self),
                "return_shared": self.return_shared,
            }
        )
        return config
