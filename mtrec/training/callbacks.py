"""Keras callbacks of the training loop."""

import logging

import tensorflow as tf
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)


class ProgressBar(tf.keras.callbacks.Callback):
    """A tqdm progress bar per epoch showing the running loss and task metrics.

    (``tqdm.keras.TqdmCallback`` binds to Keras 3; this one is for tf-keras.)

    Args:
      steps_per_epoch: bar length; ``None`` for an open-ended bar.
      refresh_every: update the bar every this many batches.
    """

    def __init__(self, steps_per_epoch: int | None = None, refresh_every: int = 10):
        super().__init__()
        self.steps_per_epoch = steps_per_epoch
        self.refresh_every = max(1, int(refresh_every))
        self._bar = None
        self._epochs = None

    def on_train_begin(self, logs=None):
        self._epochs = self.params.get("epochs")

    def on_epoch_begin(self, epoch, logs=None):
        total = self.params.get("steps") or self.steps_per_epoch
        self._bar = tqdm(
            total=total,
            desc=f"epoch {epoch + 1}/{self._epochs}",
            unit="batch",
            leave=True,
        )

    def on_train_batch_end(self, batch, logs=None):
        if (batch + 1) % self.refresh_every == 0 and self._bar is not None:
            self._bar.update(batch + 1 - self._bar.n)
            shown = {
                k: f"{float(v):.4f}"
                for k, v in (logs or {}).items()
                if k.endswith(("loss", "auc"))
            }
            self._bar.set_postfix(shown, refresh=False)

    def on_epoch_end(self, epoch, logs=None):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class CheckpointEveryEpoch(tf.keras.callbacks.Callback):
    """Saves ``model`` and ``optimizer`` through a ``tf.train.CheckpointManager``
    at the end of every epoch."""

    def __init__(self, manager: tf.train.CheckpointManager):
        super().__init__()
        self.manager = manager

    def on_epoch_end(self, epoch, logs=None):
        path = self.manager.save(checkpoint_number=epoch + 1)
        logger.info("checkpoint written: %s", path)
