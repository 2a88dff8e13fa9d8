"""A softmax gate: per-example mixture weights over experts."""

from collections.abc import Sequence

import tensorflow as tf

from mtrec.layers import arguments
from mtrec.layers import mlp as mlp_lib
from mtrec.layers import validation
from mtrec.layers.gate_softmax import gate_softmax


@tf.keras.utils.register_keras_serializable(package="mtrec")
class Gate(tf.keras.layers.Layer):
    """Softmax gate producing per-example weights over ``num_experts`` experts.

    ``g(x) = softmax(W MLP(x) + b)``; with ``units=()`` (the default) the MLP is
    the identity and the gate is the linear softmax gate of MMoE,
    ``g(x) = softmax(W x + b)``. Every row of the output is >= 0 and sums to 1.
    The softmax is :func:`gate_softmax` (element-wise ops, cheaper than the
    fused kernel on a few experts).

    Args:
      num_experts: number of experts mixed, the output size. Must be >= 1.
      units: hidden sizes of an optional MLP before the softmax layer. Default
        ``()``, the paper's linear gate.
      activation: activation of the hidden layers. Default ``"relu"``.
      l2: L2 penalty on the kernels. Default ``0.0``.
      kernel_initializer: initialiser of the kernels; each dense layer gets its
        own copy (seeded initialisers get derived seeds). Default
        ``"glorot_uniform"``.

    Call arguments:
      inputs: float tensor ``(batch, input_dim)``.
      training: Python bool; unused (no dropout), accepted for uniformity.

    Returns:
      Float tensor ``(batch, num_experts)`` of softmax weights.

    Example:

    >>> gate = Gate(num_experts=3)
    >>> gate(tf.ones((2, 4))).shape
    TensorShape([2, 3])

    References:
      Ma et al., "Modeling Task Relationships in Multi-task Learning with
      Multi-gate Mixture-of-Experts", KDD 2018.
    """

    def __init__(
        self,
        num_experts: int,
        units: Sequence[int] = (),
        activation: str = "relu",
        l2: float = 0.0,
        kernel_initializer: str | dict = "glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_experts = validation.check_count("num_experts", num_experts, 1)
        self.units = validation.check_units("units", units, allow_empty=True)
        self.activation = validation.check_activation("activation", activation)
        self.l2 = validation.check_non_negative("l2", l2)
        self.kernel_initializer = validation.check_initializer(
            "kernel_initializer", kernel_initializer
        )
        self.mlp = mlp_lib.MLP(
            self.units,
            activation=self.activation,
            l2=self.l2,
            kernel_initializer=mlp_lib.derive_initializer(
                self.kernel_initializer, "mlp"
            ),
            name="mlp",
        )
        self.logits = mlp_lib.linear_head(
            self.num_experts, self.kernel_initializer, name="logits", l2=self.l2
        )

    def build(self, input_shape):
        hidden = mlp_lib.build_in_scope(self.mlp, input_shape)
        mlp_lib.build_in_scope(self.logits, hidden)
        super().build(input_shape)

    def call(self, inputs, training=None):
        return gate_softmax(self.logits(self.mlp(inputs, training=training)))

    @property
    def first_linear(self) -> tuple[tf.Variable, tf.Variable] | None:
        """``(W, b)`` of a linear gate (``units=()``), else ``None``.

        A linear gate is ``softmax(x W + b)``; a layer that runs several
        gates or experts reading the same ``x`` may compute ``x W + b`` with
        theirs in one matmul and finish with :meth:`from_first_linear`.
        """
        if self.units:
            return None
        return self.logits.kernel, self.logits.bias

    def from_first_linear(self, pre_activation, training=None):
        """``softmax(pre_activation)``: a linear gate's output from ``x W + b``."""
        del training  # a linear gate has no dropout
        return gate_softmax(pre_activation)

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape)[:-1].concatenate([self.num_experts])

    def get_config(self):
        return {**super().get_config(), **arguments.constructor_config(self)}
