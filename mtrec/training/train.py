"""``train()``: fit preprocessing, train, evaluate, export; one run directory."""

import dataclasses
import datetime
import json
import logging
import math
import os
import pathlib

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
from mtrec.training.callbacks import CheckpointEveryEpoch
from mtrec.training.callbacks import ProgressBar
from mtrec.training.config import ConfigError
from mtrec.training.config import RunConfig
from mtrec.training.config import load_config
from mtrec.training.config import save_config
from mtrec.training.evaluate import evaluate_model
from mtrec.training.evaluate import gate_report

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"
PREPROCESSING_DIR = "preprocessing"
CHECKPOINT_DIR = "checkpoints"


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


def train(config: RunConfig, run_dir: str | os.PathLike | None = None) -> RunResult:
    """Trains and evaluates the model a config describes, then exports it.

    Writes to the run directory: ``config.yaml`` (resolved, features inline),
    ``preprocessing/`` (vocabularies, dense statistics), ``checkpoints/``,
    ``tensorboard/`` and ``metrics.json``; exports a SavedModel to
    ``<export.base>/<version>/`` when ``export.enabled``.
    """
    tf.keras.utils.set_random_seed(config.seed)
    feature_set = build_feature_set(config)
    tasks = build_tasks(config)
    schema = column_schema(config, feature_set, tasks)
    config = dataclasses.replace(config, features=feature_set.to_dicts())
    run_dir = pathlib.Path(run_dir) if run_dir else _new_run_dir(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, run_dir / CONFIG_FILE)
    train_split, eval_split, eval_paths = _splits(config)
    data = config.data

    logger.info("fitting vocabularies and statistics on the train split")
    fit_stats = ReadStats()
    state = fit_preprocessing(
        feature_set,
        iter_chunks(
            data.train,
            schema,
            chunk_rows=data.chunk_rows,
            file_format=data.format,
            split=train_split,
            stats=fit_stats,
        ),
        seed=config.seed,
    )
    vocab_files = state.save(run_dir / PREPROCESSING_DIR)
    model = build_model(config, feature_set, tasks, vocab_files, state.dense)
    model.compile(optimizer=build_optimizer(config))

    train_ds = make_dataset(
        data.train,
        schema,
        batch_size=config.train.batch_size,
        shuffle=True,
        seed=config.seed,
        shuffle_buffer_rows=data.shuffle_buffer_rows,
        chunk_rows=data.chunk_rows,
        file_format=data.format,
        split=train_split,
    )
    eval_ds = make_dataset(
        eval_paths,
        schema,
        batch_size=config.train.eval_batch_size,
        shuffle=False,
        chunk_rows=data.chunk_rows,
        file_format=data.format,
        split=eval_split,
    )
    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    manager = tf.train.CheckpointManager(
        checkpoint, str(run_dir / CHECKPOINT_DIR), max_to_keep=3
    )
    steps = config.train.steps_per_epoch or math.ceil(
        fit_stats.rows_yielded / config.train.batch_size
    )
    callbacks = [
        CheckpointEveryEpoch(manager),
        tf.keras.callbacks.TensorBoard(str(run_dir / "tensorboard"), update_freq=100),
    ]
    if config.train.progress:
        callbacks.append(ProgressBar(steps_per_epoch=steps))
    logger.info(
        "training on %d rows, %d steps per epoch", fit_stats.rows_yielded, steps
    )
    with surface_data_errors():
        history = model.fit(
            train_ds,
            epochs=config.train.epochs,
            steps_per_epoch=config.train.steps_per_epoch,
            callbacks=callbacks,
            verbose=0,
        )
        logger.info("evaluating")
        evaluation = evaluate_model(model, eval_ds, oracle=config.eval.oracle)
        gates = gate_report(model, eval_ds) if model.has_gates else None
    metrics = {
        "eval": evaluation,
        "train": {k: [float(x) for x in v] for k, v in history.history.items()},
        "train_rows": fit_stats.rows_yielded,
        "train_rows_dropped": fit_stats.rows_dropped,
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
    with open(run_dir / METRICS_FILE, "w") as f:
        json.dump(metrics, f, indent=2)
    return RunResult(run_dir, metrics, model, feature_set, export_path)


def restore_run(run_dir: str | os.PathLike) -> RunResult:
    """Rebuilds a run's model from its directory and restores the last checkpoint."""
    run_dir = pathlib.Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no {CONFIG_FILE})")
    config = load_config(run_dir / CONFIG_FILE)
    feature_set = build_feature_set(config)
    tasks = build_tasks(config)
    state = PreprocessingState.load(run_dir / PREPROCESSING_DIR, feature_set)
    vocab_files = state.save(run_dir / PREPROCESSING_DIR)
    model = build_model(config, feature_set, tasks, vocab_files, state.dense)
    model(dummy_inputs(feature_set))
    latest = tf.train.latest_checkpoint(str(run_dir / CHECKPOINT_DIR))
    if latest is None:
        raise FileNotFoundError(f"no checkpoint in {run_dir / CHECKPOINT_DIR}")
    tf.train.Checkpoint(model=model).restore(latest).expect_partial()
    metrics_path = run_dir / METRICS_FILE
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    return RunResult(run_dir, metrics, model, feature_set)


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
            f"the backbone of {result.run_dir} ({type(result.model.backbone).__name__}) "
            "has no gates; gate inspection needs omoe, mmoe, cgc or ple"
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
