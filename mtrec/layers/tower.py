"""A task tower: an MLP followed by a one-unit linear output."""

from collections.abc import Sequence

import tensorflow as tf

from mtrec.layers import arguments
from mtrec.layers import mlp as mlp_lib
from mtrec.layers import validation


@tf.keras.utils.register_keras_serializable(package="mtrec")
class Tower(tf.keras.layers.Layer):
    """Task-specific head emitting a logit (or a regression value).

    ``z = w^T MLP(h) + b``, with ``MLP`` the hidden layers
    ``h_l = dropout(act(W_l h_{l-1} + b_l))``. Towers emit logits; the
    probability ``sigmoid(z)`` appears only in a model's outputs.

    Args:
      units: hidden sizes of the MLP, positive ints. Default ``(64,)``; empty
        makes the tower the linear map ``w^T h + b``.
      activation: activation of the hidden layers. Default ``"relu"``.
      dropout: dropout rate after each hidden layer, in ``[0, 1)``. Default
        ``0.0``.
      l2: L2 penalty on every kernel, the logit's included. Default ``0.0``.
      kernel_initializer: initialiser of the kernels; the MLP and the logit
        each get a copy derived by their names (see ``derive_initializer``).
        Default ``"glorot_uniform"``.

    Call arguments:
      inputs: float tensor ``(batch, d)``, the task's representation.
      training: Python bool, whether dropout is active.

    Returns:
      Float tensor ``(batch, 1)``, the logit.

    Sublayers: ``mlp`` (an :class:`MLP`) and ``logit`` (a one-unit ``Dense``).

    Example:

    >>> tower = Tower(units=[4])
    >>> tower.build((None, 3))
    >>> [w.name for w in tower.weights]
    ['mlp/kernel:0', 'mlp/bias:0', 'logit/kernel:0', 'logit/bias:0']
    >>> tower(tf.ones((2, 3))).shape
    TensorShape([2, 1])

    References:
      Caruana, "Multitask Learning", Machine Learning 28, 1997 (task-specific
      heads over a shared representation).
    """

    def __init__(
        self,
        units: Sequence[int] = (64,),
        activation: str = "relu",
        dropout: float = 0.0,
        l2: float = 0.0,
        kernel_initializer: str | dict = "glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = validation.check_units("units", units, allow_empty=True)
        self.activation = validation.check_activation("activation", activation)
        self.dropout = validation.check_rate("dropout", dropout)
        self.l2 = validation.check_non_negative("l2", l2)
        self.kernel_initializer = validation.check_initializer(
            "kernel_initializer", kernel_initializer
        )
        self.mlp = mlp_lib.MLP(
            self.units,
            activation=self.activation,
            dropout=self.dropout,
            l2=self.l2,
            kernel_initializer=mlp_lib.derive_initializer(
                self.kernel_initializer, "mlp"
            ),
            name="mlp",
        )
        self.logit = mlp_lib.linear_head(
            1, self.kernel_initializer, name="logit", l2=self.l2
        )

    def build(self, input_shape):
        hidden = mlp_lib.build_in_scope(self.mlp, input_shape)
        mlp_lib.build_in_scope(self.logit, hidden)
        super().build(input_shape)

    def call(self, inputs, training=None):
        return self._logit_of(self.mlp(inputs, training=training))

    def _logit_of(self, hidden):
        """The ``logit`` sublayer's ``hidden W + b`` as a multiply and a row
        sum (``mlp.one_unit_linear``; faster than its one-column matmul)."""
        return mlp_lib.one_unit_linear(hidden, self.logit.kernel, self.logit.bias)

    @property
    def first_linear(self) -> tuple[tf.Variable, tf.Variable]:
        """``(W, b)`` of the tower's first linear map: the MLP's first dense
        layer, or the logit's when ``units`` is empty.

        The tower is ``from_first_linear(x W + b)``: towers reading the same
        ``x`` (ESMM, shared-bottom, OMoE) compute ``x W + b`` in one matmul
        (:func:`apply_layers`).
        """
        if self.units:
            return self.mlp.first_linear
        return self.logit.kernel, self.logit.bias

    def from_first_linear(self, pre_activation, training=None):
        """The logit from the first linear map's ``x W + b``, ``(batch, 1)``."""
        if not self.units:
            return pre_activation
        return self._logit_of(self.mlp.from_first_linear(pre_activation, training))

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape)[:-1].concatenate([1])

    def get_config(self):
        return {**super().get_config(), **arguments.constructor_config(self)}
