"""Fixed per-task loss weights."""

from collections.abc import Sequence

import tensorflow as tf

from mtrec.weighting.base import LossWeighting


@tf.keras.utils.register_keras_serializable(package="mtrec")
class FixedWeighting(LossWeighting):
    """A weighted sum with constant weights.

    ``L = Σ_k w_k L_k`` with ``w_k = Task.weight_k · weights_k``: the tasks'
    ``weight`` fields (``task_weight``) times the ``weights`` argument
    (``args: {weights: {...}}`` in a config), each 1 where not given.

    Args:
      task_names: the supervised outputs.
      weights: ``{task: w_k}``; missing tasks get 1.
      task_weight: ``{task: Task.weight}``, multiplied in; missing tasks get 1.

    Example:

    >>> w = FixedWeighting(["ctr", "ctcvr"], weights={"ctcvr": 2.0})
    >>> float(w({"ctr": tf.constant(1.0), "ctcvr": tf.constant(0.5)}))
    2.0
    >>> w = FixedWeighting(["ctr", "ctcvr"], {"ctcvr": 2.0}, task_weight={"ctcvr": 3})
    >>> [float(v) for v in w.task_weights().values()]
    [1.0, 6.0]

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
        self._record(self.with_task_weight(self.compute_weights({})))

    def compute_weights(self, losses, training=None):
        return {k: tf.constant(v) for k, v in self.weights_by_task.items()}

    def get_config(self):
        config = super().get_config()
        config["weights"] = self.weights_by_task
        return config
