"""``train()``: fit preprocessing, train, evaluate, export; one run directory."""

import dataclasses
import datetime
import json
import logging
import math
import os
import pathlib
from collections.abc import Sequence

import tensorflow as tf

from mtrec.data.reader import ReadStats
from mtrec.data.reader import Split
from mtrec.data.reader import iter_chunks
from mtrec.data.reader import make_dataset
from mtrec.data.reader import surface_data_errors
from mtrec.export.saved_model import export_saved_model
from mtrec.features.feature_set import FeatureSet
from mtrec.features.preprocessing import PreprocessingState
from mtrec.features.preprocessing import fit_preprocessing
from mtrec.models.ranker import MultiTaskRanker
from mtrec.training.builders import build_feature_set
from mtrec.training.builders import build_model
from mtrec.training.builders import build_optimizer
from mtrec.training.builders import build_tasks
from mtrec.training.builders import column_schema
from mtrec.training.builders import dummy_inputs
from mtrec.training.callbacks import EpochSelection
from mtrec.training.callbacks import NonFiniteLossGuard
from mtrec.training.callbacks import ProgressBar
from mtrec.training.callbacks import RunState
from mtrec.training.callbacks import WeightingUpdate
from mtrec.training.callbacks import write_json
from mtrec.training.config import ConfigError
from mtrec.training.config import RunConfig
from mtrec.training.config import load_config
from mtrec.training.config import save_config
from mtrec.training.config import selection_terms
from mtrec.training.evaluate import evaluate_model
from mtrec.training.evaluate import gate_report
from mtrec.training.evaluate import selection_score

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"
PREPROCESSING_DIR = "preprocessing"
CHECKPOINT_DIR = "checkpoints"
BEST_CHECKPOINT_DIR = "checkpoints/best"
TRAINING_STATE_FILE = "training_state.json"


@dataclasses.dataclass
class RunResult:
    """What a run produced."""

    run_dir: pathlib.Path
    metrics: dict
    model: MultiTaskRanker
    feature_set: FeatureSet
    export_path: pathlib.Path | None = None


def _splits(config: RunConfig) -> tuple[Split | None, Split | None, str]:
    """Train split, eval split and the eval paths."""
    if config.data.eval:
        return None, None, config.data.eval
    fraction, seed = config.data.eval_fraction, config.seed
    return (
        Split("train", fraction, seed),
        Split("eval", fraction, seed),
        config.data.train,
    )


def _new_run_dir(config: RunConfig) -> pathlib.Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    run_dir = pathlib.Path(config.runs_dir) / f"{config.name}-{stamp}"
    run_dir.mkdir(parents=True, exist_ok=False)
    return run_dir


def _seed(config: RunConfig) -> None:
    tf.keras.utils.set_random_seed(config.seed)
    if config.train.deterministic:
        tf.config.experimental.enable_op_determinism()


def fit_run_preprocessing(
    config: RunConfig,
    feature_set: FeatureSet,
    schema,
    out_dir: str | os.PathLike,
    split: Split | None = None,
    stats: ReadStats | None = None,
) -> tuple[PreprocessingState, dict[str, str]]:
    """Fits vocabularies and dense statistics on ``config.data.train``, saves them.

    One streaming pass (``split`` keeps only the train rows of a file that
    also holds the evaluation rows; ``stats`` counts what was read).

    Returns:
      The fitted state and ``{table: vocabulary file}`` under ``out_dir``.
    """
    data = config.data
    state = fit_preprocessing(
        feature_set,
        iter_chunks(
            data.train,
            schema,
            chunk_rows=data.chunk_rows,
            file_format=data.format,
            split=split,
            stats=stats,
        ),
        seed=config.seed,
    )
    return state, state.save(pathlib.Path(out_dir))


