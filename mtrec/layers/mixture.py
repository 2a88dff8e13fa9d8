"""The base class of the mixture-of-experts layers (OMoE, MMoE, CGC, PLE)."""

import contextlib
import inspect
import threading
from collections.abc import Iterator
from collections.abc import Sequence

import tensorflow as tf

from mtrec.layers import arguments
from mtrec.layers import experts as experts_lib
from mtrec.layers import gate as gate_lib
from mtrec.layers import mlp as mlp_lib
from mtrec.layers import validation
from mtrec.layers.gated import GatedBackbone

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


def mix_expert_groups(gates: tf.Tensor, groups: Sequence[tf.Tensor]) -> tf.Tensor:
    """``mix_experts(gates, concat(groups, axis=1))`` without the concatenation.

    ``(b, n), [(b, n_j, u)] -> (b, u)`` with ``n = sum_j n_j``: the gate's
    columns are split by group, each group mixed by its columns, and the
    mixtures added. A CGC task mixes its own experts with the shared ones;
    concatenating them copied ``b * n * u`` values forward and again in the
    backward pass (a split) for every gate, where here only the ``(b, n)``
    gates are split.

    Example:

    >>> own = tf.reshape(tf.range(4.0), (1, 1, 4))
    >>> shared = tf.reshape(tf.range(4.0, 12.0), (1, 2, 4))
    >>> gates = tf.constant([[0.5, 0.25, 0.25]])
    >>> mix_expert_groups(gates, [own, shared]).numpy().tolist()
    [[3.0, 4.0, 5.0, 6.0]]
    """
    if len(groups) == 1:
        return mix_experts(gates, groups[0])
    columns = tf.split(gates, [int(group.shape[1]) for group in groups], axis=1)
    return tf.add_n(
        [mix_experts(g, group) for g, group in zip(columns, groups, strict=True)]
    )


def mix_experts_per_gate(
    gates: Sequence[tf.Tensor], experts: tf.Tensor
) -> list[tf.Tensor]:
    """``[mix_experts(g, experts) for g in gates]``, as one batched matmul.

    With ``t`` gates over the same experts, ``G = stack(gates)`` ``(b, t, n)``
    and ``G @ experts`` ``(b, t, u)``: one op forward and two backward
    instead of a multiply and a sum per gate (MMoE's training step measured
    1.12x faster with two tasks and 8 experts on one core). One gate, or
    any number inside :func:`separate_matmuls` (the stacked matmul would
    connect every gate to every task's loss), is :func:`mix_experts` each.

    Example:

    >>> experts = tf.reshape(tf.range(12.0), (1, 3, 4))
    >>> gates = [tf.constant([[1.0, 0.0, 0.0]]), tf.constant([[0.0, 0.5, 0.5]])]
    >>> [m.numpy().tolist() for m in mix_experts_per_gate(gates, experts)]
    [[[0.0, 1.0, 2.0, 3.0]], [[6.0, 7.0, 8.0, 9.0]]]
    """
    if len(gates) == 1 or getattr(_MODE, "separate", False):
        return [mix_experts(g, experts) for g in gates]
    mixed = tf.matmul(tf.stack(list(gates), axis=1), experts)
    return tf.unstack(mixed, num=len(gates), axis=1)


_MODE = threading.local()


@contextlib.contextmanager
def separate_matmuls() -> Iterator[None]:
    """Within it, mixture layers give every expert group and gate its own matmul.

    By default the expert groups and linear gates of a mixture layer that
    read the same input share one matmul (:func:`apply_layers`), and MMoE
    mixes all tasks' gates in one (:func:`mix_experts_per_gate`): the same
    values, fewer and larger matmuls. The shared matmul connects every one
    of those variables to every task's loss, with an exactly zero gradient
    where a task does not use it. Code that tells task-specific variables
    from shared ones by which task losses reach them (the gradient
    weightings' ``MultiTaskRanker.shared_layout``) traces the model inside
    this context, where that reach is the model's own.

    The switch is read when a graph is traced (per thread), not when it runs.

    Example:

    >>> layer = mtrec.MMoE(["a", "b"], num_experts=2, expert_units=[4])
    >>> x = tf.ones((3, 5))
    >>> with separate_matmuls():
    ...     separate = layer(x)
    >>> fused = layer(x)
    >>> bool(tf.reduce_all(tf.abs(separate["a"] - fused["a"]) < 1e-5))
    True
    """
    previous = getattr(_MODE, "separate", False)
    _MODE.separate = True
    try:
        yield
    finally:
        _MODE.separate = previous


