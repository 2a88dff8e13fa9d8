"""``train()`` and the run directory: prepare, build, fit, evaluate, export.

The steps are public (``prepare``, ``build_model``, ``datasets``, ``fit``,
``evaluate_model``); this module composes them and owns the run directory:
``config.yaml``, ``preprocessing/``, ``metrics.json`` (and, through ``fit``,
``checkpoints/``, ``tensorboard/``, ``training_state.json``).
"""

import dataclasses
import datetime
import json
import logging
import os
import pathlib
import shutil
import tempfile
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from mtrec.data.native import native_dataset
from mtrec.data.reader import DataError
from mtrec.data.reader import iter_chunks
from mtrec.data.reader import surface_data_errors
from mtrec.export.saved_model import export_saved_model
from mtrec.features.feature_set import FeatureSet
from mtrec.models.ranker import MultiTaskRanker
from mtrec.training.builders import build_feature_set
from mtrec.training.config import ConfigError
from mtrec.training.config import RunConfig
from mtrec.training.config import load_config
from mtrec.training.config import save_config
from mtrec.training.config import validate_config
from mtrec.training.distribution import check_batch_size
from mtrec.training.distribution import distribution_report
from mtrec.training.distribution import is_chief
from mtrec.training.distribution import make_strategy
from mtrec.training.distribution import multi_process
from mtrec.training.evaluate import evaluate_model
from mtrec.training.evaluate import gate_report
from mtrec.training.inputs import Datasets
from mtrec.training.inputs import datasets as make_datasets
from mtrec.training.loop import BEST_CHECKPOINT_DIR
from mtrec.training.loop import CHECKPOINT_DIR
from mtrec.training.loop import TRAINING_STATE_FILE
from mtrec.training.loop import fit
from mtrec.training.loop import selection_report
from mtrec.training.model import build_model
from mtrec.training.prepared import MemorySource
from mtrec.training.prepared import file_source
from mtrec.training.prepared import load_prepared_run
from mtrec.training.prepared import prepare
from mtrec.training.prepared import prepare_files
from mtrec.training.state import TrainingState
from mtrec.training.tables import Table

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"
PREPROCESSING_DIR = "preprocessing"
#: Name of the resolved config in an export's ``assets.extra/``.
EXPORTED_CONFIG = "mtrec/config.yaml"
#: Rows of the eval split an export replays to TF Serving as warmup requests.
WARMUP_ROWS = 100


@dataclasses.dataclass
class RunResult:
    """What a run produced."""

    run_dir: pathlib.Path
    metrics: dict
    model: MultiTaskRanker
    feature_set: FeatureSet
    export_path: pathlib.Path | None = None
    #: False on a non-chief ``multi_worker_mirrored`` worker: it trained in
    #: lock-step with the chief and wrote nothing (no metrics, no export).
    chief: bool = True


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

    Raises:
      NonFiniteLossError: a task's loss became NaN or infinite (named).
    """
    validate_config(config, in_memory=train_rows is not None)
    # Before any other op: multi_worker_mirrored configures the runtime.
    strategy = make_strategy(config)  # the cluster is checked before any data
    check_batch_size(config, strategy.num_replicas_in_sync)
    _seed(config)
    if not is_chief(strategy):
        # A non-chief mirrored worker trains in lock-step and writes nothing
        # that lasts (the chief writes the run).
        run_dir = tempfile.mkdtemp(prefix="mtrec-worker-")
    run_dir = pathlib.Path(run_dir) if run_dir else None
    if run_dir is None:
        run_dir = _new_run_dir(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    prepared = prepare(
        config, train_rows, eval_rows, preprocessing_dir=run_dir / PREPROCESSING_DIR
    )
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
        state = fit(model, data, config, run_dir, state, callbacks)
        if not multi_process(strategy):
            return _evaluate_export(
                config,
                run_dir,
                prepared.feature_set,
                model,
                data,
                state,
                warmup,
                report,
            )
    if not is_chief(strategy):
        shutil.rmtree(run_dir, ignore_errors=True)
        return RunResult(run_dir, {}, model, prepared.feature_set, chief=False)
    local = build_model(prepared, config)
    path = _best_checkpoint(run_dir, config) or tf.train.latest_checkpoint(
        str(run_dir / CHECKPOINT_DIR)
    )
    tf.train.Checkpoint(model=local).restore(path).expect_partial()
    logger.info("evaluating and exporting %s on the chief", path)
    return _evaluate_export(
        config, run_dir, prepared.feature_set, local, data, state, warmup, report
    )


#: Keys ``resume_run`` may override: where the run trains and how long.
RESUME_OVERRIDES = ("train.distribution.", "train.epochs=")


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
    midway is trained again from its start. A run that had already finished
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
    for assignment in overrides:
        if not assignment.startswith(RESUME_OVERRIDES):
            raise ConfigError(
                "resume can change only train.distribution.* and train.epochs "
                f"(the rest is fixed by the checkpoint). Received: {assignment!r}"
            )
    run_dir = _run_dir(run_dir)
    state_path = run_dir / TRAINING_STATE_FILE
    if not state_path.is_file():
        raise FileNotFoundError(
            f"{run_dir} has no {TRAINING_STATE_FILE}; it was not started by this "
            "version of mtrec train"
        )
    config = load_config(run_dir / CONFIG_FILE, overrides, in_memory=True)
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
    state = TrainingState.load(state_path)
    if state.epochs_done < config.train.epochs:
        state.finished = False  # a finished run trained longer is not finished
    prepared = dataclasses.replace(
        load_prepared_run(config, run_dir / PREPROCESSING_DIR),
        train_rows=state.train_rows,
        train_rows_dropped=state.train_rows_dropped,
    )
    epochs = config.train.epochs
    logger.info("resuming %s after epoch %d of %d", run_dir, state.epochs_done, epochs)
    return _run(strategy, prepared, config, run_dir, state, callbacks)


def _run_dir(run_dir: str | os.PathLike) -> pathlib.Path:
    """``run_dir`` as a path; FileNotFoundError unless it holds a run's config."""
    run_dir = pathlib.Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no {CONFIG_FILE})")
    return run_dir