def train(
    config: RunConfig,
    run_dir: str | os.PathLike | None = None,
    callbacks: Sequence[tf.keras.callbacks.Callback] = (),
) -> RunResult:
    """Trains and evaluates the model a config describes, then exports it.

    Writes to the run directory: ``config.yaml`` (resolved, features inline),
    ``preprocessing/`` (vocabularies, dense statistics), ``checkpoints/`` (one
    per epoch, and ``checkpoints/best/`` with ``train.selection``),
    ``training_state.json`` (progress, for ``resume_run``), ``tensorboard/``
    and ``metrics.json``; exports a SavedModel to ``<export.base>/<version>/``
    when ``export.enabled``. Extra Keras ``callbacks`` run after mtrec's own.

    ``metrics.json`` holds ``eval`` (per output: AUC, GAUC with
    ``eval.gauc_group``, log loss, calibration, ECE, oracle AUC), ``train``
    (per epoch: ``loss``, ``<output>_loss``, ``weight_<output>`` (the
    effective loss weight), training metrics, and ``val_*`` with selection),
    and ``selection`` (best epoch and score).

    Raises:
      NonFiniteLossError: a task's loss became NaN or infinite (named).
    """
    _seed(config)
    feature_set = build_feature_set(config)
    tasks = build_tasks(config)
    schema = column_schema(config, feature_set, tasks)
    config = dataclasses.replace(config, features=feature_set.to_dicts())
    run_dir = pathlib.Path(run_dir) if run_dir else _new_run_dir(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, run_dir / CONFIG_FILE)
    train_split, _, _ = _splits(config)

    logger.info("fitting vocabularies and statistics on the train split")
    fit_stats = ReadStats()
    state, vocab_files = fit_run_preprocessing(
        config, feature_set, schema, run_dir / PREPROCESSING_DIR, train_split, fit_stats
    )
    model = build_model(config, feature_set, tasks, vocab_files, state.dense)
    progress = {
        "epochs_done": 0,
        "train_rows": fit_stats.rows_yielded,
        "train_rows_dropped": fit_stats.rows_dropped,
        "history": {},
    }
    write_json(run_dir / TRAINING_STATE_FILE, progress)
    return _fit_evaluate_export(
        config, run_dir, feature_set, schema, model, progress, callbacks
    )


def resume_run(
    run_dir: str | os.PathLike,
    callbacks: Sequence[tf.keras.callbacks.Callback] = (),
) -> RunResult:
    """Continues a run that was interrupted, from its last complete epoch.

    Rebuilds the model from the run directory (config, preprocessing),
    restores the model, the optimiser (so its step count continues) and the
    loss weighting's state (learnable weights, loss histories) from the
    checkpoint ``training_state.json`` names, then trains the remaining
    epochs and evaluates and exports as ``train`` does. An epoch interrupted
    midway is trained again from its start. A run that had already finished
    is evaluated and exported again.

    Raises:
      FileNotFoundError: not a run directory, or no training state.
    """
    run_dir = _run_dir(run_dir)
    state_path = run_dir / TRAINING_STATE_FILE
    if not state_path.is_file():
        raise FileNotFoundError(
            f"{run_dir} has no {TRAINING_STATE_FILE}; it was not started by this "
            "version of mtrec train"
        )
    config = load_config(run_dir / CONFIG_FILE)
    _seed(config)
    progress = json.loads(state_path.read_text())
    feature_set, tasks, model = _rebuild_model(config, run_dir)
    schema = column_schema(config, feature_set, tasks)
    logger.info(
        "resuming %s after epoch %d of %d",
        run_dir,
        progress["epochs_done"],
        config.train.epochs,
    )
    return _fit_evaluate_export(
        config, run_dir, feature_set, schema, model, progress, callbacks
    )


def _run_dir(run_dir: str | os.PathLike) -> pathlib.Path:
    """``run_dir`` as a path; FileNotFoundError unless it holds a run's config."""
    run_dir = pathlib.Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no {CONFIG_FILE})")
    return run_dir


def _rebuild_model(config: RunConfig, run_dir: pathlib.Path):
    """The run's features, tasks and (unbuilt) model, from its saved preprocessing.

    Returns:
      ``(feature_set, tasks, model)``.
    """
    feature_set = build_feature_set(config)
    tasks = build_tasks(config)
    state = PreprocessingState.load(run_dir / PREPROCESSING_DIR, feature_set)
    vocab_files = PreprocessingState.vocabulary_files(run_dir / PREPROCESSING_DIR)
    model = build_model(config, feature_set, tasks, vocab_files, state.dense)
    return feature_set, tasks, model


