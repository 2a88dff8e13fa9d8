"""``train()`` and ``resume_run()``: prepare, build, fit, evaluate, export.

The steps are public (``prepare``, ``build_model``, ``datasets``, ``fit``,
``evaluate_model``); this module composes them under the run's
``tf.distribute`` strategy and writes the run directory
(:mod:`mtrec.training.run_dir`): ``config.yaml``, ``preprocessing/``,
``metrics.json`` (and, through ``fit``, ``checkpoints/``, ``tensorboard/``,
``training_state.json``).
"""

import dataclasses
import datetime
import logging
import os
import pathlib
import shutil
import tempfile
from collections.abc import Sequence

import tensorflow as tf

from mtrec.affinity.tracking import affinity_from_history
from mtrec.data.reader import surface_data_errors
from mtrec.features.feature_set import FeatureSet
from mtrec.json_file import write_json
from mtrec.models.ranker import MultiTaskRanker
from mtrec.plots import plot_run
from mtrec.training.config import ConfigError
from mtrec.training.config import RunConfig
from mtrec.training.config import save_config
from mtrec.training.config import validate_config
from mtrec.training.distribution import check_batch_size
from mtrec.training.distribution import distribution_report
from mtrec.training.distribution import is_chief
from mtrec.training.distribution import make_strategy
from mtrec.training.distribution import multi_process
from mtrec.training.evaluate import Predictor
from mtrec.training.evaluate import gate_report
from mtrec.training.inputs import Datasets
from mtrec.training.inputs import datasets as make_datasets
from mtrec.training.loop import CHECKPOINT_DIR
from mtrec.training.loop import TRAINING_STATE_FILE
from mtrec.training.loop import evaluated
from mtrec.training.loop import fit
from mtrec.training.loop import selection_report
from mtrec.training.model import build_model
from mtrec.training.preflight import preflight
from mtrec.training.prepared import MemorySource
from mtrec.training.prepared import load_prepared_run
from mtrec.training.prepared import prepare
from mtrec.training.run_dir import CONFIG_FILE
from mtrec.training.run_dir import METRICS_FILE
from mtrec.training.run_dir import PREPROCESSING_DIR
from mtrec.training.run_dir import RUN_EXPORT_DIR
from mtrec.training.run_dir import WARMUP_ROWS
from mtrec.training.run_dir import RunResult
from mtrec.training.run_dir import checked_run_dir
from mtrec.training.run_dir import export_model
from mtrec.training.run_dir import load_run_config
from mtrec.training.run_dir import restore_trained_weights
from mtrec.training.run_status import marked_if_failed
from mtrec.training.state import TrainingState
from mtrec.training.tables import Table

logger = logging.getLogger(__name__)


def _new_run_dir(config: RunConfig) -> pathlib.Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    run_dir = pathlib.Path(config.runs_dir) / f"{config.name}-{stamp}"
    run_dir.mkdir(parents=True, exist_ok=False)
    return run_dir


def _seed(config: RunConfig) -> None:
    tf.keras.utils.set_random_seed(config.seed)
    if config.train.deterministic:
        tf.config.experimental.enable_op_determinism()


def train(
    config: RunConfig,
    run_dir: str | os.PathLike | None = None,
    callbacks: Sequence[tf.keras.callbacks.Callback] = (),
    *,
    train_rows: Table | None = None,
    eval_rows: Table | None = None,
    overwrite: bool = False,
) -> RunResult:
    """Trains and evaluates the model a config describes, then exports it.

    ``prepare`` + ``build_model`` + ``datasets`` + ``fit`` + ``evaluate_model``
    + export, with the run directory: ``config.yaml`` (resolved, features
    inline), ``preprocessing/`` (vocabularies, dense statistics),
    ``checkpoints/`` (one per epoch, and ``checkpoints/best/`` with
    ``train.selection``), ``training_state.json`` (a ``TrainingState``, for
    ``resume_run``), ``tensorboard/`` and ``metrics.json``; exports a
    SavedModel to ``<export.base>/<version>/`` when ``export.enabled``. Extra
    Keras ``callbacks`` run after mtrec's own. ``train_rows`` / ``eval_rows``
    train on in-memory tables instead of ``data.train`` (see ``prepare``; such
    a run cannot be resumed from its directory).

    ``metrics.json`` holds ``eval`` (per output: AUC, GAUC with
    ``eval.gauc_group``, log loss, calibration, ECE, oracle AUC), ``train``
    (per epoch: ``loss``, ``<output>_loss``, ``weight_<output>`` (the
    effective loss weight), training metrics, and ``val_*`` with selection),
    and ``selection`` (best epoch and score).

    ``run_dir`` holding a run already is refused unless ``overwrite`` (then
    the old run is deleted first).

    Raises:
      NonFiniteLossError: a task's loss became NaN or infinite (named).
      FileExistsError: ``run_dir`` holds a run and ``overwrite`` is False.
    """
    validate_config(config, in_memory=train_rows is not None)
    # Before any other op: multi_worker_mirrored configures the runtime.
    strategy = make_strategy(config)  # the cluster is checked before any data
    check_batch_size(config, strategy.num_replicas_in_sync)
    preflight(config, run_dir)  # specs, model, names, directories: before data
    _seed(config)
    if not is_chief(strategy):
        # A non-chief mirrored worker trains in lock-step and writes nothing
        # that lasts (the chief writes the run).
        run_dir = tempfile.mkdtemp(prefix="mtrec-worker-")
    run_dir = pathlib.Path(run_dir) if run_dir else None
    created = run_dir is None or not run_dir.exists()
    if run_dir is None:
        run_dir = _new_run_dir(config)
    elif (run_dir / CONFIG_FILE).exists() or (run_dir / TRAINING_STATE_FILE).exists():
        if not overwrite:
            raise FileExistsError(
                f"{run_dir} already holds a run; continue it with `mtrec resume "
                f"{run_dir}`, choose another --run-dir, or pass --overwrite to "
                "replace it"
            )
        logger.warning("replacing the run in %s (overwrite)", run_dir)
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        prepared = prepare(
            config, train_rows, eval_rows, preprocessing_dir=run_dir / PREPROCESSING_DIR
        )
    except BaseException:
        if created:  # bad data or config: leave no half-made run behind
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    config = prepared.config
    save_config(config, run_dir / CONFIG_FILE)
    state = TrainingState(
        train_rows=prepared.train_rows,
        train_rows_dropped=prepared.train_rows_dropped,
    )
    state.save(run_dir / TRAINING_STATE_FILE)
    warmup = None
    if isinstance(prepared.source, MemorySource):
        warmup = {
            name: prepared.source.eval[name][:WARMUP_ROWS]
            for name in prepared.feature_set.names
        }
    with marked_if_failed(run_dir):
        return _run(strategy, prepared, config, run_dir, state, callbacks, warmup)


