"""Loss-balanced task weighting: weights from each loss's progress."""

from collections.abc import Sequence

import tensorflow as tf

from mtrec.weighting.base import EPSILON
from mtrec.weighting.base import LossWeighting
from mtrec.weighting.base import reference_losses

REFERENCES = ("epoch", "start")


def lbtw_weights(current, reference, alpha: float) -> tf.Tensor:
    """``w_k = (L_k(t) / L_k(0))^α``."""
    current = tf.convert_to_tensor(current, tf.float32)
    reference = tf.convert_to_tensor(reference, tf.float32)
    return tf.pow(current / tf.maximum(reference, EPSILON), alpha)


@tf.keras.utils.register_keras_serializable(package="mtrec")
class LossBalancedTaskWeighting(LossWeighting):
    """Loss-Balanced Task Weighting (LBTW).

    At every step ``w_k(t) = (L_k(t) / L_k(0))^α`` (gradient stopped), where
    ``L_k(0)`` is the task's loss on the first batch of the current epoch
    (``reference="epoch"``, as in the paper) or of the whole run
    (``reference="start"``). A task whose loss has already fallen a lot is
    weighed down, which limits negative transfer from tasks that are learned
    quickly; ``α = 0`` is equal weighting. The references are
    non-trainable variables; ``on_epoch_begin`` clears them for a new epoch
    (``MultiTaskRanker.fit`` attaches the callback that calls it,
    ``mtrec.weighting.EpochUpdate``, so a plain ``model.fit`` resets the
    reference every epoch). ``Task.weight`` multiplies ``w_k``.

    Args:
      task_names: the supervised outputs.
      alpha: ``α >= 0``. Default 0.5.
      reference: ``"epoch"`` (default) or ``"start"``.

    Example:

    >>> w = LossBalancedTaskWeighting(["ctr", "ctcvr"], alpha=0.5)
    >>> _ = w({"ctr": tf.constant(0.8), "ctcvr": tf.constant(0.4)}, training=True)
    >>> total = w({"ctr": tf.constant(0.2), "ctcvr": tf.constant(0.4)}, training=True)
    >>> [round(float(v), 3) for v in w.task_weights().values()]  # sqrt(1/4), 1
    [0.5, 1.0]

    References:
      Liu, Liang & Gitter, "Loss-Balanced Task Weighting to Reduce Negative
      Transfer in Multi-Task Learning", AAAI 2019 (student abstract).
    """

    def __init__(
        self,
        task_names: Sequence[str],
        alpha: float = 0.5,
        reference: str = "epoch",
        **kwargs,
    ):
        super().__init__(task_names, **kwargs)
        if not float(alpha) >= 0:
            raise ValueError(f"`alpha` must be >= 0. Received: `alpha={alpha!r}`")
        if reference not in REFERENCES:
            raise ValueError(
                f"`reference` must be one of {REFERENCES}. "
                f"Received: `reference={reference!r}`"
            )
        self.alpha = float(alpha)
        self.reference = reference
        self.reference_losses = self._task_state("reference_losses")
        self.recorded = self._task_state("recorded")

    def compute_weights(self, losses, training=None):
        current = tf.stop_gradient(self._stack(losses))
        reference = reference_losses(
            self.reference_losses, self.recorded, current, training
        )
        return self._unstack(lbtw_weights(current, reference, self.alpha))

    def on_epoch_begin(self, epoch: int) -> None:
        if self.reference == "epoch":
            self.recorded.assign(tf.zeros([self.num_tasks]))

    def get_config(self):
        config = super().get_config()
        config.update({"alpha": self.alpha, "reference": self.reference})
        return config
