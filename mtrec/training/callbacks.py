"""Keras callbacks of the training loop."""

import dataclasses
import logging
import math
import os
import pathlib
from collections.abc import Callable
from collections.abc import Mapping

import tensorflow as tf
from tqdm.auto import tqdm

from mtrec.training.state import SelectionState
from mtrec.training.state import TrainingState
from mtrec.weighting import EpochUpdate

logger = logging.getLogger(__name__)


class NonFiniteLossError(ArithmeticError):
    """A task's training loss became NaN or infinite; the message names it."""


class WeightingUpdate(EpochUpdate):
    """Feeds the epoch logs to the model's loss weighting (``EpochUpdate``).

    ``MultiTaskRanker.fit`` attaches an ``EpochUpdate`` itself unless its
    callbacks hold one; this subclass, first in the training loop's list,
    is that one, so each epoch is fed once. Put it first, before callbacks
    that checkpoint the model.
    """


def _non_finite(task_names, logs) -> str | None:
    """What is NaN or infinite in ``logs``: a task's loss or the total; or None."""
    logs = logs or {}
    bad = []
    for name in task_names:
        value = logs.get(f"{name}_loss")
        if value is not None and not math.isfinite(float(value)):
            bad.append(f"{name!r} ({float(value)})")
    if bad:
        return f"the loss of task {', '.join(bad)}"
    total = logs.get("loss")
    if total is not None and not math.isfinite(float(total)):
        return (
            f"the weighted total loss ({float(total)}; every task loss is finite, "
            "so the loss weighting produced it)"
        )
    return None


def _non_finite_error(what: str, where: str) -> NonFiniteLossError:
    return NonFiniteLossError(
        f"{what} is NaN or infinite at {where}. Check the labels and features of "
        "that task, lower train.learning_rate, or try another weighting."
    )


class NonFiniteLossGuard(tf.keras.callbacks.Callback):
    """Stops training with ``NonFiniteLossError`` when a loss is NaN or infinite.

    After every batch it checks each task's running loss (``<task>_loss``) and
    the total (``loss``), and names the first task whose loss is not finite,
    with the epoch and batch. Checking every batch copies the logs to the host
    after every step; :class:`EpochLossGuard` checks once per epoch instead.

    Args:
      task_names: the supervised outputs.
    """

    def __init__(self, task_names):
        super().__init__()
        self.task_names = list(task_names)
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        what = _non_finite(self.task_names, logs)
        if what is not None:
            where = f"epoch {self._epoch + 1}, batch {batch + 1}"
            raise _non_finite_error(what, where)


class EpochLossGuard(tf.keras.callbacks.Callback):
    """:class:`NonFiniteLossGuard` once per epoch: no work between batches.

    At the end of every epoch it checks each task's epoch loss and the total
    and raises ``NonFiniteLossError`` naming the task and the epoch. The epoch
    loss is a running mean, so it stays NaN (or infinite) once any batch of the
    epoch was: no bad batch goes unnoticed, it is only reported later.

    Args:
      task_names: the supervised outputs.
    """

    def __init__(self, task_names):
        super().__init__()
        self.task_names = list(task_names)

    def on_epoch_end(self, epoch, logs=None):
        what = _non_finite(self.task_names, logs)
        if what is not None:
            raise _non_finite_error(what, f"the end of epoch {epoch + 1}")


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
        self._seen = 0
        # Keras then hands over the logs as tensors instead of copying every
        # metric to the host after every batch; only refreshes read them.
        self._supports_tf_logs = True

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
        self._seen = 0

    def on_train_batch_end(self, batch, logs=None):
        self._seen = batch + 1
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
            # The bar ends at the batches done, not at the last refresh.
            self._bar.update(self._seen - self._bar.n)
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


#: Report entries that are counts, not metrics (not logged per epoch).
_COUNTS = ("rows", "positives", "gauc_groups", "gauc_rows")


