"""``fit(model, datasets, config, run_dir)``: the training loop of a run."""

import dataclasses
import logging
import math
import os
import pathlib
from collections.abc import Sequence

import tensorflow as tf

from mtrec.affinity.tracking import AffinityTracker
from mtrec.data.reader import surface_data_errors
from mtrec.models.ranker import MultiTaskRanker
from mtrec.training.builders import build_optimizer
from mtrec.training.callbacks import EpochLossGuard
from mtrec.training.callbacks import EpochSelection
from mtrec.training.callbacks import NonFiniteLossGuard
from mtrec.training.callbacks import ProgressBar
from mtrec.training.callbacks import RunState
from mtrec.training.callbacks import WeightingUpdate
from mtrec.training.config import ConfigError
from mtrec.training.config import RunConfig
from mtrec.training.config import selection_mode
from mtrec.training.config import selection_terms
from mtrec.training.distribution import coordinated
from mtrec.training.distribution import multi_process
from mtrec.training.evaluate import MissingColumnError
from mtrec.training.evaluate import Predictor
from mtrec.training.evaluate import evaluate_model
from mtrec.training.evaluate import selection_score
from mtrec.training.inputs import Datasets
from mtrec.training.state import TrainingState
from mtrec.training.step_checkpoint import RestoreEpochMetrics
from mtrec.training.step_checkpoint import StepCheckpoint

logger = logging.getLogger(__name__)

#: Files and folders ``fit`` writes under the run directory.
CHECKPOINT_DIR = "checkpoints"
BEST_CHECKPOINT_DIR = "checkpoints/best"
TENSORBOARD_DIR = "tensorboard"
TRAINING_STATE_FILE = "training_state.json"


def steps_per_epoch(config: RunConfig, train_rows: int) -> int:
    """``train.steps_per_epoch``, else the batches of one pass over the rows."""
    tc = config.train
    return tc.steps_per_epoch or math.ceil(train_rows / tc.batch_size)


def compile_model(
    model: MultiTaskRanker,
    config: RunConfig,
    total_steps: int | None = None,
    epoch_steps: int | None = None,
) -> tf.keras.optimizers.Optimizer:
    """Compiles ``model`` with the config's optimiser and loop options.

    ``train.optimizer`` and the learning rate (``train.lr_schedule``: a
    cosine decay over ``total_steps`` with ``cosine``, over every epoch of
    ``epoch_steps`` with ``cosine_epoch``; constant without the step counts),
    ``train.steps_per_execution`` and ``train.jit_compile``.

    Returns:
      The optimiser.
    """
    tc = config.train
    optimizer = build_optimizer(
        config, model, total_steps=total_steps, epoch_steps=epoch_steps
    )
    model.compile(
        optimizer=optimizer,
        steps_per_execution=tc.steps_per_execution,
        jit_compile=tc.jit_compile,
    )
    return optimizer


def fit(
    model: MultiTaskRanker,
    datasets: Datasets,
    config: RunConfig,
    run_dir: str | os.PathLike,
    state: TrainingState | None = None,
    callbacks: Sequence[tf.keras.callbacks.Callback] = (),
    predictor: Predictor | None = None,
) -> TrainingState:
    """Trains a built model for ``train.epochs`` epochs, checkpointing each.

    Compiles the model (:func:`compile_model`), restores the checkpoint
    ``state`` names when resuming, and trains with mtrec's callbacks: the loss
    weighting's epoch updates, a NaN/inf loss check (after every batch with
    ``train.progress``, else after every epoch), the per-epoch selection and
    early stopping (``train.selection``), a checkpoint and
    ``training_state.json`` after every epoch, TensorBoard (per epoch unless
    ``train.tensorboard_update_freq``) and the progress bar
    (``train.progress``). Extra ``callbacks`` run after those. With
    ``train.selection.restore_best`` the best epoch's weights are restored at
    the end.

    Writes under ``run_dir``: ``checkpoints/`` (``best/`` with selection),
    ``tensorboard/`` and ``training_state.json``.

    Args:
      model: from :func:`mtrec.training.build_model` (variables created).
      datasets: from :func:`mtrec.training.datasets`.
      config: the run's config.
      run_dir: the run directory.
      state: where a resumed run stands; ``None`` starts a new run.
      callbacks: extra Keras callbacks.
      predictor: the model's :class:`Predictor` for the per-epoch selection
        (default: a new one); pass the one the final evaluation will use, so
        that the model's prediction is traced once per run.

    Returns:
      The state after training (also saved as ``training_state.json``).

    Raises:
      NonFiniteLossError: a task's loss became NaN or infinite (named).
      DataError: a bad value in the data files (named).
    """
    run_dir = pathlib.Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    tc = config.train
    if state is None:
        state = TrainingState(train_rows=datasets.train_rows)
        state.save(run_dir / TRAINING_STATE_FILE)
    steps = steps_per_epoch(config, state.train_rows or datasets.train_rows)
    optimizer = compile_model(
        model, config, total_steps=steps * tc.epochs, epoch_steps=steps
    )
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
    mid = _resume(checkpoint, model, datasets, state, run_dir)
    loop = _callbacks(
        model, datasets, config, run_dir, state, checkpoint, steps, predictor
    )
    loop.callbacks += list(callbacks)  # the caller's, after mtrec's
    stopped = state.selection is not None and state.selection.stopped_early
    with surface_data_errors():
        if mid is not None and state.epochs_done < tc.epochs and not stopped:
            _finish_epoch(model, datasets, state, steps, mid, loop, run_dir)
            stopped = state.selection is not None and state.selection.stopped_early
        if state.epochs_done < tc.epochs and not stopped:
            logger.info(
                "training on %d rows, %d steps per epoch", state.train_rows, steps
            )
            train, fit_steps = _training_input(
                model, datasets, state, steps, tc.steps_per_epoch
            )
            model.fit(
                train,
                epochs=tc.epochs,
                initial_epoch=state.epochs_done,
                steps_per_epoch=fit_steps,
                callbacks=loop.callbacks,
                verbose=0,
            )
    selection = loop.selection
    if selection is not None and tc.selection.restore_best and selection.best_epoch:
        best = run_dir / BEST_CHECKPOINT_DIR / f"ckpt-{selection.best_epoch}"
        tf.train.Checkpoint(model=model).restore(str(best)).expect_partial()
        logger.info("restored the best epoch, %d", selection.best_epoch)
    return state