def _dataset(config: RunConfig, schema, paths, split, shuffle: bool) -> tf.data.Dataset:
    data = config.data
    if shuffle:
        return make_dataset(
            paths,
            schema,
            batch_size=config.train.batch_size,
            shuffle=True,
            seed=config.seed,
            shuffle_buffer_rows=data.shuffle_buffer_rows,
            chunk_rows=data.chunk_rows,
            file_format=data.format,
            split=split,
        )
    return make_dataset(
        paths,
        schema,
        batch_size=config.train.eval_batch_size,
        shuffle=False,
        chunk_rows=data.chunk_rows,
        file_format=data.format,
        split=split,
    )


def _fit_evaluate_export(
    config: RunConfig,
    run_dir: pathlib.Path,
    feature_set: FeatureSet,
    schema,
    model: MultiTaskRanker,
    progress: dict,
    extra_callbacks: Sequence[tf.keras.callbacks.Callback] = (),
) -> RunResult:
    train_split, eval_split, eval_paths = _splits(config)
    tc = config.train
    model(dummy_inputs(feature_set))
    steps = tc.steps_per_epoch or math.ceil(progress["train_rows"] / tc.batch_size)
    optimizer = build_optimizer(config, model, total_steps=steps * tc.epochs)
    model.compile(optimizer=optimizer)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
    manager = tf.train.CheckpointManager(
        checkpoint, str(run_dir / CHECKPOINT_DIR), max_to_keep=tc.checkpoints_to_keep
    )
    if progress["epochs_done"]:
        if isinstance(optimizer, tf.keras.optimizers.Optimizer):
            # Create the slots now so that the restore fills them.
            optimizer.build(model.trainable_variables)
        checkpoint.restore(
            str(run_dir / CHECKPOINT_DIR / progress["checkpoint"])
        ).assert_existing_objects_matched()
        logger.info(
            "restored %s (optimiser step %d)",
            progress["checkpoint"],
            int(optimizer.iterations.numpy()),
        )

    train_ds = _dataset(config, schema, config.data.train, train_split, shuffle=True)
    eval_ds = _dataset(config, schema, eval_paths, eval_split, shuffle=False)
    callbacks = [
        WeightingUpdate(),
        NonFiniteLossGuard(list(model.supervised_tasks())),
    ]
    selection = None
    sc = tc.selection
    if sc.metric is not None:
        select_ds = (
            _dataset(config, schema, config.data.validation, None, shuffle=False)
            if config.data.validation
            else eval_ds
        )
        best_manager = tf.train.CheckpointManager(
            tf.train.Checkpoint(model=model),
            str(run_dir / BEST_CHECKPOINT_DIR),
            max_to_keep=1,
        )
        terms = selection_terms(sc.metric)
        selection = EpochSelection(
            evaluate=lambda: evaluate_model(
                model, select_ds, config.eval.oracle, config.eval.gauc_group
            ),
            score=lambda report: selection_score(report, terms),
            best_manager=best_manager,
            mode=sc.mode,
            patience=sc.patience,
            min_delta=sc.min_delta,
            state=progress.get("selection"),
        )
        callbacks.append(selection)
    callbacks += [
        RunState(manager, run_dir / TRAINING_STATE_FILE, progress, selection),
        tf.keras.callbacks.TensorBoard(str(run_dir / "tensorboard"), update_freq=100),
    ]
    if tc.progress:
        callbacks.append(ProgressBar(steps_per_epoch=steps))
    callbacks += list(extra_callbacks)
    stopped = bool(progress.get("selection", {}).get("stopped_early"))
    with surface_data_errors():
        if progress["epochs_done"] < tc.epochs and not stopped:
            logger.info(
                "training on %d rows, %d steps per epoch", progress["train_rows"], steps
            )
            model.fit(
                train_ds,
                epochs=tc.epochs,
                initial_epoch=progress["epochs_done"],
                steps_per_epoch=tc.steps_per_epoch,
                callbacks=callbacks,
                verbose=0,
            )
        if selection is not None and sc.restore_best and selection.best_epoch:
            best = run_dir / BEST_CHECKPOINT_DIR / f"ckpt-{selection.best_epoch}"
            tf.train.Checkpoint(model=model).restore(str(best)).expect_partial()
            logger.info("restored the best epoch, %d", selection.best_epoch)
        logger.info("evaluating")
        evaluation = evaluate_model(
            model, eval_ds, oracle=config.eval.oracle, group=config.eval.gauc_group
        )
        gates = gate_report(model, eval_ds) if model.has_gates else None
    metrics = {
        "eval": evaluation,
        "train": progress["history"],
        "train_rows": progress["train_rows"],
        "train_rows_dropped": progress["train_rows_dropped"],
        "epochs_trained": progress["epochs_done"],
        # Recorded at the last epoch end: restoring the best epoch also
        # restores the optimiser the model tracks.
        "optimizer_steps": int(progress.get("iterations", 0)),
        "weighting": config.weighting.name,
    }
    if selection is not None:
        metrics["selection"] = {
            "metric": sc.metric,
            "mode": sc.mode,
            **selection.state(),
        }
    if gates is not None:
        metrics["gates"] = gates
    export_path = None
    if config.export.enabled:
        export_path = export_saved_model(
            model,
            feature_set,
            config.export.base,
            assets_extra={"mtrec/config.yaml": run_dir / CONFIG_FILE},
        )
        metrics["export_path"] = str(export_path)
    progress["finished"] = True
    write_json(run_dir / TRAINING_STATE_FILE, progress)
    with open(run_dir / METRICS_FILE, "w") as f:
        json.dump(metrics, f, indent=2)
    return RunResult(run_dir, metrics, model, feature_set, export_path)