def _run(
    strategy: tf.distribute.Strategy,
    prepared,
    config: RunConfig,
    run_dir: pathlib.Path,
    state: TrainingState,
    callbacks: Sequence[tf.keras.callbacks.Callback],
    warmup: dict | None = None,
) -> RunResult:
    """Builds, fits, evaluates and exports under ``strategy``.

    One process (``none``, ``mirrored``): all under the strategy's scope. A
    multi-process strategy fits under its scope; then the chief restores the
    trained weights from its checkpoint into a one-process copy of the model
    and evaluates and exports that (no sharded or mirrored variable reaches
    the export), and a non-chief worker removes its scratch directory.
    """
    with strategy.scope():  # variables, optimiser, fit
        model = build_model(prepared, config)
        report = distribution_report(config, model)
        for name, shards in report.get("sharded_variables", {}).items():
            logger.info(
                "%s: %d shards on %s",
                name,
                len(shards),
                ", ".join(sorted({shard["device"] for shard in shards})),
            )
        data = make_datasets(prepared, config)
        if multi_process(strategy):
            state = fit(model, data, config, run_dir, state, callbacks)
        else:
            # One trace of the model's prediction for the epochs' selection
            # and the final evaluation.
            predictor = Predictor(model)
            state = fit(model, data, config, run_dir, state, callbacks, predictor)
            return _evaluate_export(
                config,
                run_dir,
                prepared.feature_set,
                model,
                data,
                state,
                warmup,
                report,
                predictor,
            )
    if not is_chief(strategy):
        shutil.rmtree(run_dir, ignore_errors=True)
        return RunResult(run_dir, {}, model, prepared.feature_set, chief=False)
    local = build_model(prepared, config)
    path = restore_trained_weights(local, run_dir, config)
    logger.info("evaluating and exporting %s on the chief", path)
    return _evaluate_export(
        config, run_dir, prepared.feature_set, local, data, state, warmup, report
    )


#: Keys ``resume_run`` may override: where the run trains and how long.
RESUME_OVERRIDES = ("train.distribution.", "train.epochs=")


def _check_resume_overrides(overrides: Sequence[str]) -> None:
    """Raises ``ConfigError`` on the first override ``resume`` may not make."""
    for assignment in overrides:
        if not assignment.startswith(RESUME_OVERRIDES):
            raise ConfigError(
                "resume can change only train.distribution.* and train.epochs "
                f"(the rest is fixed by the checkpoint). Received: {assignment!r}"
            )


def _resume_state(run_dir: pathlib.Path) -> TrainingState:
    """The run's training state, once its file and the checkpoint it names
    (mid-epoch, else end of epoch) are known to exist.

    Raises:
      FileNotFoundError: no training state file, or its checkpoint is gone.
      ConfigError: the training state file cannot be read.
    """
    state_path = run_dir / TRAINING_STATE_FILE
    if not state_path.is_file():
        raise FileNotFoundError(
            f"{run_dir} has no {TRAINING_STATE_FILE}; it was not started by this "
            "version of mtrec train"
        )
    state = TrainingState.load(state_path)
    checkpoint = state.mid_epoch.checkpoint if state.mid_epoch else state.checkpoint
    index = run_dir / CHECKPOINT_DIR / f"{checkpoint}.index"
    if checkpoint is not None and not index.is_file():
        raise FileNotFoundError(
            f"{run_dir}: the checkpoint {TRAINING_STATE_FILE} names is gone "
            f"({index} is missing), so the run cannot continue; start it again "
            f"with `mtrec train --run-dir {run_dir} --overwrite`"
        )
    return state


