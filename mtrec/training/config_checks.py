"""Checks of a run configuration's values that typing alone cannot make."""

import math
import pathlib

from mtrec.training.config_schema import AUTO_SELECTION
from mtrec.training.config_schema import DATA_FORMATS
from mtrec.training.config_schema import LABEL_VIOLATION_MODES
from mtrec.training.config_schema import SELECTION_MODES
from mtrec.training.config_schema import STRATEGIES
from mtrec.training.config_schema import ConfigError
from mtrec.training.config_schema import RunConfig
from mtrec.training.config_schema import SelectionConfig
from mtrec.training.config_schema import TrainConfig
from mtrec.training.config_schema import prepared_directory
from mtrec.training.config_schema import selection_terms
from mtrec.weighting import WEIGHTINGS


def validate_config(config: RunConfig, *, in_memory: bool = False) -> None:
    """Checks the values ``load_config`` cannot check by type alone.

    ``load_config`` calls it; ``mtrec.training.prepare`` calls it again, so a
    ``RunConfig`` built or changed in Python is checked before any data is read.
    With ``in_memory`` (the rows are given as tables) ``data.train`` may be
    empty.

    Raises:
      ConfigError: the first bad value, naming its key.
    """
    _check_inputs(config, in_memory)
    _check_fractions(config)
    _check_reading(config)
    _check_train(config.train)
    _check_selection(config.train.selection)
    _check_distribution(config)


def _check_inputs(config: RunConfig, in_memory: bool) -> None:
    """What the run trains on: ``features``, ``tasks`` and ``data.train``."""
    if isinstance(config.features, str):
        if not pathlib.Path(config.features).is_file():
            raise ConfigError(f"'features': file not found: {config.features}")
    elif not isinstance(config.features, list) or not config.features:
        raise ConfigError(
            "'features' must be a non-empty list or the path of a YAML file"
        )
    if not config.tasks:
        raise ConfigError("'tasks' must list at least one task")
    if not config.data.train and not in_memory:
        raise ConfigError("'data.train' must name the click log to train on")


def _check_fractions(config: RunConfig) -> None:
    """``data.eval_fraction`` and ``data.validation_fraction`` of the hash split.

    The validation share is checked only when selection holds rows out
    (``train.selection.metric`` set, no ``data.validation`` files): out of the
    train rows with ``data.eval``, out of the held-out rows without.
    """
    if not 0.0 < config.data.eval_fraction < 1.0:
        raise ConfigError(
            "'data.eval_fraction' must be in (0, 1). Received: "
            f"{config.data.eval_fraction}"
        )
    if config.train.selection.metric is None or config.data.validation:
        pass
    elif config.data.eval:
        if not 0.0 < config.data.validation_fraction < 1.0:
            raise ConfigError(
                "'data.validation_fraction' must be in (0, 1) (taken out of the "
                f"train rows). Received: {config.data.validation_fraction}"
            )
    elif not 0.0 < config.data.validation_fraction < config.data.eval_fraction:
        raise ConfigError(
            "'data.validation_fraction' must be in (0, data.eval_fraction="
            f"{config.data.eval_fraction}) (taken out of the held-out rows). "
            f"Received: {config.data.validation_fraction}"
        )


def _check_reading(config: RunConfig) -> None:
    """How the files are read and prepared: format, label violations, chunk and
    shard sizes, ``data.prepared_dir``."""
    if config.data.format not in DATA_FORMATS:
        raise ConfigError(
            f"'data.format' must be one of {list(DATA_FORMATS)}. "
            f"Received: {config.data.format!r}"
        )
    if config.data.on_label_violation not in LABEL_VIOLATION_MODES:
        raise ConfigError(
            "'data.on_label_violation' must be one of "
            f"{list(LABEL_VIOLATION_MODES)}. "
            f"Received: {config.data.on_label_violation!r}"
        )
    for key in ("chunk_rows", "shuffle_buffer_rows", "rows_per_shard"):
        value = getattr(config.data, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"'data.{key}' must be an int >= 1. Received: {value!r}")
    prepared_dir = prepared_directory(config)
    if prepared_dir.exists() and not prepared_dir.is_dir():
        raise ConfigError(
            f"'data.prepared_dir' must be a directory; {prepared_dir} is a file"
        )


def _check_train(train: TrainConfig) -> None:
    """``train``'s own values (its selection and distribution are checked
    after it)."""
    _check_train_counts(train)
    _check_learning_rates(train)
    _check_train_flags(train)
    _check_train_steps(train)


def _check_train_counts(train: TrainConfig) -> None:
    """Batch sizes, epochs and checkpoints kept: each >= 1."""
    for key in ("batch_size", "epochs", "eval_batch_size", "checkpoints_to_keep"):
        if getattr(train, key) < 1:
            raise ConfigError(
                f"'train.{key}' must be >= 1. Received: {getattr(train, key)}"
            )


def _check_learning_rates(train: TrainConfig) -> None:
    """The learning rates (> 0; the embeddings' may be null) and the schedule's
    final fraction (in (0, 1])."""
    for key in ("learning_rate", "embedding_learning_rate", "lr_final_fraction"):
        value = getattr(train, key)
        if value is None and key == "embedding_learning_rate":
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value <= 0
            or (key == "lr_final_fraction" and value > 1)
        ):
            bound = "in (0, 1]" if key == "lr_final_fraction" else "> 0"
            raise ConfigError(
                f"'train.{key}' must be a number {bound}. Received: {value!r}"
            )


