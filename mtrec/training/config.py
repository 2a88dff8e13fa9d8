"""Typed run configuration: one YAML file reproduces a run."""

import copy
import dataclasses
import os
import pathlib
import types
import typing
from collections.abc import Sequence

import yaml


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


@dataclasses.dataclass
class TrainConfig:
    """The optimisation."""

    batch_size: int = 2048
    epochs: int = 1
    #: Stop each epoch after this many steps (``None``: a full pass).
    steps_per_epoch: int | None = None
    optimizer: str = "adam"
    learning_rate: float = 0.001
    #: Batch size of evaluation and export scoring.
    eval_batch_size: int = 8192
    #: Show a progress bar.
    progress: bool = True


@dataclasses.dataclass
class EvalConfig:
    """What evaluation reports besides AUC and log loss."""

    #: ``{output: column}`` of true probabilities (synthetic data): the oracle AUC.
    oracle: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class ExportConfig:
    """Where the SavedModel goes."""

    enabled: bool = True
    #: Export base directory; versions are ``<base>/<n>/``.
    base: str = "exports/mtrec"


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


def load_config(
    source: str | os.PathLike | dict, overrides: Sequence[str] = ()
) -> RunConfig:
    """Reads a YAML file (or a dict), applies ``key=value`` overrides, validates.

    Args:
      source: path of a YAML file, or the config as a dict.
      overrides: dotted assignments with YAML values, e.g.
        ``["train.epochs=2", "model.backbone_args.units=[128, 64]"]``.

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
            raise ConfigError(f"{path}: invalid YAML: {err}") from err
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
    elif not isinstance(config.features, list) or not config.features:
        raise ConfigError(
            "'features' must be a non-empty list or the path of a YAML file"
        )
    if not config.tasks:
        raise ConfigError("'tasks' must list at least one task")
    if not config.data.train:
        raise ConfigError("'data.train' must name the click log to train on")
    if not 0.0 < config.data.eval_fraction < 1.0:
        raise ConfigError(
            f"'data.eval_fraction' must be in (0, 1). Received: {config.data.eval_fraction}"
        )
    for key in ("batch_size", "epochs", "eval_batch_size"):
        if getattr(config.train, key) < 1:
            raise ConfigError(
                f"'train.{key}' must be >= 1. Received: {getattr(config.train, key)}"
            )
    return config


def save_config(config: RunConfig, path: str | os.PathLike) -> None:
    """Writes the resolved config as YAML (loadable by ``load_config``)."""
    with open(path, "w") as f:
        yaml.safe_dump(config.to_dict(), f, sort_keys=False)
