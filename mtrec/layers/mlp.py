"""A stack of dense layers: the building block of experts, bottoms and towers."""

import zlib
from collections.abc import Sequence

import tensorflow as tf

from mtrec.layers import arguments
from mtrec.layers import validation


def derive_initializer(
    initializer: tf.keras.initializers.Initializer, salt: str
) -> tf.keras.initializers.Initializer:
    """Returns a fresh copy of ``initializer`` for the sublayer named by ``salt``.

    tf-keras initialisers return the same values on every call of one instance,
    so each sublayer needs its own copy. An unseeded copy draws a new random seed.
    A seeded copy gets the seed ``crc32(f"{seed}/{salt}")``: runs stay reproducible
    while two experts (or two dense layers) never share a seed. Sharing one would
    make them start equal, and even layers of different shapes would share the
    leading values of the same random stream. Initialisers without a ``seed``
    (``Constant``, ``Zeros``) are copied unchanged.

    Args:
      initializer: a resolved Keras initialiser.
      salt: a name unique among the sublayers that share ``initializer``, e.g.
        ``"expert_0"`` or ``"dense_1"``.

    Returns:
      A new initialiser instance of the same class.
    """
    config = initializer.get_config()
    if config.get("seed") is not None:
        key = f"{config['seed']}/{salt}".encode()
        config["seed"] = zlib.crc32(key) & 0x7FFFFFFF
    return initializer.__class__.from_config(config)


def linear_head(
    units: int,
    kernel_initializer: tf.keras.initializers.Initializer,
    name: str,
    l2: float = 0.0,
) -> tf.keras.layers.Dense:
    """The linear ``Dense(units)`` on top of an MLP (a logit, a score, gate logits).

    Its kernel initialiser is derived from ``kernel_initializer`` by ``name``
    (see :func:`derive_initializer`); an ``l2 > 0`` penalises its kernel.
    """
    return tf.keras.layers.Dense(
        units,
        kernel_initializer=derive_initializer(kernel_initializer, name),
        kernel_regularizer=tf.keras.regularizers.L2(l2) if l2 else None,
        name=name,
    )


def one_unit_linear(x: tf.Tensor, kernel: tf.Variable, bias: tf.Variable) -> tf.Tensor:
    """``x W + b`` for a one-unit ``W`` ``(d, 1)``: ``(batch, d)`` -> ``(batch, 1)``,
    as a multiply and a row sum, ``sum_j x_ij W_j1 + b``.

    A one-column matmul is the slowest shape for oneDNN: on a census tower
    (``(1024, 16)``, one core) the ``Dense(1)`` took about 40 µs forward
    and 49 µs with its backward, the multiply and sum 15 and 32 µs
    (TensorFlow profiler, per call). The kernel and bias are cast to ``x``'s
    dtype (a mixed-precision compute dtype).

    Example:

    >>> head = tf.keras.layers.Dense(1, kernel_initializer="ones")
    >>> x = tf.constant([[1.0, 2.0], [3.0, -1.0]])
    >>> _ = head(x)
    >>> one_unit_linear(x, head.kernel, head.bias).numpy().tolist()
    [[3.0], [2.0]]
    """
    w = tf.reshape(tf.cast(kernel, x.dtype), [-1])
    return tf.reduce_sum(x * w, axis=-1, keepdims=True) + tf.cast(bias, x.dtype)


def build_in_scope(layer: tf.keras.layers.Layer, input_shape) -> tf.TensorShape:
    """Builds ``layer`` inside its name scope; returns its output shape.

    Variables then carry the sublayer's name (``tower/logit/kernel``), as
    they do when Keras builds a sublayer on its first call.
    """
    with tf.name_scope(layer.name):
        layer.build(input_shape)
    return layer.compute_output_shape(input_shape)


