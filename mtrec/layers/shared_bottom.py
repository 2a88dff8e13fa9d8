"""Shared-Bottom (hard parameter sharing): one network feeds every task."""

from collections.abc import Sequence

import tensorflow as tf

from mtrec.layers import arguments
from mtrec.layers import mlp as mlp_lib
from mtrec.layers import validation


@tf.keras.utils.register_keras_serializable(package="mtrec")
class SharedBottom(tf.keras.layers.Layer):
    """Hard parameter sharing: every task reads the same bottom representation.

    ``h = f(x)``, ``h_k = h`` for every task ``k``, where ``f`` is an MLP,
    ``h_l = dropout(act(W_l h_{l-1} + b_l))``. It is MMoE with one expert
    (whose gate is always 1).

    Args:
      task_names: names of the tasks, the keys of the output dict.
      units: hidden sizes of the shared MLP, positive ints. Default
        ``(256, 128)``; empty makes the bottom the identity.
      activation: activation of the MLP. Default ``"relu"``.
      dropout: dropout rate after each layer, in ``[0, 1)``. Default ``0.0``.
      l2: L2 penalty on the kernels. Default ``0.0``.
      batch_norm: batch normalisation before each activation. Default
        ``False``.
      kernel_initializer: initialiser of the kernels; the bottom MLP gets a
        copy derived by its name and each of its layers one derived from that
        (see ``derive_initializer``). Default ``"glorot_uniform"``.

    Call arguments:
      inputs: float tensor ``(batch, input_dim)``.
      training: Python bool, whether dropout and batch norm run in training
        mode.

    Returns:
      Dict ``{task_name: (batch, units[-1])}``; all values are the same tensor.

    Sublayers: ``bottom``, an :class:`MLP`.

    Example:

    >>> bottom = SharedBottom(task_names=["ctr", "cvr"], units=[8])
    >>> outputs = bottom(tf.ones((2, 3)))
    >>> outputs["ctr"].shape, outputs["ctr"] is outputs["cvr"]
    (TensorShape([2, 8]), True)

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
        kernel_initializer: str | dict = "glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.task_names = validation.check_task_names(task_names)
        self.units = validation.check_units("units", units, allow_empty=True)
        self.activation = validation.check_activation("activation", activation)
        self.dropout = validation.check_rate("dropout", dropout)
        self.l2 = validation.check_non_negative("l2", l2)
        self.batch_norm = validation.check_bool("batch_norm", batch_norm)
        self.kernel_initializer = validation.check_initializer(
            "kernel_initializer", kernel_initializer
        )
        self.bottom = mlp_lib.MLP(
            units=self.units,
            activation=self.activation,
            dropout=self.dropout,
            l2=self.l2,
            batch_norm=self.batch_norm,
            kernel_initializer=mlp_lib.derive_initializer(
                self.kernel_initializer, "bottom"
            ),
            name="bottom",
        )

    def build(self, input_shape):
        mlp_lib.build_in_scope(self.bottom, input_shape)
        super().build(input_shape)

    def shared_layer_variables(self) -> list:
        """The variables of the last shared layer (GradNorm's ``W``, Chen et al.,
        ICML 2018): the kernel of its last dense layer; empty with no units.
        """
        return [v for v in self.bottom.trainable_variables if v.shape.rank == 2][-1:]

    def call(self, inputs, training=None):
        h = self.bottom(inputs, training=training)
        return {name: h for name in self.task_names}

    def compute_output_shape(self, input_shape):
        shape = self.bottom.compute_output_shape(input_shape)
        return {name: shape for name in self.task_names}

    def get_config(self):
        return {**super().get_config(), **arguments.constructor_config(self)}
