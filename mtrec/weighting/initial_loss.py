"""Initial-loss weighting: each loss relative to its value at the start."""

from collections.abc import Sequence

import tensorflow as tf

from mtrec.weighting.base import EPSILON
from mtrec.weighting.base import LossWeighting
from mtrec.weighting.base import reference_losses


@tf.keras.utils.register_keras_serializable(package="mtrec")
class InitialLossWeighting(LossWeighting):
    """Divides each task's loss by its loss at the start of training.

    ``w_k = 1 / L_k(0)`` (times ``Task.weight``), ``L = Σ_k w_k L_k(t)``, where
    ``L_k(0)`` is the task's loss on its first training batch with a positive loss (a
    masked task's first batches may have no row). Every term starts at 1, so the total
    is invariant to the scale of each loss (``L_k -> c·L_k`` changes nothing) but not to
    a shift (``L_k -> L_k + b``). ``L_k(0)`` is a non-trainable variable, so a resumed
    run keeps the original reference.

    Args:
      task_names: the supervised outputs.

    Example:

    >>> w = InitialLossWeighting(["ctr", "ctcvr"])
    >>> float(w({"ctr": tf.constant(0.5), "ctcvr": tf.constant(0.1)}, training=True))
    2.0

    References:
      Chen et al., "GradNorm: Gradient Normalization for Adaptive Loss
      Balancing in Deep Multitask Networks", ICML 2018 (the loss ratio
      ``L_k(t) / L_k(0)`` as a task's inverse training rate); Sener & Koltun,
      "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018
      (loss-based normalisation).
    """

    def __init__(self, task_names: Sequence[str], **kwargs):
        super().__init__(task_names, **kwargs)
        self.initial_losses = self._task_state("initial_losses")
        self.recorded = self._task_state("recorded")

    def compute_weights(self, losses, training=None):
        current = tf.stop_gradient(self._stack(losses))
        initial = reference_losses(
            self.initial_losses, self.recorded, current, training
        )
        return self._unstack(1.0 / tf.maximum(initial, EPSILON))
