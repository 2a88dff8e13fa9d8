"""Fixed per-task loss weights."""

from collections.abc import Mapping
from collections.abc import Sequence

import tensorflow as tf

from mtrec.weighting.base import LossWeighting


@tf.keras.utils.register_keras_serializable(package="mtrec")
class FixedWeighting(LossWeighting):
    """A weighted sum with constant weights.

    ``L = Σ_k w_k L_k``; with no weights given every ``w_k = 1`` (equal weighting).
    From a config (``weighting: {name: fixed}``) the weights are the tasks'
    ``weight`` fields unless ``args: {weights: {...}}`` names them.

    Args:
      task_names: the supervised outputs.
      weights: ``{task: w_k}``; missing tasks get 1.

    Example:

    >>> w = FixedWeighting(["ctr", "ctcvr"], weights={"ctcvr": 2.0})
    >>> float(w({"ctr": tf.constant(1.0), "ctcvr": tf.constant(0.5)}))
    2.0

    References:
      Caruana, "Multitask Learning", Machine Learning 28, 1997.
    """

    def __init__(
        self, task_names: Sequence[str], weights: dict | None = None, **kwargs
    ):
        super().__init__(task_names, **kwargs)
        weights = dict(weights or {})
        unknown = sorted(set(weights) - set(self.task_names))
        if unknown:
            raise ValueError(
                f"`weights` names unknown tasks {unknown}; tasks are {self.task_names}"
            )
        for name, value in weights.items():
            if not float(value) >= 0.0:
                raise ValueError(
                    f"`weights[{name!r}]` must be >= 0. Received: {value!r}"
                )
        self.weights_by_task = {
            name: float(weights.get(name, 1.0)) for name in self.task_names
        }

    @classmethod
    def from_tasks(cls, tasks: Mapping, seed: int | None = None, **kwargs):
        if "weights" not in kwargs:
            kwargs["weights"] = {out: task.weight for out, task in tasks.items()}
        return cls(list(tasks), **kwargs)

    def compute_weights(self, losses, training=None):
        return {k: tf.constant(v) for k, v in self.weights_by_task.items()}

    def task_weights(self):
        return {k: tf.constant(v) for k, v in self.weights_by_task.items()}

    def get_config(self):
        config = super().get_config()
        config["weights"] = self.weights_by_task
        return config
