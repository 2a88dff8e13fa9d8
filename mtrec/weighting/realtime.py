"""Real-time loss normalisation: each term is 1, its gradient is not."""

import tensorflow as tf

from mtrec.weighting.base import EPSILON
from mtrec.weighting.base import LossWeighting


@tf.keras.utils.register_keras_serializable(package="mtrec")
class RealtimeWeighting(LossWeighting):
    """Divides each loss by its own current value, gradient stopped.

    ``w_k = 1 / sg(L_k)``, ``L = Σ_k L_k / sg(L_k)``: every term's value is 1
    (so the total is the number of tasks; ``Task.weight`` multiplies each),
    but its gradient is ``∇L_k / L_k = ∇ log L_k``. Invariant to the scale
    of each loss at every step, not to a shift. A task with loss 0 in a
    batch (a masked task with no row) contributes 0.

    Args:
      task_names: the supervised outputs.

    Example:

    >>> w = RealtimeWeighting(["ctr", "ctcvr"])
    >>> float(w({"ctr": tf.constant(0.5), "ctcvr": tf.constant(0.1)}))
    2.0

    References:
      Chennupati et al., "MultiNet++: Multi-Stream Feature Aggregation and
      Geometric Loss Strategy for Multi-Task Learning", CVPR Workshops 2019
      (the geometric mean of the losses, whose gradient direction is
      ``Σ_k ∇L_k / L_k``, as here).
    """

    def compute_weights(self, losses, training=None):
        current = tf.stop_gradient(self._stack(losses))
        return self._unstack(1.0 / tf.maximum(current, EPSILON))