def _check_train_flags(train: TrainConfig) -> None:
    """The on/off switches of ``train``: each a bool."""
    for key in (
        "jit_compile",
        "encode_ids",
        "training_metrics",
        "progress",
        "deterministic",
        "fused_optimizer",
    ):
        value = getattr(train, key)
        if not isinstance(value, bool):
            raise ConfigError(f"'train.{key}' must be bool. Received: {value!r}")


def _check_train_steps(train: TrainConfig) -> None:
    """Step counts and intervals: per epoch, per execution, the per-step
    callbacks' (a checkpoint interval a multiple of the steps per execution)
    and TensorBoard's."""
    steps = train.steps_per_epoch
    if steps is not None and (
        isinstance(steps, bool) or not isinstance(steps, int) or steps < 1
    ):
        raise ConfigError(
            f"'train.steps_per_epoch' must be an int >= 1 or null. Received: {steps!r}"
        )
    spe = train.steps_per_execution
    if isinstance(spe, bool) or not isinstance(spe, int) or spe < 1:
        raise ConfigError(
            f"'train.steps_per_execution' must be an int >= 1. Received: {spe!r}"
        )
    _check_one_process_steps(train, "affinity_every_steps")
    _check_one_process_steps(train, "checkpoint_every_steps")
    every = train.checkpoint_every_steps
    if every is not None:
        if every % spe:
            raise ConfigError(
                "'train.checkpoint_every_steps' must be a multiple of "
                f"'train.steps_per_execution' (the callbacks see every {spe}th "
                f"step). Received: checkpoint_every_steps={every}"
            )
    freq = train.tensorboard_update_freq
    if freq != "epoch" and (
        isinstance(freq, bool) or not isinstance(freq, int) or freq < 1
    ):
        raise ConfigError(
            "'train.tensorboard_update_freq' must be 'epoch' or an int >= 1. "
            f"Received: {freq!r}"
        )


def _check_one_process_steps(train: TrainConfig, key: str) -> None:
    """``train.<key>``: null, or an int >= 1 of a one-process run."""
    value = getattr(train, key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"'train.{key}' must be an int >= 1 or null. Received: {value!r}"
        )
    if train.distribution.strategy != "none":
        raise ConfigError(
            f"'train.{key}' works in one process; under "
            f"'train.distribution.strategy: {train.distribution.strategy}' it is "
            f"not supported. Received: {key}={value}"
        )


def _check_distribution(config: RunConfig) -> None:
    """``train.distribution``: the strategy, its shard settings, the weighting.

    The cluster itself (``TF_CONFIG``) is checked when a run starts
    (``mtrec.training.cluster_spec``), not when a config is loaded.
    """
    dist = config.train.distribution
    where = "'train.distribution"
    if dist.strategy not in STRATEGIES:
        raise ConfigError(
            f"{where}.strategy' must be one of {list(STRATEGIES)}. "
            f"Received: {dist.strategy!r}"
        )
    for key in ("num_shards", "min_shard_bytes"):
        value = getattr(dist, key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(
                f"{where}.{key}' must be an int >= 1 or null. Received: {value!r}"
            )
        if dist.strategy != "parameter_server":
            raise ConfigError(
                f"{where}.{key}' shards variables over parameter servers; it "
                "needs 'train.distribution.strategy: parameter_server'. Received: "
                f"strategy={dist.strategy!r}, {key}={value!r}"
            )
    if dist.num_shards is not None and dist.min_shard_bytes is not None:
        raise ConfigError(
            f"{where}': set 'num_shards' or 'min_shard_bytes', not both. Received: "
            f"num_shards={dist.num_shards!r}, min_shard_bytes={dist.min_shard_bytes!r}"
        )
    weighting = WEIGHTINGS.get(config.weighting.name)
    if dist.strategy != "none" and getattr(weighting, "uses_gradients", False):
        raise ConfigError(
            f"'weighting.name: {config.weighting.name}' combines per-task "
            "gradients inside the train step, which mtrec has not verified under "
            f"'train.distribution.strategy: {dist.strategy}' (each replica would "
            "combine its own gradients before they are reduced). Use "
            "'strategy: none', or a loss weighting that does not use gradients."
        )


def _check_selection(selection: SelectionConfig) -> None:
    if selection.mode not in SELECTION_MODES:
        raise ConfigError(
            f"'train.selection.mode' must be one of {list(SELECTION_MODES)}. "
            f"Received: {selection.mode!r}"
        )
    if selection.patience is not None and selection.patience < 1:
        raise ConfigError(
            f"'train.selection.patience' must be >= 1 or null. "
            f"Received: {selection.patience}"
        )
    if selection.metric is None or selection.metric == AUTO_SELECTION:
        return
    terms = selection_terms(selection.metric)
    if not terms:
        raise ConfigError("'train.selection.metric' must not be empty")
    for key, weight in terms.items():
        if not isinstance(key, str) or key.count(".") != 1 or "" in key.split("."):
            raise ConfigError(
                "'train.selection.metric' terms must look like 'output.metric', "
                f"e.g. 'ctr.auc'. Received: {key!r}"
            )
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise ConfigError(
                f"'train.selection.metric' weight of {key!r} must be a number. "
                f"Received: {weight!r}"
            )