def resume_run(
    run_dir: str | os.PathLike,
    callbacks: Sequence[tf.keras.callbacks.Callback] = (),
    overrides: Sequence[str] = (),
) -> RunResult:
    """Continues a run that was interrupted, from its last complete epoch.

    Rebuilds the model from the run directory (config, preprocessing),
    restores the model, the optimiser (so its step count continues) and the
    loss weighting's state (learnable weights, loss histories) from the
    checkpoint ``training_state.json`` names, then trains the remaining
    epochs and evaluates and exports as ``train`` does. An epoch interrupted
    midway continues at its last step checkpoint
    (``train.checkpoint_every_steps``), else is trained again from its
    start. A run that had already finished
    is evaluated and exported again.

    ``overrides`` (``key=value``) may change ``train.distribution.*`` (resume
    a one-process run on a cluster, or the other way: the checkpoints hold
    whole tables either way) and ``train.epochs`` (train a finished run
    longer); the run's ``config.yaml`` is updated.

    Raises:
      FileNotFoundError: not a run directory, or no training state.
      ConfigError: the training state file cannot be read (named), or an
        override of another key.
    """
    _check_resume_overrides(overrides)
    run_dir = checked_run_dir(run_dir)
    state = _resume_state(run_dir)
    config = load_run_config(run_dir, overrides)
    if not config.data.train:
        raise ConfigError(
            f"{run_dir} was trained on in-memory tables (its config has no "
            "'data.train'); train it again with the same tables instead of resuming"
        )
    strategy = make_strategy(config)
    check_batch_size(config, strategy.num_replicas_in_sync)
    _seed(config)
    if overrides and is_chief(strategy):
        save_config(config, run_dir / CONFIG_FILE)
    if not is_chief(strategy):
        # A non-chief mirrored worker resumes from the chief's checkpoint (a
        # shared file system) in a scratch copy, so it writes nothing there.
        scratch = pathlib.Path(tempfile.mkdtemp(prefix="mtrec-worker-"))
        shutil.copytree(run_dir, scratch, dirs_exist_ok=True)
        run_dir = scratch
    if state.epochs_done < config.train.epochs:
        state.finished = False  # a finished run trained longer is not finished
    prepared = dataclasses.replace(
        load_prepared_run(config, run_dir / PREPROCESSING_DIR),
        train_rows=state.train_rows,
        train_rows_dropped=state.train_rows_dropped,
    )
    epochs = config.train.epochs
    logger.info("resuming %s after epoch %d of %d", run_dir, state.epochs_done, epochs)
    with marked_if_failed(run_dir):
        return _run(strategy, prepared, config, run_dir, state, callbacks)


def _evaluate_export(
    config: RunConfig,
    run_dir: pathlib.Path,
    feature_set: FeatureSet,
    model: MultiTaskRanker,
    data: Datasets,
    state: TrainingState,
    warmup: dict | None = None,
    distribution: dict | None = None,
    predictor: Predictor | None = None,
) -> RunResult:
    with surface_data_errors():
        logger.info("evaluating")
        evaluation = evaluated(model, data.eval, config, predictor)
        gates = gate_report(model, data.eval) if model.has_gates else None
    metrics = {
        "eval": evaluation,
        "train": state.history,
        "train_rows": state.train_rows,
        "train_rows_dropped": state.train_rows_dropped,
        "epochs_trained": state.epochs_done,
        # Recorded at the last epoch end: restoring the best epoch also
        # restores the optimiser the model tracks.
        "optimizer_steps": state.optimizer_steps,
        "weighting": config.weighting.name,
    }
    if distribution is not None and distribution["strategy"] != "none":
        metrics["distribution"] = distribution
    selection = selection_report(config, state)
    if selection is not None:
        metrics["selection"] = selection
    if gates is not None:
        metrics["gates"] = gates
    affinity = affinity_from_history(state.history)
    if affinity is not None:
        metrics["affinity"] = affinity
    export_path = None
    if config.export.enabled:
        base = config.export.base if config.export.publish else run_dir / RUN_EXPORT_DIR
        export_path = export_model(model, feature_set, base, run_dir, warmup)
        metrics["export_path"] = str(export_path)
    state.finished = True
    state.save(run_dir / TRAINING_STATE_FILE)
    write_json(run_dir / METRICS_FILE, metrics)
    if config.eval.plots:
        try:
            plot_run(run_dir, metrics)
        except Exception as err:  # noqa: BLE001 - figures never fail a trained run
            logger.warning("the run's plots were not drawn: %s", err)
    return RunResult(run_dir, metrics, model, feature_set, export_path)


__all__ = ["resume_run", "train"]