def _resume(checkpoint, model, datasets: Datasets, state, run_dir: pathlib.Path):
    """Restores the checkpoint ``state`` names, if any; the interrupted
    epoch's ``MidEpoch`` when training resumes within an epoch, else ``None``.

    A step checkpoint within the epoch after ``epochs_done`` is newer than
    the epoch checkpoint; it is used only where the training data can start
    at a batch (``datasets.train_from``).
    """
    mid = state.mid_epoch if datasets.train_from is not None else None
    name = mid.checkpoint if mid is not None else state.checkpoint
    if mid is not None or state.epochs_done:
        _restore(checkpoint, model, run_dir / CHECKPOINT_DIR, name)
    return mid


@dataclasses.dataclass
class _Loop:
    """The callbacks of a run (mtrec's, then the caller's), and the two
    that ``fit`` asks again."""

    callbacks: list
    selection: EpochSelection | None
    step_checkpoint: StepCheckpoint | None


def _callbacks(
    model, datasets, config, run_dir, state, checkpoint, steps, predictor=None
) -> _Loop:
    """mtrec's callbacks of a run, in their order: the weighting's epoch
    updates, the loss check, the selection, the step checkpoints, the
    affinity tracker, the run state, TensorBoard and the progress bar."""
    tc = config.train
    tasks = list(model.supervised_tasks())
    # Under parameter_server the steps run asynchronously on the workers: a
    # per-batch callback would wait for every step's logs, so the loss check
    # runs per epoch and there is no progress bar.
    per_batch = tc.progress and not coordinated(model.distribute_strategy)
    loop = [
        WeightingUpdate(),
        NonFiniteLossGuard(tasks) if per_batch else EpochLossGuard(tasks),
    ]
    selection = _epoch_selection(model, datasets, config, run_dir, state, predictor)
    if selection is not None:
        loop.append(selection)
    step_checkpoint = None
    if tc.checkpoint_every_steps and datasets.train_from is not None:
        step_checkpoint = StepCheckpoint(
            checkpoint,
            run_dir / CHECKPOINT_DIR,
            run_dir / TRAINING_STATE_FILE,
            state,
            every=tc.checkpoint_every_steps,
            steps=steps,
        )
        loop.append(step_checkpoint)
    if tc.affinity_every_steps:
        tracker = AffinityTracker(every=tc.affinity_every_steps)
        tracker.attach(model)
        loop.append(tracker)  # before RunState: its logs reach the history
    manager = tf.train.CheckpointManager(
        checkpoint, str(run_dir / CHECKPOINT_DIR), max_to_keep=tc.checkpoints_to_keep
    )
    loop += [
        RunState(manager, run_dir / TRAINING_STATE_FILE, state, selection),
        tf.keras.callbacks.TensorBoard(
            str(run_dir / TENSORBOARD_DIR), update_freq=tc.tensorboard_update_freq
        ),
    ]
    if per_batch:
        loop.append(ProgressBar(steps_per_epoch=steps))
    return _Loop(loop, selection, step_checkpoint)


