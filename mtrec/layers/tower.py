"""A task tower: an MLP followed by a one-unit linear output."""

from collections.abc import Sequence

import tensorflow as tf

from mtrec.layers import validation
from mtrec.layers.mlp import MLP


@tf.keras.utils.register_keras_serializable(package="mtrec")
class Tower(tf.keras.layers.Layer):
    """Task-specific head emitting a logit (or a regression value).

    ``z = w^T MLP(h) + b``.

    Args:
      units: hidden sizes of the MLP. Default ``(64,)``.
      activation: hidden activation. Default ``"relu"``.
      dropout: dropout rate. Default 0.
      l2: L2 penalty on the kernels. Default 0.

    Call arguments:
      inputs: ``(batch, d)`` task representation.

    Returns:
      ``(batch, 1)`` logit.

    Example:

    >>> Tower(units=[4])(tf.ones((2, 3))).shape
    TensorShape([2, 1])
    """

    def __init__(
        self,
        units: Sequence[int] = (64,),
        activation: str = "relu",
        dropout: float = 0.0,
        l2: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = validation.check_units("units", units, allow_empty=True)
        self.activation = activation
        self.dropout = float(dropout)
        self.l2 = float(l2)
        self.mlp = MLP(
            self.units, activation=activation, dropout=dropout, l2=l2, name="mlp"
        )
        self.logit = tf.keras.layers.Dense(
            1,
            kernel_regularizer=tf.keras.regularizers.L2(self.l2) if self.l2 else None,
            name="logit",
        )

    def build(self, input_shape):
        self.mlp.build(input_shape)
        self.logit.build(self.mlp.compute_output_shape(input_shape))
        super().build(input_shape)

    def call(self, inputs, training=None):
        return self.logit(self.mlp(inputs, training=training))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "activation": self.activation,
                "dropout": self.dropout,
                "l2": self.l2,
            }
        )
        return config
