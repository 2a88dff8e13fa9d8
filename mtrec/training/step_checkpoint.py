"""Checkpoints within an epoch, so a killed run resumes at the next batch.

The native input path is a function of ``(seed, epoch, batch)``
(:func:`mtrec.data.native_dataset` takes ``start_batch``), so the input
position is two integers in ``training_state.json`` (``epochs_done`` and
``mid_epoch.batches``), written after the model and optimiser checkpoint.

The epoch's running metrics (the mean losses and training AUCs Keras
accumulates, which the epoch-level loss weightings ``dwa``, ``lbtw`` and
``dtp`` read at the epoch end) are saved beside the checkpoint and added back
after the resumed epoch's first step: every Keras metric used here keeps
additive state (``total``/``count``, confusion counts), and float addition
commutes, so with ``steps_per_execution`` 1 the epoch's logs are those of the
uninterrupted run too.
"""

import logging
import os
import pathlib

import numpy as np
import tensorflow as tf

from mtrec.training.state import MidEpochState
from mtrec.training.state import TrainingState

logger = logging.getLogger(__name__)

#: Step checkpoints live in ``checkpoints/<MID_DIR>/`` (the last one only).
MID_DIR = "mid"


def metric_values(model: tf.keras.Model) -> dict[str, np.ndarray]:
    """``{"<metric>/<index>": value}`` of every variable of ``model.metrics``."""
    return {
        f"{metric.name}/{i}": variable.numpy()
        for metric in model.metrics
        for i, variable in enumerate(metric.variables)
    }


class StepCheckpoint(tf.keras.callbacks.Callback):
    """Writes a checkpoint, the epoch's metrics and the input position every
    ``every`` steps within an epoch (not at its last step: ``RunState``
    writes the epoch checkpoint then).

    Args:
      checkpoint: the run's ``tf.train.Checkpoint`` (model and optimiser).
      directory: the run's ``checkpoints/`` directory.
      state_path: ``training_state.json``.
      state: the run's state (updated in place).
      every: steps between checkpoints.
      steps: steps of an epoch.
    """

    def __init__(
        self,
        checkpoint: tf.train.Checkpoint,
        directory: str | os.PathLike,
        state_path: str | os.PathLike,
        state: TrainingState,
        every: int,
        steps: int,
    ):
        super().__init__()
        self.directory = pathlib.Path(directory)
        self.manager = tf.train.CheckpointManager(
            checkpoint, str(self.directory / MID_DIR), max_to_keep=1
        )
        self.state_path = pathlib.Path(state_path)
        self.state = state
        self.every = int(every)
        self.steps = int(steps)
        #: Batches of the epoch done before this ``fit`` began (a resumed epoch).
        self.offset = 0

    def on_epoch_end(self, epoch, logs=None):
        self.offset = 0

    def on_train_batch_end(self, batch, logs=None):
        done = self.offset + batch + 1
        if done % self.every or done >= self.steps:
            return
        steps = int(self.model.optimizer.iterations.numpy())
        path = self.manager.save(checkpoint_number=steps)
        np.savez(f"{path}.metrics.npz", **metric_values(self.model))
        self.state.mid_epoch = MidEpochState(
            batches=done,
            checkpoint=f"{MID_DIR}/{os.path.basename(path)}",
            optimizer_steps=steps,
        )
        self.state.save(self.state_path)
        logger.debug("step checkpoint written: %s (batch %d)", path, done)


class RestoreEpochMetrics(tf.keras.callbacks.Callback):
    """Adds a step checkpoint's saved metric state after the first step.

    Put it first, so the other callbacks see the restored running metrics.

    Args:
      path: the ``<checkpoint>.metrics.npz`` that :class:`StepCheckpoint` wrote.
    """

    def __init__(self, path: str | os.PathLike):
        super().__init__()
        with np.load(path) as saved:
            self.saved = {key: saved[key] for key in saved.files}
        self._pending = True

    def on_train_batch_end(self, batch, logs=None):
        if not self._pending:
            return
        self._pending = False
        for metric in self.model.metrics:
            for i, variable in enumerate(metric.variables):
                value = self.saved.get(f"{metric.name}/{i}")
                if value is not None:
                    variable.assign_add(tf.cast(value, variable.dtype))
