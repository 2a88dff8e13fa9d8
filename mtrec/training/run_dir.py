"""The run directory: its layout, and restoring, re-exporting and inspecting a run.

``config.yaml`` (the resolved config), ``preprocessing/`` (vocabularies,
dense statistics), ``checkpoints/`` (``best/`` with selection),
``training_state.json``, ``tensorboard/`` and ``metrics.json``. ``train`` and
``resume_run`` (:mod:`mtrec.training.run`) write it; this module reads it.
"""

import dataclasses
import json
import logging
import os
import pathlib
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
import yaml

from mtrec.data.native import native_dataset
from mtrec.data.reader import DataError
from mtrec.data.reader import iter_chunks
from mtrec.data.reader import surface_data_errors
from mtrec.export.saved_model import export_saved_model
from mtrec.features.feature_set import FeatureSet
from mtrec.json_file import write_json
from mtrec.models.ranker import MultiTaskRanker
from mtrec.training.builders import build_feature_set
from mtrec.training.config import ConfigError
from mtrec.training.config import RunConfig
from mtrec.training.config import load_config
from mtrec.training.evaluate import gate_report
from mtrec.training.loop import BEST_CHECKPOINT_DIR
from mtrec.training.loop import CHECKPOINT_DIR
from mtrec.training.loop import TRAINING_STATE_FILE
from mtrec.training.model import build_model
from mtrec.training.prepared import file_source
from mtrec.training.prepared import load_prepared_run
from mtrec.training.prepared import prepare_files
from mtrec.training.state import TrainingState

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"
PREPROCESSING_DIR = "preprocessing"
#: Where ``train`` exports without ``export.publish``: ``<run>/export/<n>/``.
RUN_EXPORT_DIR = "export"
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


def checked_run_dir(run_dir: str | os.PathLike) -> pathlib.Path:
    """``run_dir`` as a path; FileNotFoundError unless it holds a run's config."""
    run_dir = pathlib.Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no {CONFIG_FILE})")
    return run_dir


#: Config keys added after runs were written, with the value a run written
#: before the key means (what its checkpoints hold): ``model.embedding_order``
#: (its embeddings were concatenated in feature order; the default,
#: ``grouped``, would restore its first layer's kernel rows against permuted
#: inputs) and ``train.fused_optimizer`` (its checkpoints hold the slots of
#: the ``tf.keras.optimizers`` optimiser).
KEYS_ADDED_LATER = {
    ("model", "embedding_order"): "features",
    ("train", "fused_optimizer"): "false",
}


def load_run_config(
    run_dir: pathlib.Path, overrides: Sequence[str] = (), *, in_memory: bool = True
) -> RunConfig:
    """The run's resolved ``config.yaml``, as its checkpoints need it.

    A key of :data:`KEYS_ADDED_LATER` that the file lacks (a run written
    before the key existed) takes the value that run was written with;
    ``overrides`` come after.

    Raises:
      ConfigError: as :func:`load_config`.
    """
    path = run_dir / CONFIG_FILE
    legacy = []
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        raw = None  # load_config names the problem
    if isinstance(raw, dict):
        for (section, key), value in KEYS_ADDED_LATER.items():
            written = raw.get(section)
            if not (isinstance(written, dict) and key in written):
                legacy.append(f"{section}.{key}={value}")
    return load_config(path, [*legacy, *overrides], in_memory=in_memory)


def export_model(
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
    run_dir = checked_run_dir(run_dir)
    config = load_run_config(run_dir)
    prepared = load_prepared_run(config, run_dir / PREPROCESSING_DIR)
    model = build_model(prepared, config)
    restore_trained_weights(model, run_dir, config)
    metrics_path = run_dir / METRICS_FILE
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    return RunResult(run_dir, metrics, model, prepared.feature_set)


def restore_trained_weights(
    model: MultiTaskRanker, run_dir: pathlib.Path, config: RunConfig
) -> str:
    """Restores the run's trained weights into ``model``; returns the checkpoint.

    The best epoch's checkpoint when the run selects and restores it, else
    the last one.

    Raises:
      FileNotFoundError: the run has no checkpoint.
    """
    path = _best_checkpoint(run_dir, config) or tf.train.latest_checkpoint(
        str(run_dir / CHECKPOINT_DIR)
    )
    if path is None:
        raise FileNotFoundError(f"no checkpoint in {run_dir / CHECKPOINT_DIR}")
    tf.train.Checkpoint(model=model).restore(path).expect_partial()
    return path


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
    write_json(result.run_dir / METRICS_FILE, metrics)
    return gates


def export_run(
    run_dir: str | os.PathLike, export_base: str | os.PathLike | None = None
) -> pathlib.Path:
    """Re-exports a run's last checkpoint as a new SavedModel version."""
    result = restore_run(run_dir)
    config = load_config(result.run_dir / CONFIG_FILE, in_memory=True)
    return export_model(
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
    "warmup_rows",
]