def apply_layers(
    calls: Sequence[tuple[tf.Tensor, tf.keras.layers.Layer]], training=None
) -> list[tf.Tensor]:
    """``[layer(x) for x, layer in calls]``, sharing matmuls between layers.

    The layers with a ``first_linear`` ``(kernel, bias)`` (:class:`Experts`,
    linear :class:`Gate` s) that read the same tensor ``x`` compute
    ``x [K_1 .. K_m] + [b_1 .. b_m]`` as one matmul, split by columns, and
    each continues with its ``from_first_linear``: the same values as
    separate calls, one larger matmul (and one in the backward pass for
    ``dx`` and one for the kernels) instead of ``m`` thin ones. Others, and
    every layer inside :func:`separate_matmuls`, are called as usual; so is
    a layer not built yet (its first call builds it, in its name scope).

    Args:
      calls: ``(inputs, layer)`` pairs; inputs ``(batch, input_dim)``.
      training: passed to every layer.

    Returns:
      Each layer's output, in the order of ``calls``.
    """
    outputs: list = [None] * len(calls)
    groups: dict[int, list[int]] = {}
    for i, (x, layer) in enumerate(calls):
        if not layer.built or getattr(layer, "first_linear", None) is None:
            outputs[i] = layer(x, training=training)
        else:
            groups.setdefault(id(x), []).append(i)
    separate = getattr(_MODE, "separate", False)
    for members in groups.values():
        if separate or len(members) == 1:
            for i in members:
                outputs[i] = calls[i][1](calls[i][0], training=training)
            continue
        x = calls[members[0]][0]
        linears = [calls[i][1].first_linear for i in members]
        widths = [int(kernel.shape[-1]) for kernel, _ in linears]
        pre = tf.matmul(x, tf.concat([kernel for kernel, _ in linears], axis=1))
        biases = [
            bias if bias is not None else tf.zeros((width,), pre.dtype)
            for (_, bias), width in zip(linears, widths, strict=True)
        ]
        pre = pre + tf.concat(biases, axis=0)
        parts = tf.split(pre, widths, axis=1)
        for i, part in zip(members, parts, strict=True):
            outputs[i] = calls[i][1].from_first_linear(part, training=training)
    return outputs


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


def _signature_with_inherited_arguments(cls) -> inspect.Signature:
    """``cls.__init__``'s signature plus the parent's arguments it forwards.

    A subclass ``__init__(self, task_names, <own>, **kwargs)`` passes the
    expert arguments on in ``**kwargs``; its signature lists them anyway,
    keyword-only, after its own positional ones, so ``inspect.signature``
    (the layer suite's config check, config validation of backbone
    arguments) sees every argument the class takes.
    """
    own = inspect.signature(cls.__dict__["__init__"])
    parent = inspect.signature(super(cls, cls).__init__)
    keyword_only = inspect.Parameter.KEYWORD_ONLY
    params = list(own.parameters.values())
    names = {p.name for p in params}
    inherited = [
        p.replace(kind=keyword_only)
        for p in parent.parameters.values()
        if p.name not in names and p.kind in (p.POSITIONAL_OR_KEYWORD, keyword_only)
    ]
    positional = [p for p in params if p.kind < keyword_only]
    rest = [p for p in params if p.kind >= keyword_only]
    return own.replace(parameters=positional + inherited + rest)