class EpochSelection(tf.keras.callbacks.Callback):
    """Model selection and early stopping on held-out metrics.

    After every epoch, ``evaluate()`` returns the per-output evaluation report
    (``mtrec.training.evaluate.evaluate_model``); every metric is added to the
    epoch logs as ``val_<output>_<metric>`` (so to the history and
    TensorBoard), the selection score as ``val_selection``. When the score
    improves by more than ``min_delta`` the model is saved through
    ``best_manager``; after ``patience`` epochs without improvement training
    stops.

    Args:
      evaluate: returns the evaluation report.
      score: maps the report to the selection score.
      best_manager: checkpoint manager of the best model.
      mode: ``"max"`` or ``"min"``.
      patience: epochs without improvement before stopping (``None``: never).
      min_delta: smallest improvement.
      state: the ``SelectionState`` (or its dict) of a resumed run.
    """

    def __init__(
        self,
        evaluate: Callable[[], dict],
        score: Callable[[dict], float],
        best_manager: tf.train.CheckpointManager,
        mode: str = "max",
        patience: int | None = None,
        min_delta: float = 0.0,
        state: SelectionState | Mapping | None = None,
    ):
        super().__init__()
        self.evaluate = evaluate
        self.score = score
        self.best_manager = best_manager
        self.mode = mode
        self.patience = patience
        self.min_delta = float(min_delta)
        if isinstance(state, SelectionState):
            state = dataclasses.asdict(state)
        state = dict(state or {})
        self.best = state.get("best")
        self.best_epoch = state.get("best_epoch")
        self.wait = int(state.get("wait", 0))
        self.stopped_early = bool(state.get("stopped_early", False))

    def state(self) -> SelectionState:
        return SelectionState(
            best=self.best,
            best_epoch=self.best_epoch,
            wait=self.wait,
            stopped_early=self.stopped_early,
        )

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "max":
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        report = self.evaluate()
        for output, entry in report.items():
            for key, value in entry.items():
                if (
                    key not in _COUNTS
                    and isinstance(value, (int, float))
                    and not isinstance(value, bool)
                ):
                    logs[f"val_{output}_{key}"] = float(value)
        value = float(self.score(report))
        logs["val_selection"] = value
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch + 1, 0
            self.best_manager.save(checkpoint_number=epoch + 1)
            logger.info("epoch %d: selection score %.5f, the best", epoch + 1, value)
        else:
            self.wait += 1
            logger.info(
                "epoch %d: selection score %.5f, best %.5f at epoch %d",
                epoch + 1,
                value,
                self.best,
                self.best_epoch,
            )
            if self.patience is not None and self.wait >= self.patience:
                self.stopped_early = True
                self.model.stop_training = True
                logger.info("early stop: no improvement for %d epochs", self.patience)


class RunState(tf.keras.callbacks.Callback):
    """Checkpoints the model and optimiser after every epoch and records progress.

    Writes the checkpoint ``ckpt-<epoch>`` first, then (atomically) the
    :class:`TrainingState` ``state`` to the JSON file ``path``: ``epochs_done``,
    ``checkpoint``, ``optimizer_steps``, the per-epoch ``history`` of every log
    and the ``selection`` state. ``mtrec.training.resume_run`` restores the
    checkpoint the file names, so a process killed at any point resumes from
    the last complete epoch. Put it after every callback that adds to the logs.

    Args:
      manager: the run's checkpoint manager.
      path: the JSON file.
      state: the state so far (updated in place).
      selection: the ``EpochSelection`` callback, if any.
    """

    def __init__(
        self,
        manager: tf.train.CheckpointManager,
        path: str | os.PathLike,
        state: TrainingState,
        selection: EpochSelection | None = None,
    ):
        super().__init__()
        self.manager = manager
        self.path = pathlib.Path(path)
        self.state = state
        self.selection = selection

    def on_epoch_end(self, epoch, logs=None):
        checkpoint = self.manager.save(checkpoint_number=epoch + 1)
        for key, value in (logs or {}).items():
            self.state.history.setdefault(key, []).append(float(value))
        self.state.epochs_done = epoch + 1
        self.state.mid_epoch = None  # the epoch is whole now
        self.state.checkpoint = os.path.basename(checkpoint)
        self.state.optimizer_steps = int(self.model.optimizer.iterations.numpy())
        if self.selection is not None:
            self.state.selection = self.selection.state()
        self.state.save(self.path)
        logger.info("checkpoint written: %s", checkpoint)


__all__ = [
    "CheckpointEveryEpoch",
    "EpochLossGuard",
    "EpochSelection",
    "NonFiniteLossError",
    "NonFiniteLossGuard",
    "ProgressBar",
    "RunState",
    "WeightingUpdate",
]
