"""Equal weighting: the plain sum of the task losses."""

from collections.abc import Sequence

import tensorflow as tf

from mtrec.weighting.base import LossWeighting


@tf.keras.utils.register_keras_serializable(package="mtrec")
class EqualWeighting(LossWeighting):
    """``L = Σ_k L_k``: every weight is 1.

    The baseline every other strategy is compared with. Being "every weight
    is 1" by definition, it refuses a ``Task.weight`` other than 1 and a
    ``weights`` argument (``ValueError``); use ``FixedWeighting`` for
    constant weights.

    Args:
      task_names: the supervised outputs.

    Example:

    >>> w = EqualWeighting(["ctr", "ctcvr"])
    >>> float(w({"ctr": tf.constant(1.0), "ctcvr": tf.constant(0.5)}))
    1.5

    References:
      Caruana, "Multitask Learning", Machine Learning 28, 1997.
    """

    combines_task_weight = False
    task_weight_refusal = "equal weighting means every weight is 1"

    def __init__(self, task_names: Sequence[str], **kwargs):
        if "weights" in kwargs:
            raise ValueError(
                "EqualWeighting has no `weights`: every weight is 1. Use "
                "FixedWeighting (weighting name 'fixed') for constant weights. "
                f"Received: `weights={kwargs['weights']!r}`"
            )
        super().__init__(task_names, **kwargs)

    def compute_weights(self, losses, training=None):
        return {k: tf.constant(1.0) for k in self.task_names}
