"""The base class of the mixture-of-experts layers (OMoE, MMoE, CGC, PLE)."""

from collections.abc import Sequence

import tensorflow as tf

from mtrec.layers import experts as experts_lib
from mtrec.layers import gate as gate_lib
from mtrec.layers import mlp as mlp_lib
from mtrec.layers import validation

# Key of the shared experts' output (CGC, PLE); no task may use it.
SHARED = "shared"


def mix_experts(gates: tf.Tensor, experts: tf.Tensor) -> tf.Tensor:
    """``sum_i gates[b, i] * experts[b, i, :]``: ``(b, n), (b, n, u) -> (b, u)``.

    A multiply and a sum. Forward and backward on one CPU thread it measured
    1.35-1.57x (median) faster than ``tf.einsum("bn,bnu->bu")`` at 8 and 4
    experts; a batched ``matmul`` was as fast at 8 experts but slower at 4
    (``benchmarks/expert_mixing.py``).
    """
    return tf.reduce_sum(gates[:, :, None] * experts, axis=1)


def as_shapes(
    input_shape: tf.TensorShape | tuple | dict, keys: Sequence[str]
) -> dict[str, tf.TensorShape]:
    """Maps each of ``keys`` to its input shape (one shape, or a dict of shapes)."""
    if isinstance(input_shape, dict):
        missing = [k for k in keys if k not in input_shape]
        if missing:
            raise ValueError(
                f"Dict inputs must have the keys {list(keys)}. Missing: {missing}. "
                f"Received keys: {sorted(input_shape)}"
            )
        return {k: tf.TensorShape(input_shape[k]) for k in keys}
    return {k: tf.TensorShape(input_shape) for k in keys}


class MixtureOfExperts(tf.keras.layers.Layer):
    """Base class of the layers that mix MLP experts with softmax gates.

    Owns what :class:`OMoE`, :class:`MMoE`, :class:`CGC` and :class:`PLE`
    share: the task names, the expert and gate arguments and their validation,
    the factories of expert groups (:class:`Experts`, each expert's initialiser
    derived by name) and gates, and the common ``get_config`` entries. A
    subclass calls ``super().__init__`` with these arguments first, then builds
    its experts with :meth:`make_experts` and gates with :meth:`make_gate`, and
    adds its own arguments to ``get_config``. Subclasses whose outputs include
    the shared experts' key set ``reserved_task_names = (SHARED,)``.

    Every gate is its own :class:`Gate` and every group of experts its own
    :class:`Experts`, so a variable belongs to one task's gate or one group:
    the multi-task gradient strategies (PCGrad, GradNorm) tell task-specific
    variables from shared ones by which task losses reach them
    (``MultiTaskRanker.shared_layout``). Fusing all linear gates into one
    matmul (MMoE 1.89x instead of 1.71x faster than per-expert layers), or all
    CGC groups into one ``Experts``, measured faster
    (``benchmarks/expert_mixing.py``) but would make every gate and expert
    variable reached by every task.

    Args:
      task_names: names of the tasks, the keys of the output dict.
      expert_units: hidden sizes of every expert MLP. Default ``(64, 32)``.
      gate_units: hidden sizes of an MLP inside each gate. Default ``()``, the
        paper's linear softmax gate.
      activation: activation of the expert (and gate) hidden layers. Default
        ``"relu"``.
      dropout: dropout rate after each expert layer. Default ``0.0``.
      l2: L2 penalty on all kernels. Default ``0.0``.
      kernel_initializer: initialiser of all kernels; every expert group and
        gate gets a copy derived by its name, and every expert within a group
        one derived from that (seeded runs are reproducible, experts start
        different). Default ``"glorot_uniform"``.
    """

    #: Names no task may take (e.g. ``SHARED`` for CGC and PLE).
    reserved_task_names: tuple[str, ...] = ()

    def __init__(
        self,
        task_names: Sequence[str],
        expert_units: Sequence[int] = (64, 32),
        gate_units: Sequence[int] = (),
        activation: str = "relu",
        dropout: float = 0.0,
        l2: float = 0.0,
        kernel_initializer: str | dict = "glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.task_names = validation.check_task_names(
            task_names, reserved=self.reserved_task_names
        )
        self.expert_units = validation.check_units(
            "expert_units", expert_units, allow_empty=False
        )
        self.gate_units = validation.check_units(
            "gate_units", gate_units, allow_empty=True
        )
        self.activation = tf.keras.activations.get(activation)
        self.dropout = validation.check_rate("dropout", dropout)
        self.l2 = validation.check_non_negative("l2", l2)
        self.kernel_initializer = tf.keras.initializers.get(kernel_initializer)

    def make_experts(self, num_experts: int, name: str) -> experts_lib.Experts:
        """``num_experts`` experts with the layer's settings, salted by ``name``."""
        return experts_lib.Experts(
            num_experts,
            self.expert_units,
            activation=self.activation,
            dropout=self.dropout,
            l2=self.l2,
            kernel_initializer=mlp_lib.derive_initializer(
                self.kernel_initializer, name
            ),
            name=name,
        )

    def make_gate(self, num_experts: int, name: str) -> gate_lib.Gate:
        """One gate over ``num_experts`` with the layer's settings, salted by name."""
        return gate_lib.Gate(
            num_experts,
            units=self.gate_units,
            activation=self.activation,
            l2=self.l2,
            kernel_initializer=mlp_lib.derive_initializer(
                self.kernel_initializer, name
            ),
            name=name,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "task_names": self.task_names,
                "expert_units": self.expert_units,
                "gate_units": self.gate_units,
                "activation": tf.keras.activations.serialize(self.activation),
                "dropout": self.dropout,
                "l2": self.l2,
                "kernel_initializer": tf.keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config