def restore_run(run_dir: str | os.PathLike) -> RunResult:
    """Rebuilds a run's model from its directory and restores the last checkpoint."""
    run_dir = _run_dir(run_dir)
    config = load_config(run_dir / CONFIG_FILE)
    feature_set, _, model = _rebuild_model(config, run_dir)
    model(dummy_inputs(feature_set))
    latest = tf.train.latest_checkpoint(str(run_dir / CHECKPOINT_DIR))
    best = _best_checkpoint(run_dir, config)
    if best is not None:
        latest = best
    if latest is None:
        raise FileNotFoundError(f"no checkpoint in {run_dir / CHECKPOINT_DIR}")
    tf.train.Checkpoint(model=model).restore(latest).expect_partial()
    metrics_path = run_dir / METRICS_FILE
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    return RunResult(run_dir, metrics, model, feature_set)


def _best_checkpoint(run_dir: pathlib.Path, config: RunConfig) -> str | None:
    """The best epoch's checkpoint when the run selects and restores it."""
    state_path = run_dir / TRAINING_STATE_FILE
    if not (config.train.selection.metric and config.train.selection.restore_best):
        return None
    if not state_path.is_file():
        return None
    best_epoch = (
        json.loads(state_path.read_text()).get("selection", {}).get("best_epoch")
    )
    if not best_epoch:
        return None
    return str(run_dir / BEST_CHECKPOINT_DIR / f"ckpt-{best_epoch}")


def eval_dataset(config: RunConfig) -> tf.data.Dataset:
    """The held-out split of a run's config, unshuffled."""
    feature_set = build_feature_set(config)
    schema = column_schema(config, feature_set, build_tasks(config))
    _, eval_split, eval_paths = _splits(config)
    return make_dataset(
        eval_paths,
        schema,
        batch_size=config.train.eval_batch_size,
        shuffle=False,
        chunk_rows=config.data.chunk_rows,
        file_format=config.data.format,
        split=eval_split,
    )


def inspect_run(run_dir: str | os.PathLike) -> dict:
    """Gate statistics of a run's model on its held-out split, saved to metrics.json.

    Raises:
      ConfigError: the run's backbone has no gates.
    """
    result = restore_run(run_dir)
    if not result.model.has_gates:
        raise ConfigError(
            f"the backbone of {result.run_dir} "
            f"({type(result.model.backbone).__name__}) has no gates; gate "
            "inspection needs omoe, mmoe, cgc or ple"
        )
    config = load_config(result.run_dir / CONFIG_FILE)
    with surface_data_errors():
        gates = gate_report(result.model, eval_dataset(config))
    metrics = dict(result.metrics)
    metrics["gates"] = gates
    with open(result.run_dir / METRICS_FILE, "w") as f:
        json.dump(metrics, f, indent=2)
    return gates


def export_run(
    run_dir: str | os.PathLike, export_base: str | os.PathLike | None = None
) -> pathlib.Path:
    """Re-exports a run's last checkpoint as a new SavedModel version."""
    result = restore_run(run_dir)
    config = load_config(result.run_dir / CONFIG_FILE)
    return export_saved_model(
        result.model,
        result.feature_set,
        export_base or config.export.base,
        assets_extra={"mtrec/config.yaml": result.run_dir / CONFIG_FILE},
    )
