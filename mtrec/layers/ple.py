"""Progressive Layered Extraction (PLE): stacked CGC extraction levels."""

from collections.abc import Sequence

import tensorflow as tf

from mtrec.layers import cgc as cgc_lib
from mtrec.layers import mixture
from mtrec.layers import mlp as mlp_lib
from mtrec.layers import validation


@tf.keras.utils.register_keras_serializable(package="mtrec")
class PLE(mixture.MixtureOfExperts):
    """Progressive Layered Extraction: ``num_levels`` stacked CGC levels.

    Level ``j`` is a :class:`CGC`. Its task experts and task gate ``k`` read
    ``x_k^{j-1}``, its shared experts and shared gate read ``x_s^{j-1}``
    (``x^0 = x`` for all):
    ``x_k^j = g_k^j(x_k^{j-1})^T [E_k^j(x_k^{j-1}), E_s^j(x_s^{j-1})]``,
    ``x_s^j = g_s^j(x_s^{j-1})^T [E_1^j, .., E_K^j, E_s^j]``.
    Levels ``0 .. num_levels - 2`` return the shared output; the last level does
    not, and its task outputs are the layer's outputs. With ``num_levels=1`` PLE
    is exactly CGC.

    Args:
      task_names: names of the tasks, the keys of the output dict; ``"shared"``
        is reserved.
      num_levels: number of extraction levels. Default ``2``, as in the paper.
      num_shared_experts: shared experts per level. Default ``1``.
      num_task_experts: experts per task per level. Default ``1``.
      expert_units: hidden sizes of every expert MLP (all levels). Default
        ``(64, 32)``.
      gate_units: hidden sizes of an MLP inside each gate. Default ``()``, a
        linear softmax gate.
      activation: activation of the expert (and gate) hidden layers. Default
        ``"relu"``.
      dropout: dropout rate after each expert layer. Default ``0.0``.
      l2: L2 penalty on all kernels. Default ``0.0``.
      kernel_initializer: initialiser of all kernels; every level, expert and
        gate gets its own copy (seeded initialisers get derived seeds). Default
        ``"glorot_uniform"``.

    Call arguments:
      inputs: float tensor ``(batch, input_dim)``.
      training: Python bool, whether dropout is active.
      return_gates: if ``True``, also return the gate weights.

    Returns:
      Dict ``{task: (batch, expert_units[-1])}``. With ``return_gates=True`` a
      pair ``(outputs, gates)``: ``gates[task]`` are the last level's task gates;
      each earlier level ``l`` adds ``gates[f"level_{l}/{task}"]`` and
      ``gates[f"level_{l}/shared"]`` (expert order as in :class:`CGC`).

    Example:

    >>> ple = PLE(["ctr", "cvr"], num_levels=2, expert_units=[8, 4])
    >>> {k: v.shape for k, v in ple(tf.ones((2, 3))).items()}
    {'ctr': TensorShape([2, 4]), 'cvr': TensorShape([2, 4])}

    References:
      Tang et al., "Progressive Layered Extraction (PLE): A Novel Multi-Task
      Learning (MTL) Model for Personalized Recommendations", RecSys 2020.
    """

    reserved_task_names = (mixture.SHARED,)

    def __init__(
        self,
        task_names: Sequence[str],
        num_levels: int = 2,
        num_shared_experts: int = 1,
        num_task_experts: int = 1,
        expert_units: Sequence[int] = (64, 32),
        gate_units: Sequence[int] = (),
        activation: str = "relu",
        dropout: float = 0.0,
        l2: float = 0.0,
        kernel_initializer: str | dict = "glorot_uniform",
        **kwargs,
    ):
        super().__init__(
            task_names,
            expert_units=expert_units,
            gate_units=gate_units,
            activation=activation,
            dropout=dropout,
            l2=l2,
            kernel_initializer=kernel_initializer,
            **kwargs,
        )
        self.num_levels = validation.check_count("num_levels", num_levels, 1)
        self.num_shared_experts = validation.check_count(
            "num_shared_experts", num_shared_experts, 0
        )
        self.num_task_experts = validation.check_count(
            "num_task_experts", num_task_experts, 0
        )
        # CGC validates num_shared_experts + num_task_experts >= 1.
        self.levels = [
            cgc_lib.CGC(
                self.task_names,
                num_shared_experts=self.num_shared_experts,
                num_task_experts=self.num_task_experts,
                expert_units=self.expert_units,
                gate_units=self.gate_units,
                activation=self.activation,
                dropout=self.dropout,
                l2=self.l2,
                kernel_initializer=mlp_lib.derive_initializer(
                    self.kernel_initializer, f"level_{level}"
                ),
                return_shared=level < self.num_levels - 1,
                name=f"level_{level}",
            )
            for level in range(self.num_levels)
        ]

    def build(self, input_shape):
        shape = tf.TensorShape(input_shape)
        # Every output of a level, "shared" included, is (batch, units[-1]).
        out = shape[:-1].concatenate([self.expert_units[-1]])
        for level in self.levels:
            with tf.name_scope(level.name):
                level.build(shape)
            shape = {key: out for key in [*self.task_names, mixture.SHARED]}
        super().build(input_shape)

    def call(self, inputs, training=None, return_gates=False):
        x = inputs
        gates = {}
        for level, cgc in enumerate(self.levels):
            x, level_gates = cgc(x, training=training, return_gates=True)
            if level < self.num_levels - 1:
                gates.update({f"level_{level}/{k}": g for k, g in level_gates.items()})
            else:
                gates.update(level_gates)
        if return_gates:
            return x, gates
        return x

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_levels": self.num_levels,
                "num_shared_experts": self.num_shared_experts,
                "num_task_experts": self.num_task_experts,
            }
        )
        return config
