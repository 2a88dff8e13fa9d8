"""Equal weighting: the plain sum of the task losses."""

from collections.abc import Mapping
from collections.abc import Sequence

import tensorflow as tf

from mtrec.weighting.fixed import FixedWeighting


@tf.keras.utils.register_keras_serializable(package="mtrec")
class EqualWeighting(FixedWeighting):
    """``L = Σ_k L_k``: every weight is 1, whatever the tasks' ``weight`` fields.

    The baseline every other strategy is compared with.

    Args:
      task_names: the supervised outputs.

    Example:

    >>> w = EqualWeighting(["ctr", "ctcvr"])
    >>> float(w({"ctr": tf.constant(1.0), "ctcvr": tf.constant(0.5)}))
    1.5

    References:
      Caruana, "Multitask Learning", Machine Learning 28, 1997.
    """

    def __init__(self, task_names: Sequence[str], **kwargs):
        kwargs.pop("weights", None)
        super().__init__(task_names, **kwargs)

    @classmethod
    def from_tasks(cls, tasks: Mapping, seed: int | None = None, **kwargs):
        return cls(list(tasks), **kwargs)

    def get_config(self):
        config = super().get_config()
        config.pop("weights")
        return config
