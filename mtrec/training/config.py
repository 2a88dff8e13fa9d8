"""Typed run configuration: one YAML file reproduces a run."""

import copy
import dataclasses
import math
import os
import pathlib
import types
import typing
from collections.abc import Sequence

import yaml

from mtrec.weighting import WEIGHTINGS


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the key."""


@dataclasses.dataclass
class DataConfig:
    """Where the click log is and how it is read."""

    #: Train file(s): a path, a glob or a directory (CSV or Parquet).
    train: str = ""
    #: Held-out file(s); when empty, ``eval_fraction`` of the train rows is held out.
    eval: str | None = None
    #: Fraction of rows held out by a deterministic hash split when ``eval`` is empty.
    eval_fraction: float = 0.1
    #: ``auto`` (from the suffix), ``csv`` or ``parquet``.
    format: str = "auto"
    #: Rows read per chunk; memory is bounded by this and the shuffle buffer.
    chunk_rows: int = 65_536
    #: Rows mixed by the streaming shuffle.
    shuffle_buffer_rows: int = 262_144
    #: ``{child: parent}`` label constraints, e.g. ``{conversion: click}``.
    label_requires: dict = dataclasses.field(default_factory=dict)
    #: ``error`` (default) or ``drop`` rows that break ``label_requires``.
    on_label_violation: str = "error"
    #: Validation file(s) for the per-epoch model selection
    #: (``train.selection``); when empty, ``validation_fraction`` of the rows
    #: is held out for it.
    validation: str | None = None
    #: Without ``validation`` files, the rows of ``train`` kept for selection
    #: by the hash split: taken out of the ``eval_fraction`` (the train rows do
    #: not change) or, with ``eval`` files, out of the train rows.
    validation_fraction: float = 0.05
    #: Shuffle the training rows (files and rows, seeded with ``seed``); ``false``
    #: keeps file and row order, e.g. to compare two input paths batch by batch.
    shuffle: bool = True
    #: Where the prepare pass keeps the validated rows as TFRecord shards
    #: (``mtrec.data.prepare_data``), one entry per content hash of the files,
    #: schema and split, reused by later runs on the same files. Default
    #: ``<runs_dir>/.prepared``.
    prepared_dir: str | None = None
    #: Rows per prepared TFRecord shard (the unit of parallel reads and of
    #: per-worker sharding).
    rows_per_shard: int = 131_072


@dataclasses.dataclass
class ModelConfig:
    """The architecture."""

    #: ``esmm`` or ``multi_task`` (one tower per task, ``single_task`` is one task).
    architecture: str = "esmm"
    #: Backbone name from ``mtrec.training.builders.BACKBONES``.
    backbone: str = "shared_bottom"
    #: Keyword arguments of the backbone layer (``units``, ``num_experts``, ...).
    backbone_args: dict = dataclasses.field(
        default_factory=lambda: {"units": [256, 128]}
    )
    #: Hidden sizes of every task tower.
    tower_units: list = dataclasses.field(default_factory=lambda: [64])
    tower_activation: str = "relu"
    tower_dropout: float = 0.0
    #: L2 on tower kernels.
    tower_l2: float = 0.0
    #: L2 on the embedding tables.
    embeddings_l2: float = 0.0
    #: DCN-v2 cross layers on the embeddings before the backbone (0: none).
    cross_layers: int = 0
    #: Low-rank projection of the cross layers (None: full rank).
    cross_projection_dim: int | None = None
    #: Name of ESMM's product output.
    ctcvr_name: str = "ctcvr"


SELECTION_MODES = ("max", "min")
#: ``data.format`` values.
DATA_FORMATS = ("auto", "csv", "parquet")
#: ``data.on_label_violation`` values.
LABEL_VIOLATION_MODES = ("error", "drop")


@dataclasses.dataclass
class SelectionConfig:
    """Model selection and early stopping on held-out metrics after each epoch."""

    #: Metric to select on, as ``output.metric`` of the evaluation report
    #: (``ctr.auc``, ``cvr.gauc``, ``ctcvr.logloss``), or a weighted sum
    #: ``{ctr.auc: 0.5, cvr.auc: 0.5}``. ``auto`` (default): the mean held-out
    #: loss of the supervised outputs (log loss of binary ones, RMSE of
    #: regression ones), minimised, whatever ``mode`` says. ``None``: no
    #: per-epoch evaluation, the last epoch is kept.
    metric: str | dict | None = "auto"
    #: ``max`` (AUC, GAUC) or ``min`` (log loss, ECE).
    mode: str = "max"
    #: Stop after this many epochs without improvement (``None``: never).
    #: With ``train.epochs`` as the budget, the default 2 lets a small data set
    #: train for as many epochs as it improves and a large one stop after a
    #: look at two more.
    patience: int | None = 2
    #: Smallest change that counts as an improvement.
    min_delta: float = 0.0
    #: Evaluate and export the best epoch's weights rather than the last.
    restore_best: bool = True


#: ``train.distribution.strategy`` values (``mtrec.training.make_strategy``).
STRATEGIES = ("none", "mirrored", "multi_worker_mirrored", "parameter_server")


@dataclasses.dataclass
class DistributionConfig:
    """How training is spread over devices and machines (``tf.distribute``).

    The cluster of ``multi_worker_mirrored`` and ``parameter_server`` is read
    from the ``TF_CONFIG`` environment variable as TensorFlow defines it
    (``{"cluster": {...}, "task": {"type": ..., "index": ...}}``).
    """

    #: ``none`` (default: one process, TensorFlow's default strategy, exactly
    #: as without this section); ``mirrored`` (synchronous replicas on this
    #: machine's GPUs, or its CPU); ``multi_worker_mirrored`` (synchronous
    #: all-reduce across the ``worker`` tasks of ``TF_CONFIG``);
    #: ``parameter_server`` (variables on the ``ps`` tasks, embedding tables
    #: sharded over them; asynchronous ``worker`` tasks driven by the
    #: ``chief``, the coordinator).
    strategy: str = "none"
    #: ``parameter_server`` only: split every variable into this many shards
    #: (``tf.distribute.experimental.partitioners.FixedShardsPartitioner``).
    num_shards: int | None = None
    #: ``parameter_server`` only: split variables into shards of at least this
    #: many bytes, at most one per ps task
    #: (``MinSizePartitioner``; default 256 KiB when ``num_shards`` is unset).
    min_shard_bytes: int | None = None


@dataclasses.dataclass
class TrainConfig:
    """The optimisation."""

    batch_size: int = 1024
    #: The most epochs to train; with ``selection`` (the default) training
    #: stops earlier once the held-out loss stops improving, and the best
    #: epoch is kept. The same default fits a large click log (best after one
    #: pass, stopped after three) and a table of 80k rows (a dozen epochs).
    epochs: int = 50
    #: Stop each epoch after this many steps (``None``: a full pass).
    steps_per_epoch: int | None = None
    #: ``adam``, ``adagrad``, ``sgd``, ``rmsprop``, or ``composite``:
    #: ``embedding_optimizer`` on the embedding tables and Adam on every other
    #: variable (``tfrs.experimental.optimizers.CompositeOptimizer``).
    optimizer: str = "adam"
    learning_rate: float = 0.003
    #: ``constant``; ``cosine``: decay from ``learning_rate`` to
    #: ``lr_final_fraction * learning_rate`` over all planned steps (settles the
    #: output bias, so predictions end calibrated; see the note on issue #2);
    #: ``cosine_epoch`` (default): the same decay within every epoch, restarting
    #: each epoch (SGDR), so every epoch ends calibrated and early stopping can
    #: keep any of them.
    lr_schedule: str = "cosine_epoch"
    #: Final learning rate of the cosine schedule, as a fraction of the first.
    lr_final_fraction: float = 0.02
    #: ``composite`` only: the embeddings' optimiser (``adagrad``, ``sgd``,
    #: ``adam``, ``rmsprop``).
    embedding_optimizer: str = "adagrad"
    #: ``composite`` only: the embeddings' learning rate (``None``: the
    #: ``learning_rate``; Adagrad usually wants a larger one, e.g. 0.05).
    embedding_learning_rate: float | None = None
    #: Checkpoints kept in ``<run>/checkpoints`` (one per epoch; resume reads
    #: the last).
    checkpoints_to_keep: int = 3
    #: Also checkpoint every this many steps within an epoch (``None``: only
    #: at epoch ends), with the input position, so ``mtrec resume`` continues
    #: a killed run at the next batch with the weights the uninterrupted run
    #: has there. A multiple of ``steps_per_execution``; one process only.
    checkpoint_every_steps: int | None = None
    #: Measure inter-task affinity (TAG's lookahead, ``mtrec.affinity``) on
    #: every this many training steps (``None``: off). Leaves the training
    #: trajectory unchanged; costs about ``tasks + 1`` forward passes and
    #: ``tasks`` backward passes per measurement. One process only.
    affinity_every_steps: int | None = None
    #: Also force deterministic kernels (``enable_op_determinism``, process
    #: wide, slower). Runs on CPU with the same seed already give identical
    #: metrics without it; set it on GPUs.
    deterministic: bool = False
    #: Per-epoch model selection and early stopping.
    selection: SelectionConfig = dataclasses.field(default_factory=SelectionConfig)
    #: Batch size of evaluation and export scoring.
    eval_batch_size: int = 8192
    #: Show a progress bar. It is the only per-batch callback work: with it the
    #: NaN/inf loss check also runs after every batch (naming the batch),
    #: without it once per epoch (naming the epoch; an epoch's running mean
    #: loss stays NaN once any batch was NaN, so nothing slips through).
    progress: bool = True
    #: Training steps per call of the compiled train function (``model.compile``'s
    #: ``steps_per_execution``): fewer Python round trips per batch. Callbacks'
    #: batch hooks then see every ``steps_per_execution``-th batch.
    steps_per_execution: int = 1
    #: Compile the train step with XLA (``model.compile(jit_compile=True)``).
    #: Off by default: on CPU it measured slower (issue #11), and the string
    #: lookups of raw ids cannot be compiled.
    jit_compile: bool = False
    #: Run the per-step training metrics (AUC per task) during ``fit``; ``false``
    #: skips them (a smaller, faster train step; the held-out evaluation is
    #: unchanged).
    training_metrics: bool = True
    #: TensorBoard writes the logs every ``epoch`` (default: no per-batch work)
    #: or every this many batches.
    tensorboard_update_freq: str | int = "epoch"
    #: Training on several devices or machines (``tf.distribute``).
    distribution: DistributionConfig = dataclasses.field(
        default_factory=DistributionConfig
    )


@dataclasses.dataclass
class EvalConfig:
    """What evaluation reports besides AUC and log loss."""

    #: ``{output: column}`` of true probabilities (synthetic data): the oracle AUC.
    oracle: dict = dataclasses.field(default_factory=dict)
    #: Column to group rows by for the group AUC (``gauc``), e.g. ``user_id``;
    #: a feature column or any other column of the data. ``None``: no GAUC.
    gauc_group: str | None = None
    #: Draw the run's figures into ``<run>/plots/`` at the end
    #: (``mtrec.plots.plot_run``; ``mtrec plot RUN`` draws them later too).
    plots: bool = True


@dataclasses.dataclass
class WeightingConfig:
    """How the task losses are combined (``mtrec.weighting.WEIGHTINGS``)."""

    #: ``fixed`` (the tasks' ``weight``), ``equal``, ``initial_loss``,
    #: ``realtime``, ``grad_norm_static``, ``uncertainty``, ``gradnorm``,
    #: ``dwa``, ``lbtw``, ``dtp``, ``pcgrad`` or ``rlw``.
    name: str = "fixed"
    #: Keyword arguments of the strategy, e.g. ``{temperature: 2.0}`` (dwa),
    #: ``{alpha: 1.5}`` (gradnorm), ``{gamma: 1.0}`` (dtp).
    args: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class ExportConfig:
    """Where the SavedModel goes."""

    #: ``mtrec train`` exports a SavedModel at the end of the run.
    enabled: bool = True
    #: The serving export base (versions ``<base>/<n>/``) that ``mtrec
    #: export RUN`` publishes to, and ``mtrec train`` too with ``publish``.
    base: str = "exports/mtrec"
    #: ``false`` (default): ``mtrec train`` exports into the run directory
    #: (``<run>/export/<n>/``), so an experiment never becomes the newest
    #: version a server loads; publish it with ``mtrec export RUN``.
    #: ``true``: ``mtrec train`` exports straight to ``base``.
    publish: bool = False


@dataclasses.dataclass
class RunConfig:
    """A whole run. Relative paths are resolved against the working directory,
    except ``features`` given as a file, which is relative to the config file."""

    name: str = "run"
    seed: int = 42
    #: Parent directory of run directories (``<runs_dir>/<name>-<timestamp>``).
    runs_dir: str = "runs"
    #: Feature specs: a list of dicts or the path of a YAML file holding one.
    features: typing.Any = None
    #: Task dicts: ``{name, label, kind, weight, condition}``.
    tasks: list = dataclasses.field(default_factory=list)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    weighting: WeightingConfig = dataclasses.field(default_factory=WeightingConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _from_dict(cls, data: dict, where: str):
    if not isinstance(data, dict):
        raise ConfigError(
            f"{where or 'config'}: expected a mapping, got {type(data).__name__}"
        )
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown key(s) {[f'{where}{k}' for k in unknown]}; valid keys under "
            f"'{where.rstrip('.') or 'top level'}': {sorted(fields)}"
        )
    kwargs = {}
    for key, value in data.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _from_dict(hint, value or {}, f"{where}{key}.")
        else:
            kwargs[key] = _check_type(value, hint, f"{where}{key}")
    return cls(**kwargs)


def _check_type(value, hint, key: str):
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if typing.Any in allowed:
        return value
    for kind in allowed:
        origin = typing.get_origin(kind) or kind
        if kind is type(None) and value is None:
            return value
        if (
            origin is float
            and isinstance(value, (int, float))
            and not isinstance(value, bool)
        ):
            return float(value)
        if origin is float and isinstance(value, str):
            # PyYAML (YAML 1.1) reads 1e-3 as a string; accept numeric strings.
            try:
                return float(value)
            except ValueError:
                pass
        if origin is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if origin in (str, bool, list, dict) and isinstance(value, origin):
            return value
    names = [getattr(k, "__name__", str(k)) for k in allowed]
    raise ConfigError(f"'{key}' must be {' or '.join(names)}. Received: {value!r}")


def _apply_override(data: dict, assignment: str) -> None:
    if "=" not in assignment:
        raise ConfigError(
            f"--set expects key=value, e.g. train.epochs=2. Received: {assignment!r}"
        )
    key, raw = assignment.split("=", 1)
    parts = key.strip().split(".")
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(
                f"--set {key}: '{'.'.join(parts[: i + 1])}' is not a section"
            )
        node = child
    try:
        node[parts[-1]] = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {key}: cannot parse value {raw!r}: {err}") from err


def _yaml_problem(err: yaml.YAMLError) -> str:
    """``", line L, column C: invalid YAML: <problem>"`` on one line."""
    mark = getattr(err, "problem_mark", None)
    where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    context = getattr(err, "context", None)
    return f"{where}: invalid YAML: {f'{context}: ' if context else ''}{problem}"


def load_config(
    source: str | os.PathLike | dict,
    overrides: Sequence[str] = (),
    *,
    in_memory: bool = False,
) -> RunConfig:
    """Reads a YAML file (or a dict), applies ``key=value`` overrides, validates.

    Args:
      source: path of a YAML file, or the config as a dict.
      overrides: dotted assignments with YAML values, e.g.
        ``["train.epochs=2", "model.backbone_args.units=[128, 64]"]``.
      in_memory: the rows will be given to ``mtrec.training.prepare`` as
        tables, so ``data.train`` may be empty.

    Raises:
      ConfigError: unknown keys, wrong types or unreadable files, naming the key.
    """
    base_dir = pathlib.Path.cwd()
    if isinstance(source, dict):
        data = copy.deepcopy(source)
    else:
        path = pathlib.Path(source)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}{_yaml_problem(err)}") from err
        if not isinstance(data, dict):
            raise ConfigError(
                f"{path}: expected a mapping of config keys (name, features, "
                f"tasks, data, ...), got a YAML {type(data).__name__}"
            )
        base_dir = path.resolve().parent
    for assignment in overrides:
        _apply_override(data, assignment)
    config = _from_dict(RunConfig, data, "")
    if isinstance(config.features, str):
        feature_path = pathlib.Path(config.features)
        if not feature_path.is_absolute():
            feature_path = base_dir / feature_path
        if not feature_path.is_file():
            raise ConfigError(f"'features': file not found: {feature_path}")
        config.features = str(feature_path)
    validate_config(config, in_memory=in_memory)
    return config


def prepared_directory(config: "RunConfig") -> pathlib.Path:
    """``data.prepared_dir``, default ``<runs_dir>/.prepared``."""
    if config.data.prepared_dir:
        return pathlib.Path(config.data.prepared_dir)
    return pathlib.Path(config.runs_dir) / ".prepared"


def validate_config(config: RunConfig, *, in_memory: bool = False) -> None:
    """Checks the values ``load_config`` cannot check by type alone.

    ``load_config`` calls it; ``mtrec.training.prepare`` calls it again, so a
    ``RunConfig`` built or changed in Python is checked before any data is read.
    With ``in_memory`` (the rows are given as tables) ``data.train`` may be
    empty.

    Raises:
      ConfigError: the first bad value, naming its key.
    """
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
    for key in ("batch_size", "epochs", "eval_batch_size", "checkpoints_to_keep"):
        if getattr(config.train, key) < 1:
            raise ConfigError(
                f"'train.{key}' must be >= 1. Received: {getattr(config.train, key)}"
            )
    _check_train(config.train)
    _check_selection(config.train.selection)
    _check_distribution(config)


def _check_train(train: TrainConfig) -> None:
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
    for key in ("jit_compile", "training_metrics", "progress", "deterministic"):
        value = getattr(train, key)
        if not isinstance(value, bool):
            raise ConfigError(f"'train.{key}' must be bool. Received: {value!r}")
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


#: ``train.selection.metric`` that selects on the mean held-out loss.
AUTO_SELECTION = "auto"


def selection_terms(
    metric: str | dict, output_kinds: dict[str, str] | None = None
) -> dict[str, float]:
    """``{"output.metric": weight}`` of a ``train.selection.metric``.

    ``auto`` needs ``output_kinds`` (``{output: task kind}`` of the supervised
    outputs): the mean of their log losses (binary) and RMSEs (regression).
    """
    if metric == AUTO_SELECTION:
        if not output_kinds:
            raise ValueError("selection metric 'auto' needs the supervised outputs")
        weight = 1.0 / len(output_kinds)
        return {
            f"{output}.{'logloss' if kind == 'binary' else 'rmse'}": weight
            for output, kind in output_kinds.items()
        }
    return {metric: 1.0} if isinstance(metric, str) else dict(metric)


def selection_mode(selection: "SelectionConfig") -> str:
    """``min`` for the ``auto`` metric (a loss), else ``selection.mode``."""
    return "min" if selection.metric == AUTO_SELECTION else selection.mode


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


def save_config(config: RunConfig, path: str | os.PathLike) -> None:
    """Writes the resolved config as YAML (loadable by ``load_config``)."""
    with open(path, "w") as f:
        yaml.safe_dump(config.to_dict(), f, sort_keys=False)