def _evaluate_export(
    config: RunConfig,
    run_dir: pathlib.Path,
    feature_set: FeatureSet,
    model: MultiTaskRanker,
    data: Datasets,
    state: TrainingState,
    warmup: dict | None = None,
    distribution: dict | None = None,
) -> RunResult:
    with surface_data_errors():
        logger.info("evaluating")
        evaluation = evaluate_model(
            model, data.eval, oracle=config.eval.oracle, group=config.eval.gauc_group
        )
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
    export_path = None
    if config.export.enabled:
        export_path = _export(model, feature_set, config.export.base, run_dir, warmup)
        metrics["export_path"] = str(export_path)
    state.finished = True
    state.save(run_dir / TRAINING_STATE_FILE)
    with open(run_dir / METRICS_FILE, "w") as f:
        json.dump(metrics, f, indent=2)
    return RunResult(run_dir, metrics, model, feature_set, export_path)


def _export(
    model: MultiTaskRanker,
    feature_set: FeatureSet,
    export_base: str | os.PathLike,
    run_dir: pathlib.Path,
    warmup: dict | None = None,
) -> pathlib.Path:
    """Exports with the run's config as an asset and warmup rows from its eval.

    ``warmup``: the warmup rows; default the first rows of the eval split of
    the run's files.
    """
    config_path = run_dir / CONFIG_FILE
    if warmup is None:
        config = load_config(config_path, in_memory=True)
        warmup = warmup_rows(config) if config.data.train else None
    return export_saved_model(
        model,
        feature_set,
        export_base,
        assets_extra={EXPORTED_CONFIG: config_path},
        config_path=config_path,
        warmup_rows=warmup,
    )


def restore_run(run_dir: str | os.PathLike) -> RunResult:
    """Rebuilds a run's model from its directory and restores the last checkpoint.

    Reads no data, so it also restores runs trained on in-memory tables.
    """
    run_dir = _run_dir(run_dir)
    config = load_config(run_dir / CONFIG_FILE, in_memory=True)
    prepared = load_prepared_run(config, run_dir / PREPROCESSING_DIR)
    model = build_model(prepared, config)
    latest = tf.train.latest_checkpoint(str(run_dir / CHECKPOINT_DIR))
    best = _best_checkpoint(run_dir, config)
    if best is not None:
        latest = best
    if latest is None:
        raise FileNotFoundError(f"no checkpoint in {run_dir / CHECKPOINT_DIR}")
    tf.train.Checkpoint(model=model).restore(latest).expect_partial()
    metrics_path = run_dir / METRICS_FILE
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    return RunResult(run_dir, metrics, model, prepared.feature_set)


def _best_checkpoint(run_dir: pathlib.Path, config: RunConfig) -> str | None:
    """The best epoch's checkpoint when the run selects and restores it."""
    state_path = run_dir / TRAINING_STATE_FILE
    if not (config.train.selection.metric and config.train.selection.restore_best):
        return None
    if not state_path.is_file():
        return None
    selection = TrainingState.load(state_path).selection
    if selection is None or not selection.best_epoch:
        return None
    return str(run_dir / BEST_CHECKPOINT_DIR / f"ckpt-{selection.best_epoch}")


def eval_dataset(config: RunConfig) -> tf.data.Dataset:
    """The held-out split of a run's config (files), unshuffled.

    Read from the prepared shards (:func:`prepare_files`: a cache hit after
    training on the same files); fits no preprocessing, unlike ``datasets``.
    """
    data, part = prepare_files(config).eval
    return native_dataset(data, config.train.eval_batch_size, part=part, shuffle=False)


def warmup_rows(config: RunConfig, num_rows: int = WARMUP_ROWS) -> dict | None:
    """The first ``num_rows`` validated feature rows of a config's eval split.

    What an export replays to TF Serving as warmup requests. ``None`` (logged)
    when the data cannot be read, e.g. the click log has moved since training.
    """
    try:
        feature_set = build_feature_set(config)
        source = file_source(config)
        parts, count = [], 0
        for chunk in iter_chunks(
            source.eval,
            feature_set.column_schema(),
            chunk_rows=max(num_rows, 4096),
            file_format=config.data.format,
            split=source.eval_split,
        ):
            parts.append(chunk)
            count += len(chunk[feature_set.names[0]])
            if count >= num_rows:
                break
    except (ConfigError, DataError, OSError, ValueError) as err:
        logger.warning("no warmup rows from the eval split: %s", err)
        return None
    if not parts:
        logger.warning("no warmup rows: the eval split is empty")
        return None
    return {
        name: np.concatenate([part[name] for part in parts])[:num_rows]
        for name in feature_set.names
    }


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
    config = load_config(result.run_dir / CONFIG_FILE, in_memory=True)
    return _export(
        result.model,
        result.feature_set,
        export_base or config.export.base,
        result.run_dir,
    )


__all__ = [
    "RunResult",
    "eval_dataset",
    "export_run",
    "inspect_run",
    "restore_run",
    "resume_run",
    "train",
    "warmup_rows",
]
