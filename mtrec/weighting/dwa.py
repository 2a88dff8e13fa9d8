"""Dynamic weight average: weights from how fast each loss is falling."""

from collections.abc import Mapping
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from mtrec.weighting.base import EPSILON
from mtrec.weighting.base import LossWeighting


def epoch_losses(task_names: Sequence[str], logs: Mapping) -> np.ndarray:
    """``[logs["<task>_loss"] for each task]`` (the epoch-mean task losses)."""
    missing = [f"{k}_loss" for k in task_names if f"{k}_loss" not in logs]
    if missing:
        raise KeyError(
            f"the epoch logs have no {missing}; epoch-based loss weighting needs "
            f"the per-task loss metrics of MultiTaskRanker. Logs: {sorted(logs)}"
        )
    return np.array([float(logs[f"{k}_loss"]) for k in task_names], np.float32)


def dwa_weights(last, before_last, temperature: float) -> tf.Tensor:
    """``w_k = K · softmax(r / T)_k`` with ``r_k = L_k(t-1) / L_k(t-2)``."""
    last = tf.convert_to_tensor(last, tf.float32)
    before_last = tf.convert_to_tensor(before_last, tf.float32)
    ratio = last / tf.maximum(before_last, EPSILON)
    size = tf.cast(tf.size(ratio), tf.float32)
    return size * tf.nn.softmax(ratio / temperature)


@tf.keras.utils.register_keras_serializable(package="mtrec")
class DynamicWeightAverage(LossWeighting):
    """Dynamic Weight Average (DWA).

    For epoch ``t``: ``r_k = L_k(t-1) / L_k(t-2)`` (the ratio of the task's
    last two epoch-mean training losses) and
    ``w_k(t) = K · exp(r_k / T) / Σ_i exp(r_i / T)``; ``w_k = 1`` for the first
    two epochs. A task whose loss falls more slowly gets more weight; a
    higher temperature ``T`` makes the weights more even.

    ``Task.weight`` multiplies ``w_k``. The loss history is a non-trainable
    variable (restored on resume), updated by ``on_epoch_end`` from the logs'
    ``<task>_loss``; ``MultiTaskRanker.fit`` attaches the callback that calls
    it (``mtrec.weighting.EpochUpdate``), so a plain ``model.fit`` trains
    with DWA.

    Args:
      task_names: the supervised outputs.
      temperature: ``T``. Default 2, the paper's value.

    Example:

    >>> w = DynamicWeightAverage(["ctr", "ctcvr"])
    >>> w.on_epoch_end(0, {"ctr_loss": 0.5, "ctcvr_loss": 0.2})
    >>> w.on_epoch_end(1, {"ctr_loss": 0.25, "ctcvr_loss": 0.2})
    >>> [round(float(v), 3) for v in w.task_weights().values()]  # r = 0.5, 1
    [0.876, 1.124]

    References:
      Liu, Johns & Davison, "End-to-End Multi-Task Learning with Attention",
      CVPR 2019.
    """

    def __init__(self, task_names: Sequence[str], temperature: float = 2.0, **kwargs):
        super().__init__(task_names, **kwargs)
        if not float(temperature) > 0:
            raise ValueError(
                f"`temperature` must be > 0. Received: `temperature={temperature!r}`"
            )
        self.temperature = float(temperature)
        self.loss_history = self.add_weight(
            name="loss_history",
            shape=(2, self.num_tasks),
            initializer="zeros",
            trainable=False,
        )
        self.epochs_seen = self.add_weight(
            name="epochs_seen",
            shape=(),
            dtype=tf.int64,
            initializer="zeros",
            trainable=False,
        )

    def compute_weights(self, losses, training=None):
        """``K · softmax(r / T)`` from the loss history; 1 before two epochs."""
        weights = tf.where(
            self.epochs_seen >= 2,
            dwa_weights(self.loss_history[0], self.loss_history[1], self.temperature),
            tf.ones([self.num_tasks]),
        )
        return self._unstack(weights)

    def on_epoch_end(self, epoch: int, logs: Mapping) -> None:
        current = epoch_losses(self.task_names, logs)
        previous = self.loss_history.numpy()[0]
        self.loss_history.assign(np.stack([current, previous]))
        self.epochs_seen.assign_add(1)
        self._record(self.with_task_weight(self.compute_weights({})))

    def get_config(self):
        config = super().get_config()
        config["temperature"] = self.temperature
        return config
