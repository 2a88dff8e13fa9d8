"""The base class of the mixture-of-experts layers (OMoE, MMoE, CGC, PLE)."""

import inspect
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
