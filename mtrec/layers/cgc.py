"""Customized Gate Control (CGC): task-specific and shared experts."""

from collections.abc import Sequence

import tensorflow as tf

from mtrec.layers import mixture
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

    Sublayers: ``experts``, one :class:`Experts` holding every expert in the
    shared gate's order (task ``task_names[k]``'s experts at indices
    ``k * num_task_experts ..``, then the shared ones; see
    :meth:`expert_indices`): one matmul per depth for all of them, which
    measured faster than one :class:`Experts` per group. With dict inputs each
    group's slice of the first kernel reads its own input. ``task_gates``: a
    list holding one :class:`Experts` named ``task_gates`` of linear gates or,
    with ``gate_units``, one :class:`Gate` per task named ``gate_{task}``;
    ``shared_gate``: a :class:`Gate` named ``gate_shared`` or ``None``.

    Example:

    >>> cgc = CGC(["ctr", "cvr"], num_shared_experts=2, expert_units=[8, 4])
    >>> {k: v.shape for k, v in cgc(tf.ones((2, 3))).items()}
    {'ctr': TensorShape([2, 4]), 'cvr': TensorShape([2, 4])}

    References:
      Tang et al., "Progressive Layered Extraction (PLE): A Novel Multi-Task
      Learning (MTL) Model for Personalized Recommendations", RecSys 2020.
    """

    reserved_task_names = (mixture.SHARED,)

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
        self.num_shared_experts = validation.check_count(
            "num_shared_experts", num_shared_experts, 0
        )
        self.num_task_experts = validation.check_count(
            "num_task_experts", num_task_experts, 0
        )
        if self.num_shared_experts + self.num_task_experts < 1:
            raise ValueError(
                "`num_shared_experts + num_task_experts` must be >= 1. Received: "
                f"`num_shared_experts={num_shared_experts}`, "
                f"`num_task_experts={num_task_experts}`"
            )
        self.return_shared = bool(return_shared)
        num_experts = (
            len(self.task_names) * self.num_task_experts + self.num_shared_experts
        )
        self.experts = self.make_experts(num_experts, "experts")
        self.task_gates = self.make_gates(
            self.task_names,
            self.num_task_experts + self.num_shared_experts,
            "task_gates",
        )
        self.shared_gate = (
            self.make_gate(num_experts, f"gate_{mixture.SHARED}")
            if self.return_shared
            else None
        )

    def expert_indices(self, task: str) -> list[int]:
        """Indices in ``experts`` of the experts owned by ``task`` (or shared)."""
        n, k = self.num_task_experts, len(self.task_names)
        if task == mixture.SHARED:
            return list(range(k * n, k * n + self.num_shared_experts))
        i = self.task_names.index(task)
        return list(range(i * n, (i + 1) * n))

    def _expert_inputs(self, inputs: dict) -> list:
        """The input of each expert, in ``experts`` order."""
        return [
            inputs[key]
            for key in [*self.task_names, mixture.SHARED]
            for _ in self.expert_indices(key)
        ]

    def build(self, input_shape):
        keys = [*self.task_names, mixture.SHARED]
        shapes = mixture.as_shapes(input_shape, keys)
        with tf.name_scope(self.experts.name):
            self.experts.build(shapes[mixture.SHARED])
        for gate, task in zip(self.task_gates, self.task_names):
            with tf.name_scope(gate.name):
                gate.build(shapes[task])
        if self.shared_gate is not None:
            with tf.name_scope(self.shared_gate.name):
                self.shared_gate.build(shapes[mixture.SHARED])
        super().build(input_shape)

    def call(self, inputs, training=None, return_gates=False):
        shared_key = mixture.SHARED
        keys = [*self.task_names, shared_key]
        if isinstance(inputs, dict):
            inputs = {key: inputs[key] for key in keys}
            experts = self.experts(self._expert_inputs(inputs), training=training)
        else:
            experts = self.experts(inputs, training=training)
            inputs = {key: inputs for key in keys}
        # Every expert runs once; task k mixes its own experts and the shared
        # ones, contiguous slices of `experts`.
        k_n = len(self.task_names) * self.num_task_experts
        shared = experts[:, k_n:]
        weights = self.gate_weights(
            self.task_gates, [inputs[t] for t in self.task_names], training=training
        )
        outputs, gates = {}, {}
        for i, (task, gate) in enumerate(zip(self.task_names, weights)):
            start = i * self.num_task_experts
            own = experts[:, start : start + self.num_task_experts]
            if not self.num_task_experts:
                group = shared
            elif not self.num_shared_experts:
                group = own
            else:
                group = tf.concat([own, shared], axis=1)
            gates[task] = gate
            outputs[task] = mixture.mix_experts(gate, group)
        if self.shared_gate is not None:
            gates[shared_key] = self.shared_gate(inputs[shared_key], training=training)
            outputs[shared_key] = mixture.mix_experts(gates[shared_key], experts)
        if return_gates:
            return outputs, gates
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_shared_experts": self.num_shared_experts,
                "num_task_experts": self.num_task_experts,
                "return_shared": self.return_shared,
            }
        )
        return config
