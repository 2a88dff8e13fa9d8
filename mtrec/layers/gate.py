"""A softmax gate: per-example mixture weights over experts."""

from collections.abc import Sequence

import tensorflow as tf

from mtrec.layers import mlp as mlp_lib

# Key of the shared experts' output (CGC, PLE); no task may use it.
SHARED = "shared"


def check_task_names(
    task_names: Sequence[str], reserved: Sequence[str] = ()
) -> list[str]:
    """Returns ``task_names`` as a list; raises ``ValueError`` if unusable."""
    if isinstance(task_names, str):
        raise ValueError(
            "`task_names` must be a sequence of strings, not a string. "
            f"Received: `task_names={task_names!r}`"
        )
    names = list(task_names)
    if not names:
        raise ValueError(
            f"`task_names` must not be empty. Received: `task_names={names}`"
        )
    if not all(isinstance(n, str) and n for n in names):
        raise ValueError(
            f"`task_names` must be non-empty strings. Received: `task_names={names}`"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"`task_names` must be unique. Received: `task_names={names}`")
    for name in reserved:
        if name in names:
            raise ValueError(
                f"`task_names` must not contain {name!r}, which names the shared "
                f"experts' output. Received: `task_names={names}`"
            )
    return names


def check_count(name: str, value: int, minimum: int) -> int:
    """Returns ``int(value)``; raises ``ValueError`` if below ``minimum``."""
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}. Received: `{name}={value}`")
    return int(value)


def check_units(name: str, units: Sequence[int], allow_empty: bool) -> list[int]:
    """Returns hidden sizes as a list of ints; raises ``ValueError`` if invalid."""
    units = [int(u) for u in units]
    if not units and not allow_empty:
        raise ValueError(f"`{name}` must not be empty. Received: `{name}={units}`")
    if any(u < 1 for u in units):
        raise ValueError(f"`{name}` must all be >= 1. Received: `{name}={units}`")
    return units


def check_rate(name: str, value: float) -> float:
    """Returns a rate in ``[0, 1)`` as a float; raises ``ValueError`` otherwise."""
    if not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be in [0, 1). Received: `{name}={value}`")
    return float(value)


def check_non_negative(name: str, value: float) -> float:
    """Returns ``float(value)``; raises ``ValueError`` if negative."""
    if value < 0.0:
        raise ValueError(f"`{name}` must be >= 0. Received: `{name}={value}`")
    return float(value)


def mix_experts(gates: tf.Tensor, experts: tf.Tensor) -> tf.Tensor:
    """``sum_i gates[b, i] * experts[b, i, :]``: ``(b, n), (b, n, u) -> (b, u)``."""
    return tf.einsum("bn,bnu->bu", gates, experts)


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


@tf.keras.utils.register_keras_serializable(package="mtrec")
class Gate(tf.keras.layers.Layer):
    """Softmax gate producing per-example weights over ``num_experts`` experts.

    ``g(x) = softmax(W MLP(x) + b)``; with ``units=()`` (the default) the MLP is
    the identity and the gate is the linear softmax gate of MMoE,
    ``g(x) = softmax(W x + b)``. Every row of the output is >= 0 and sums to 1.

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
        self.num_experts = check_count("num_experts", num_experts, 1)
        self.units = check_units("units", units, allow_empty=True)
        self.activation = tf.keras.activations.get(activation)
        self.l2 = check_non_negative("l2", l2)
        self.kernel_initializer = tf.keras.initializers.get(kernel_initializer)
        self.mlp = mlp_lib.MLP(
            self.units,
            activation=self.activation,
            l2=self.l2,
            kernel_initializer=mlp_lib.derive_initializer(
                self.kernel_initializer, "mlp"
            ),
            name="mlp",
        )
        self.logits = tf.keras.layers.Dense(
            self.num_experts,
            kernel_initializer=mlp_lib.derive_initializer(
                self.kernel_initializer, "logits"
            ),
            kernel_regularizer=tf.keras.regularizers.L2(self.l2) if self.l2 else None,
            name="logits",
        )

    def build(self, input_shape):
        with tf.name_scope(self.mlp.name):
            self.mlp.build(input_shape)
        with tf.name_scope(self.logits.name):
            self.logits.build(self.mlp.compute_output_shape(input_shape))
        super().build(input_shape)

    def call(self, inputs, training=None):
        return tf.nn.softmax(self.logits(self.mlp(inputs, training=training)), axis=-1)

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape)[:-1].concatenate([self.num_experts])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_experts": self.num_experts,
                "units": self.units,
                "activation": tf.keras.activations.serialize(self.activation),
                "l2": self.l2,
                "kernel_initializer": tf.keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config


def set_expert_args(
    layer: tf.keras.layers.Layer,
    expert_units: Sequence[int],
    gate_units: Sequence[int],
    activation,
    dropout: float,
    l2: float,
    kernel_initializer,
) -> None:
    """Validates and stores the arguments every mixture-of-experts layer shares."""
    layer.expert_units = check_units("expert_units", expert_units, allow_empty=False)
    layer.gate_units = check_units("gate_units", gate_units, allow_empty=True)
    layer.activation = tf.keras.activations.get(activation)
    layer.dropout = check_rate("dropout", dropout)
    layer.l2 = check_non_negative("l2", l2)
    layer.kernel_initializer = tf.keras.initializers.get(kernel_initializer)


def expert_args_config(layer: tf.keras.layers.Layer) -> dict:
    """The ``get_config`` entries of the arguments :func:`set_expert_args` stores."""
    return {
        "expert_units": layer.expert_units,
        "gate_units": layer.gate_units,
        "activation": tf.keras.activations.serialize(layer.activation),
        "dropout": layer.dropout,
        "l2": layer.l2,
        "kernel_initializer": tf.keras.initializers.serialize(layer.kernel_initializer),
    }


def make_expert(layer: tf.keras.layers.Layer, name: str) -> mlp_lib.MLP:
    """An expert MLP with the layer's settings and an initializer salted by name."""
    return mlp_lib.MLP(
        layer.expert_units,
        activation=layer.activation,
        dropout=layer.dropout,
        l2=layer.l2,
        kernel_initializer=mlp_lib.derive_initializer(layer.kernel_initializer, name),
        name=name,
    )


def make_gate(layer: tf.keras.layers.Layer, num_experts: int, name: str) -> "Gate":
    """A gate over ``num_experts`` with the layer's settings, salted by name."""
    return Gate(
        num_experts,
        units=layer.gate_units,
        activation=layer.activation,
        l2=layer.l2,
        kernel_initializer=mlp_lib.derive_initializer(layer.kernel_initializer, name),
        name=name,
    )
