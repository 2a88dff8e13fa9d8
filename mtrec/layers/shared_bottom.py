"""Shared-Bottom (hard parameter sharing): one network feeds every task."""

from collections.abc import Sequence

import tensorflow as tf

from mtrec.layers import validation
from mtrec.layers.mlp import MLP


@tf.keras.utils.register_keras_serializable(package="mtrec")
class SharedBottom(tf.keras.layers.Layer):
    """Hard parameter sharing: every task reads the same bottom representation.

    ``h = f(x)``, ``h_k = h`` for every task ``k``, where ``f`` is an MLP.

    Args:
      task_names: names of the tasks, the keys of the output dict.
      units: hidden sizes of the shared MLP. Default ``(256, 128)``.
      activation: activation of the MLP. Default ``"relu"``.
      dropout: dropout rate. Default ``0.0``.
      l2: L2 penalty on the kernels. Default ``0.0``.
      batch_norm: batch normalisation in the MLP. Default ``False``.

    Call arguments:
      inputs: float tensor ``(batch, input_dim)``.
      training: Python bool.

    Returns:
      Dict ``{task_name: (batch, units[-1])}``; all values are the same tensor.

    Example:

    >>> bottom = SharedBottom(task_names=["ctr", "cvr"], units=[8])
    >>> {k: v.shape for k, v in bottom(tf.ones((2, 3))).items()}
    {'ctr': TensorShape([2, 8]), 'cvr': TensorShape([2, 8])}

    References:
      Caruana, "Multitask Learning", Machine Learning 28, 1997.
    """

    def __init__(
        self,
        task_names: Sequence[str],
        units: Sequence[int] = (256, 128),
        activation: str = "relu",
        dropout: float = 0.0,
        l2: float = 0.0,
        batch_norm: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        task_names = list(task_names)
        if not task_names:
            raise ValueError(
                f"`task_names` must not be empty. Received: `task_names={task_names}`"
            )
        if len(set(task_names)) != len(task_names):
            raise ValueError(
                f"`task_names` must be unique. Received: `task_names={task_names}`"
            )
        self.task_names = task_names
        self.units = validation.check_units("units", units, allow_empty=True)
        self.activation = activation
        self.dropout = float(dropout)
        self.l2 = float(l2)
        self.batch_norm = batch_norm
        self.bottom = MLP(
            units=self.units,
            activation=activation,
            dropout=dropout,
            l2=l2,
            batch_norm=batch_norm,
            name="bottom",
        )

    def build(self, input_shape):
        self.bottom.build(input_shape)
        super().build(input_shape)

    def call(self, inputs, training=None):
        h = self.bottom(inputs, training=training)
        return {name: h for name in self.task_names}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "task_names": self.task_names,
                "units": self.units,
                "activation": self.activation,
                "dropout": self.dropout,
                "l2": self.l2,
                "batch_norm": self.batch_norm,
            }
        )
        return config
