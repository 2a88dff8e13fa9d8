"""Static gradient-norm weighting: every task moves the shared parameters equally."""

from collections.abc import Sequence

import tensorflow as tf

from mtrec.weighting import gradients as G
from mtrec.weighting.base import EPSILON
from mtrec.weighting.base import GradientWeighting


def shared_norms(task_grads: Sequence[Sequence[G.Gradient]]) -> tf.Tensor:
    """``||g_k||`` of each task's gradient list (dense, sparse or ``None``
    entries), as a ``(K,)`` vector."""
    return tf.sqrt(tf.stack([G.squared_norm(g) for g in task_grads]))


def inverse_norm_weights(norms) -> tf.Tensor:
    """``w_k = 1 / ||g_k||`` (0 for a task with no gradient)."""
    norms = tf.convert_to_tensor(norms, tf.float32)
    return tf.where(norms > EPSILON, 1.0 / tf.maximum(norms, EPSILON), 0.0)


@tf.keras.utils.register_keras_serializable(package="mtrec")
class GradNormStatic(GradientWeighting):
    """Weights from the norm of each task's gradient on the shared parameters.

    At every step ``w_k = sg(1 / ||∇_θsh L_k||)``, the norm taken over every
    shared parameter (embeddings, cross layers and backbone variables that at
    least two tasks reach; all of a task's variables if none is shared), and
    the update is ``Σ_k w_k ∇L_k``: on the shared parameters a sum of unit
    vectors, one per task. Nothing is learned (hence "static", unlike
    ``gradnorm``). The direction is invariant to both the scale and a shift of
    every loss (``L_k -> a·L_k + b`` leaves ``∇L_k / ||∇L_k||`` unchanged),
    where ``initial_loss`` and ``realtime`` are only scale invariant. A task
    with no gradient in a batch (a masked task with no row) gets weight 0.
    ``Task.weight`` multiplies ``w_k``: task ``k`` then moves the shared
    parameters by a vector of norm ``Task.weight_k``.

    Args:
      task_names: the supervised outputs.

    References:
      Chen et al., "GradNorm", ICML 2018 (balancing gradient norms on the
      shared parameters); Sener & Koltun, "Multi-Task Learning as
      Multi-Objective Optimization", NeurIPS 2018 (gradient normalisation by
      the L2 norm).
    """

    def combine_gradients(self, losses, task_grads, shared, last_shared):
        self._check(losses)
        variables_at = [i for i, s in enumerate(shared) if s]
        per_task = []
        for k in self.task_names:
            grads = task_grads[k]
            indices = variables_at or [i for i, g in enumerate(grads) if g is not None]
            # Sparse (embedding) gradients stay sparse: the norm reads their rows.
            per_task.append([grads[i] for i in indices])
        weights = inverse_norm_weights(shared_norms(per_task))
        weights = self._stack(self.with_task_weight(self._unstack(weights)))
        grads = G.weighted_sum([task_grads[k] for k in self.task_names], weights)
        by_task = self._unstack(weights)
        total = self.combine(losses, by_task)
        return grads, total, by_task, []
