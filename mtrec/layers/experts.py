"""A group of MLP experts of equal sizes computed together as stacked matmuls."""

from collections.abc import Sequence

import tensorflow as tf

from mtrec.layers import arguments
from mtrec.layers import mlp as mlp_lib
from mtrec.layers import validation


def _expert_initializers(
    initializer: tf.keras.initializers.Initializer, num_experts: int, depth: int
) -> list[list[tf.keras.initializers.Initializer]]:
    """``[expert][layer]`` initialisers, derived as ``MLP`` experts derive them.

    Expert ``i`` gets ``derive_initializer(initializer, f"expert_{i}")`` and its
    layer ``l`` a copy derived from that with ``f"dense_{l}"``: the initial
    weights of expert ``i`` equal those of an ``MLP`` whose initialiser is
    ``derive_initializer(initializer, f"expert_{i}")``.
    """
    out = []
    for i in range(num_experts):
        expert = mlp_lib.derive_initializer(initializer, f"expert_{i}")
        out.append(
            [mlp_lib.derive_initializer(expert, f"dense_{j}") for j in range(depth)]
        )
    return out


@tf.keras.utils.register_keras_serializable(package="mtrec")
class Experts(tf.keras.layers.Layer):
    """``num_experts`` MLP experts of the same sizes, computed together.

    Expert ``i`` is an MLP,
    ``h_{i,0} = x``, ``h_{i,l} = dropout(act(h_{i,l-1} W_{i,l} + b_{i,l}))``,
    ``e_i(x) = h_{i,L}``. Instead of ``num_experts`` separate dense layers per
    depth, the experts share the work: all first layers are one matmul
    ``x [W_{1,1} .. W_{n,1}]`` with a ``(input_dim, n * units[0])`` kernel (the
    experts read the same input), every deeper layer one batched matmul with an
    ``(n, units[l-1], units[l])`` kernel. The result equals ``n`` separate
    :class:`MLP` s with the same weights.

    Each expert's slice of every kernel is drawn from its own initialiser,
    derived by name exactly as an ``MLP`` named ``expert_{i}`` derives it (see
    ``derive_initializer``): experts never start equal, seeded runs are
    reproducible, and a Glorot initialiser sees each expert's own fan-in and
    fan-out, not the stacked kernel's.

    Args:
      num_experts: ``n``, the number of experts. Must be >= 1.
      units: hidden sizes of every expert, e.g. ``[64, 32]``. Must not be empty.
      activation: activation after every layer. Default ``"relu"``.
      dropout: dropout rate after every layer, in ``[0, 1)``. Default ``0.0``.
      use_bias: whether the layers add a bias. Default ``True``.
      kernel_initializer: initialiser of the kernels, derived per expert and
        layer as above. Default ``"glorot_uniform"``.
      l2: L2 penalty on the kernels (the same total as on ``n`` separate
        experts). Default ``0.0``.

    Call arguments:
      inputs: float tensor ``(batch, input_dim)``, read by every expert.
      training: whether dropout is active.

    Returns:
      Float tensor ``(batch, num_experts, units[-1])``; ``[:, i, :]`` is expert
      ``i``.

    Weights (in order): ``kernel_0 (input_dim, n * units[0])`` (expert ``i``
    owns columns ``i * units[0] .. (i + 1) * units[0] - 1``), ``bias_0
    (n * units[0],)``, then per deeper layer ``kernel_l (n, units[l-1],
    units[l])`` and ``bias_l (n, units[l])``.

    Example:

    >>> experts = Experts(num_experts=3, units=[8, 4])
    >>> experts(tf.ones((2, 5))).shape
    TensorShape([2, 3, 4])

    References:
      Ma et al., "Modeling Task Relationships in Multi-task Learning with
      Multi-gate Mixture-of-Experts", KDD 2018 (the experts of MMoE).
    """

    def __init__(
        self,
        num_experts: int,
        units: Sequence[int],
        activation: str = "relu",
        dropout: float = 0.0,
        use_bias: bool = True,
        kernel_initializer: str | dict = "glorot_uniform",
        l2: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_experts = validation.check_count("num_experts", num_experts, 1)
        self.units = validation.check_units("units", units, allow_empty=False)
        self.activation = validation.check_activation("activation", activation)
        self.dropout = validation.check_rate("dropout", dropout)
        self.use_bias = validation.check_bool("use_bias", use_bias)
        self.kernel_initializer = validation.check_initializer(
            "kernel_initializer", kernel_initializer
        )
        self.l2 = validation.check_non_negative("l2", l2)
        self._dropout = (
            tf.keras.layers.Dropout(self.dropout) if self.dropout > 0 else None
        )
        self.kernels: list[tf.Variable] = []
        self.biases: list[tf.Variable] = []

    def build(self, input_shape):
        input_dim = tf.TensorShape(input_shape)[-1]
        if input_dim is None:
            raise ValueError(
                f"The last dimension of the inputs to `{self.name}` must be known. "
                f"Received: input_shape={input_shape}"
            )
        n = self.num_experts
        inits = _expert_initializers(self.kernel_initializer, n, len(self.units))
        regularizer = tf.keras.regularizers.L2(self.l2) if self.l2 > 0 else None
        sizes = [int(input_dim), *self.units]
        for j, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            slices = [inits[i][j] for i in range(n)]
            if j == 0:
                shape = (fan_in, n * fan_out)
                bias_shape = (n * fan_out,)
            else:
                shape = (n, fan_in, fan_out)
                bias_shape = (n, fan_out)
            self.kernels.append(
                self.add_weight(
                    name=f"kernel_{j}",
                    shape=shape,
                    initializer=_StackedInitializer(slices, j == 0),
                    regularizer=regularizer,
                )
            )
            if self.use_bias:
                self.biases.append(
                    self.add_weight(
                        name=f"bias_{j}", shape=bias_shape, initializer="zeros"
                    )
                )
        super().build(input_shape)

    def _finish(self, h, bias, training):
        if bias is not None:
            h = h + bias
        h = self.activation(h)
        if self._dropout is not None:
            h = self._dropout(h, training=training)
        return h

    def call(self, inputs, training=None):
        kernel, bias = self.first_linear
        pre = tf.matmul(inputs, kernel)
        return self.from_first_linear(pre if bias is None else pre + bias, training)

    @property
    def first_linear(self) -> tuple[tf.Variable, tf.Variable | None]:
        """``(kernel_0, bias_0)`` (``bias_0`` ``None`` without biases).

        The first layer of every expert is ``x kernel_0 + bias_0``; a layer
        that runs several groups reading the same ``x`` may compute it with
        theirs in one matmul and continue with :meth:`from_first_linear`.
        """
        return self.kernels[0], (self.biases[0] if self.use_bias else None)

    def from_first_linear(self, pre_activation, training=None):
        """The experts' output from ``x kernel_0 + bias_0``, ``(batch, n * u_0)``.

        ``call(x)`` is ``from_first_linear(x @ kernel_0 + bias_0)``.
        """
        n, units = self.num_experts, self.units
        h = self._finish(pre_activation, None, training)
        h = tf.reshape(h, (-1, n, units[0]))
        if len(units) == 1:
            return h
        # Deeper layers: one batched matmul over experts, (n, batch, u).
        h = tf.transpose(h, (1, 0, 2))
        for layer in range(1, len(units)):
            bias = self.biases[layer][:, None, :] if self.use_bias else None
            h = self._finish(tf.matmul(h, self.kernels[layer]), bias, training)
        return tf.transpose(h, (1, 0, 2))

    @property
    def join_key(self) -> tuple | None:
        """``(units[0], activation)`` for one layer without dropout, else
        ``None``: groups with the same key compute their outputs side by side
        from their first linear maps (:func:`joined_from_first_linear`)."""
        if len(self.units) > 1 or self._dropout is not None:
            return None
        return (self.units[0], self.activation)

    def compute_output_shape(self, input_shape):
        shape = tf.TensorShape(input_shape)
        return shape[:-1].concatenate([self.num_experts, self.units[-1]])

    def get_config(self):
        return {**super().get_config(), **arguments.constructor_config(self)}


def joined_from_first_linear(
    groups: Sequence[Experts], pre_activation: tf.Tensor
) -> tf.Tensor:
    """Several groups' outputs concatenated along the experts' axis, from
    their first linear maps side by side.

    ``pre_activation`` is ``concat_j(x kernel_0^j + bias_0^j)``
    ``(batch, sum_j n_j u)``; every group has the same :attr:`Experts.join_key`
    ``(u, act)``. The result ``reshape(act(pre_activation), (batch, sum_j n_j,
    u))`` equals ``concat([g.from_first_linear(p_j) for g, p_j], axis=1)``
    without splitting the columns per group, activating each and
    concatenating the outputs again.

    Raises:
      ValueError: if a group's ``join_key`` is ``None`` or differs.

    Example:

    >>> a, b = Experts(1, [2]), Experts(2, [2])
    >>> _ = a(tf.ones((1, 3))), b(tf.ones((1, 3)))
    >>> pre = tf.constant([[1.0, -1.0, 2.0, 3.0, -4.0, 5.0]])
    >>> joined_from_first_linear([a, b], pre).numpy().tolist()
    [[[1.0, 0.0], [2.0, 3.0], [0.0, 5.0]]]
    """
    keys = {group.join_key for group in groups}
    if len(keys) != 1 or None in keys:
        raise ValueError(
            "Expert groups computed together must each have one layer of the "
            "same width and activation, without dropout. Received: "
            f"`join_key`s {[group.join_key for group in groups]}"
        )
    ((units, activation),) = keys
    total = sum(group.num_experts for group in groups)
    return tf.reshape(activation(pre_activation), (-1, total, units))


class _StackedInitializer:
    """Initialises a stacked kernel slice by slice, one initialiser per expert.

    ``concat=True``: slices ``(fan_in, fan_out)`` side by side along the last
    axis (the first layer's ``(fan_in, n * fan_out)`` kernel); otherwise stacked
    along a new first axis (``(n, fan_in, fan_out)``).
    """

    def __init__(self, initializers, concat: bool):
        self.initializers = initializers
        self.concat = concat

    def __call__(self, shape, dtype=None, **kwargs):
        n = len(self.initializers)
        if self.concat:
            slice_shape = (shape[0], shape[1] // n)
        else:
            slice_shape = tuple(shape[1:])
        slices = [init(slice_shape, dtype=dtype) for init in self.initializers]
        if self.concat:
            return tf.concat(slices, axis=-1)
        return tf.stack(slices, axis=0)