class MixtureOfExperts(tf.keras.layers.Layer):
    """Base class of the layers that mix MLP experts with softmax gates.

    Owns what :class:`OMoE`, :class:`MMoE`, :class:`CGC` and :class:`PLE`
    share: the task names, the expert and gate arguments and their validation,
    the factories of expert groups (:class:`Experts`, each expert's initialiser
    derived by name) and gates, the name-scoped ``build`` and ``get_config``.

    A subclass:

    - defines ``__init__(self, task_names, <own arguments>, **kwargs)`` and
      calls ``super().__init__(task_names, **kwargs)`` first; the expert
      arguments below arrive in ``**kwargs``, and the class's signature lists
      them (keyword-only) after its own;
    - keeps each own argument as an attribute of the same name, which
      ``get_config`` returns with the expert arguments;
    - builds its experts with :meth:`make_experts` and gates with
      :meth:`make_gate`, and lists them with their input shapes in
      :meth:`sublayer_input_shapes` (``build`` builds each in its name scope);
    - sets ``reserved_task_names = (SHARED,)`` if its outputs include the
      shared experts' key.

    Every gate is its own :class:`Gate` and every group of experts its own
    :class:`Experts`, so a variable belongs to one task's gate or one group
    (checkpoints and ``return_gates`` see them apart). Computing them is
    shared: the groups and linear gates that read the same input run as one
    matmul (:func:`apply_layers`), which measured 1.18x (MMoE) and 1.6x (PLE)
    faster training steps than a matmul each on one core. The multi-task
    gradient strategies (PCGrad, GradNorm) tell task-specific variables from
    shared ones by which task losses reach them
    (``MultiTaskRanker.shared_layout``), so their train step traces the model
    inside :func:`separate_matmuls`, where each has its own matmul again.

    Args:
      task_names: names of the tasks, the keys of the output dict.
      expert_units: hidden sizes of every expert MLP, positive ints. Default
        ``(64, 32)``.
      gate_units: hidden sizes of an MLP inside each gate. Default ``()``, the
        paper's linear softmax gate.
      activation: activation of the expert (and gate) hidden layers. Default
        ``"relu"``.
      dropout: dropout rate after each expert layer, in ``[0, 1)``. Default
        ``0.0``.
      l2: L2 penalty on all kernels. Default ``0.0``.
      kernel_initializer: initialiser of all kernels; every expert group and
        gate gets a copy derived by its name, and every expert within a group
        one derived from that (seeded runs are reproducible, experts start
        different). Default ``"glorot_uniform"``.

    Example:

    >>> layer = mtrec.MMoE(["ctr"], num_experts=2, expert_units=[4])
    >>> sorted(inspect.signature(type(layer)).parameters)[:4]
    ['activation', 'dropout', 'expert_units', 'gate_units']
    >>> config = layer.get_config()
    >>> config["num_experts"], list(config["expert_units"])
    (2, [4])

    References:
      Ma et al., "Modeling Task Relationships in Multi-task Learning with
      Multi-gate Mixture-of-Experts", KDD 2018.
    """

    #: Names no task may take (e.g. ``SHARED`` for CGC and PLE).
    reserved_task_names: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__.__signature__ = _signature_with_inherited_arguments(cls)

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
        self.activation = validation.check_activation("activation", activation)
        self.dropout = validation.check_rate("dropout", dropout)
        self.l2 = validation.check_non_negative("l2", l2)
        self.kernel_initializer = validation.check_initializer(
            "kernel_initializer", kernel_initializer
        )

    def expert_arguments(self, salt: str | None = None) -> dict:
        """The expert arguments, e.g. to build a nested mixture (a PLE level).

        With ``salt``, ``kernel_initializer`` is a copy derived by ``salt``.
        """
        initializer = self.kernel_initializer
        if salt is not None:
            initializer = mlp_lib.derive_initializer(initializer, salt)
        return {
            "expert_units": self.expert_units,
            "gate_units": self.gate_units,
            "activation": self.activation,
            "dropout": self.dropout,
            "l2": self.l2,
            "kernel_initializer": initializer,
        }

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

    def sublayer_input_shapes(
        self, input_shape
    ) -> list[tuple[tf.keras.layers.Layer, tf.TensorShape | dict]]:
        """``(sublayer, its input shape)`` for every sublayer, in build order."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement `sublayer_input_shapes`."
        )

    def build(self, input_shape):
        for layer, shape in self.sublayer_input_shapes(input_shape):
            with tf.name_scope(layer.name):
                layer.build(shape)
        super().build(input_shape)

    def get_config(self):
        return {**super().get_config(), **arguments.constructor_config(self)}


GatedBackbone.register(MixtureOfExperts)