@tf.keras.utils.register_keras_serializable(package="mtrec")
class MLP(tf.keras.layers.Layer):
    """Multi-layer perceptron.

    ``h_0 = x``, ``h_l = dropout(act(W_l h_{l-1} + b_l))`` for ``l = 1..L``.

    Args:
      units: hidden sizes, one per dense layer, e.g. ``[256, 128]``. An empty
        list makes the layer the identity.
      activation: activation of every layer. Default ``"relu"``.
      dropout: dropout rate after each layer, in ``[0, 1)``. Default ``0.0``.
      use_bias: whether the dense layers add a bias. Default ``True``.
      kernel_initializer: initialiser of the kernels; each dense layer gets its
        own copy, and a seeded initialiser gets a seed derived per layer (see
        ``derive_initializer``). Default ``"glorot_uniform"``.
      l2: L2 penalty on the kernels. Default ``0.0``.
      batch_norm: apply batch normalisation before the activation. Default
        ``False``.

    Call arguments:
      inputs: float tensor of shape ``(batch, input_dim)``.
      training: whether dropout and batch norm run in training mode.

    Returns:
      Float tensor of shape ``(batch, units[-1])`` (``input_dim`` if ``units``
      is empty).

    Example:

    >>> mlp = MLP(units=[8, 4])
    >>> mlp(tf.ones((2, 3))).shape
    TensorShape([2, 4])
    """

    def __init__(
        self,
        units: Sequence[int] = (),
        activation: str = "relu",
        dropout: float = 0.0,
        use_bias: bool = True,
        kernel_initializer: str | dict = "glorot_uniform",
        l2: float = 0.0,
        batch_norm: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = validation.check_units("units", units, allow_empty=True)
        self.activation = validation.check_activation("activation", activation)
        self.dropout = validation.check_rate("dropout", dropout)
        self.use_bias = validation.check_bool("use_bias", use_bias)
        self.kernel_initializer = validation.check_initializer(
            "kernel_initializer", kernel_initializer
        )
        self.l2 = validation.check_non_negative("l2", l2)
        self.batch_norm = validation.check_bool("batch_norm", batch_norm)
        regularizer = tf.keras.regularizers.L2(self.l2) if self.l2 > 0 else None
        self._dense = [
            tf.keras.layers.Dense(
                u,
                use_bias=self.use_bias,
                # Each dense layer gets its own initialiser instance (with a
                # derived seed if seeded) so no two layers start from equal
                # weights; layers holding several MLPs derive one per MLP.
                kernel_initializer=derive_initializer(
                    self.kernel_initializer, f"dense_{i}"
                ),
                kernel_regularizer=regularizer,
                name=f"dense_{i}",
            )
            for i, u in enumerate(self.units)
        ]
        self._norms = (
            [
                tf.keras.layers.BatchNormalization(name=f"batch_norm_{i}")
                for i in range(len(self.units))
            ]
            if self.batch_norm
            else []
        )
        self._dropout = (
            tf.keras.layers.Dropout(self.dropout) if self.dropout > 0 else None
        )

    def build(self, input_shape):
        shape = tf.TensorShape(input_shape)
        for i, dense in enumerate(self._dense):
            dense.build(shape)
            shape = dense.compute_output_shape(shape)
            if self._norms:
                self._norms[i].build(shape)
        super().build(input_shape)

    def call(self, inputs, training=None):
        if not self._dense:
            return inputs
        return self.from_first_linear(self._dense[0](inputs), training=training)

    @property
    def first_linear(self) -> tuple[tf.Variable, tf.Variable | None] | None:
        """``(W_1, b_1)`` of the first dense layer (``b_1`` ``None`` without
        biases); ``None`` for the identity (``units`` empty).

        The MLP is ``from_first_linear(x W_1 + b_1)``: a layer that runs
        several MLPs (or experts, gates) reading the same ``x`` may compute
        ``x W_1 + b_1`` with theirs in one matmul (:func:`apply_layers`).
        """
        if not self._dense:
            return None
        dense = self._dense[0]
        return dense.kernel, dense.bias

    def from_first_linear(self, pre_activation, training=None):
        """The MLP's output ``(batch, units[-1])`` from ``x W_1 + b_1``.

        ``call(x)`` is ``from_first_linear(x W_1 + b_1)``: batch norm (if
        any), activation and dropout of the first layer, then the others.
        """
        x = pre_activation
        for i, dense in enumerate(self._dense):
            if i:
                x = dense(x)
            if self._norms:
                x = self._norms[i](x, training=training)
            x = self.activation(x)
            if self._dropout is not None:
                x = self._dropout(x, training=training)
        return x

    def compute_output_shape(self, input_shape):
        shape = tf.TensorShape(input_shape)
        return shape[:-1].concatenate([self.units[-1] if self.units else shape[-1]])

    def get_config(self):
        return {**super().get_config(), **arguments.constructor_config(self)}
