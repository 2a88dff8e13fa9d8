"""Progressive Layered Extraction (PLE): stacked CGC extraction levels."""

from collections.abc import Sequence

import tensorflow as tf

from mtrec.layers import cgc as cgc_lib
from mtrec.layers import mixture
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
      expert_units, gate_units, activation, dropout, l2, kernel_initializer:
        keyword-only, as in :class:`MixtureOfExperts`, for every level (each
        level's initialiser is derived from ``kernel_initializer`` by its name).

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
    >>> outputs, gates = ple(tf.ones((2, 3)), return_gates=True)
    >>> {k: v.shape for k, v in outputs.items()}
    {'ctr': TensorShape([2, 4]), 'cvr': TensorShape([2, 4])}
    >>> sorted(gates)
    ['ctr', 'cvr', 'level_0/ctr', 'level_0/cvr', 'level_0/shared']

    References:
      Tang et al., "Progressive Layered Extraction (PLE): A Novel Multi-Task
      Learning (MTL) Model for Personalized Recommendations", RecSys 2020,
      section 4.2 (stacking CGC levels into PLE).
    """

    reserved_task_names = (mixture.SHARED,)

    def __init__(
        self,
        task_names: Sequence[str],
        num_levels: int = 2,
        num_shared_experts: int = 1,
        num_task_experts: int = 1,
        **kwargs,
    ):
        super().__init__(task_names, **kwargs)
        self.num_levels = validation.check_count("num_levels", num_levels, 1)
        self.num_shared_experts, self.num_task_experts = cgc_lib.check_expert_counts(
            num_shared_experts, num_task_experts
        )
        self.levels = [
            cgc_lib.CGC(
                self.task_names,
                num_shared_experts=self.num_shared_experts,
                num_task_experts=self.num_task_experts,
                return_shared=level < self.num_levels - 1,
                name=f"level_{level}",
                **self.expert_arguments(salt=f"level_{level}"),
            )
            for level in range(self.num_levels)
        ]

    def sublayer_input_shapes(self, input_shape):
        # Level 0 reads the inputs; every later level the previous level's
        # outputs, "shared" included, each (batch, expert_units[-1]).
        shape = tf.TensorShape(input_shape)
        out = shape[:-1].concatenate([self.expert_units[-1]])
        deeper = {key: out for key in [*self.task_names, mixture.SHARED]}
        return [
            (level, shape if i == 0 else deeper) for i, level in enumerate(self.levels)
        ]

    def shared_layer_variables(self) -> list:
        """The variables of the last shared layer (GradNorm's ``W``, Chen et al.,
        ICML 2018): the shared experts' last kernel of its last level (as
        ``CGC``); empty without shared experts.
        """
        return self.levels[-1].shared_layer_variables()

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
