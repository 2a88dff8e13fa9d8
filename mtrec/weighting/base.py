"""The interface every loss-weighting strategy implements."""

from collections.abc import Sequence

import tensorflow as tf


class LossWeighting(tf.keras.layers.Layer):
    """Combines per-task losses into the training objective.

    A strategy is a layer so that learnable weights are trained, checkpointed
    and restored with the model. ``call({task: L_k}) -> L_total``;
    ``task_weights()`` returns the current effective weight of each task (for
    logging).

    Args:
      task_names: names of the supervised outputs, in a fixed order.
    """

    def __init__(self, task_names: Sequence[str], **kwargs):
        super().__init__(**kwargs)
        task_names = list(task_names)
        if not task_names:
            raise ValueError(
                f"`task_names` must not be empty. Received: `task_names={task_names}`"
            )
        self.task_names = task_names

    def _check(self, losses: dict) -> None:
        if set(losses) != set(self.task_names):
            raise ValueError(
                f"{type(self).__name__} expects losses for {sorted(self.task_names)}, "
                f"got {sorted(losses)}"
            )

    def task_weights(self) -> dict[str, tf.Tensor]:
        raise NotImplementedError

    def get_config(self):
        config = super().get_config()
        config["task_names"] = self.task_names
        return config