def _epoch_selection(
    model, datasets, config, run_dir, state, predictor=None
) -> EpochSelection | None:
    """The per-epoch selection and early stopping of ``train.selection``
    (``None`` without a metric), on the selection data or else the eval data,
    scored by ``predictor`` (default: a new :class:`Predictor`)."""
    sc = config.train.selection
    if sc.metric is None:
        return None
    terms = selection_terms(
        sc.metric, {name: t.kind for name, t in model.supervised_tasks().items()}
    )
    select_ds = datasets.eval if datasets.selection is None else datasets.selection
    # Traced once for every epoch's selection (and the final evaluation,
    # when the caller shares it).
    predictor = predictor or Predictor(model)
    return EpochSelection(
        evaluate=lambda: evaluated(model, select_ds, config, predictor),
        score=lambda report: _selection_score(report, terms),
        best_manager=tf.train.CheckpointManager(
            tf.train.Checkpoint(model=model),
            str(run_dir / BEST_CHECKPOINT_DIR),
            max_to_keep=1,
        ),
        mode=selection_mode(sc),
        patience=sc.patience,
        min_delta=sc.min_delta,
        state=state.selection,
    )


def _training_input(
    model,
    datasets: Datasets,
    state: TrainingState,
    steps: int,
    configured_steps: int | None,
):
    """``(x, steps_per_epoch)`` of ``model.fit`` under the model's strategy.

    ``steps``: the steps of an epoch; ``configured_steps``: the config's
    ``train.steps_per_epoch`` (``None``: the in-memory batches are iterated
    once per epoch).

    Multi-process strategies read one share of the rows per worker
    (:attr:`Datasets.train_shard`): a ``DatasetCreator`` the coordinator
    places on every worker (``parameter_server``), or a distributed dataset
    of one input pipeline per worker (``multi_worker_mirrored``).
    """
    strategy = model.distribute_strategy
    if multi_process(strategy):
        if datasets.train_shard is None:
            raise ValueError(
                f"{type(strategy).__name__} needs Datasets.train_shard (the "
                "per-worker input); build the datasets with mtrec.training.datasets"
            )

        def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
            return datasets.train_shard(context, state.epochs_done)

        if coordinated(strategy):
            return tf.keras.utils.experimental.DatasetCreator(dataset_fn), steps
        return strategy.distribute_datasets_from_function(dataset_fn), steps
    if datasets.train_from is None:
        return datasets.train, configured_steps
    # One stream over the remaining epochs: Keras keeps the iterator across
    # epochs when told the steps of each.
    return datasets.train_from(state.epochs_done), steps


def evaluated(model, dataset, config: RunConfig, predictor=None) -> dict:
    """``evaluate_model`` with the run's ``eval`` settings; its errors in the
    config's terms.

    Raises:
      ConfigError: ``eval.gauc_group`` is not a column of the data.
    """
    try:
        return evaluate_model(
            model, dataset, config.eval.oracle, config.eval.gauc_group, predictor
        )
    except MissingColumnError as err:
        raise ConfigError(f"'eval.gauc_group': {err}") from err


def _selection_score(report: dict, terms: dict) -> float:
    try:
        return selection_score(report, terms)
    except ValueError as err:
        raise ConfigError(f"'train.selection.metric': {err}") from err


def _finish_epoch(model, datasets, state, steps, mid, loop: _Loop, run_dir):
    """Trains the rest of the epoch a step checkpoint interrupted.

    Its batches are the tail of that epoch's (``start_batch``); the epoch's
    running metrics are restored after the first step, so the epoch-end
    callbacks see the logs the whole epoch would have given.
    """
    epoch = state.epochs_done
    logger.info(
        "resuming epoch %d at batch %d of %d", epoch + 1, mid.batches + 1, steps
    )
    if loop.step_checkpoint is not None:
        loop.step_checkpoint.offset = mid.batches
    saved = run_dir / CHECKPOINT_DIR / f"{mid.checkpoint}.metrics.npz"
    model.fit(
        datasets.train_from(epoch, mid.batches),
        epochs=epoch + 1,
        initial_epoch=epoch,
        steps_per_epoch=steps - mid.batches,
        callbacks=[RestoreEpochMetrics(saved), *loop.callbacks],
        verbose=0,
    )


def _restore(checkpoint, model, directory: pathlib.Path, name) -> None:
    optimizer = checkpoint.optimizer
    if isinstance(optimizer, tf.keras.optimizers.Optimizer):
        # Create the slots now so that the restore fills them.
        optimizer.build(model.trainable_variables)
    checkpoint.restore(str(directory / name)).assert_existing_objects_matched()
    logger.info(
        "restored %s (optimiser step %d)", name, int(optimizer.iterations.numpy())
    )


def selection_report(config: RunConfig, state: TrainingState) -> dict | None:
    """``metrics.json``'s ``selection`` entry: metric, mode and selection state."""
    if config.train.selection.metric is None or state.selection is None:
        return None
    return {
        "metric": config.train.selection.metric,
        "mode": selection_mode(config.train.selection),
        **dataclasses.asdict(state.selection),
    }
