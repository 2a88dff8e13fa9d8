"""Typed run configuration: one YAML file reproduces a run.

``load_config`` reads YAML (or a dict) and ``--set`` overrides into the
dataclasses of :mod:`mtrec.training.config_schema` and checks them with
:mod:`mtrec.training.config_checks`; this module re-exports both, so
``from mtrec.training.config import RunConfig, validate_config`` keeps working.
"""

import copy
import dataclasses
import os
import pathlib
import types
import typing
from collections.abc import Sequence

import yaml

from mtrec.training.config_checks import validate_config
from mtrec.training.config_schema import AUTO_SELECTION
from mtrec.training.config_schema import DATA_FORMATS
from mtrec.training.config_schema import LABEL_VIOLATION_MODES
from mtrec.training.config_schema import SELECTION_MODES
from mtrec.training.config_schema import STRATEGIES
from mtrec.training.config_schema import ConfigError
from mtrec.training.config_schema import DataConfig
from mtrec.training.config_schema import DistributionConfig
from mtrec.training.config_schema import EvalConfig
from mtrec.training.config_schema import ExportConfig
from mtrec.training.config_schema import ModelConfig
from mtrec.training.config_schema import RunConfig
from mtrec.training.config_schema import SelectionConfig
from mtrec.training.config_schema import TrainConfig
from mtrec.training.config_schema import WeightingConfig
from mtrec.training.config_schema import prepared_directory
from mtrec.training.config_schema import selection_mode
from mtrec.training.config_schema import selection_terms


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


def save_config(config: RunConfig, path: str | os.PathLike) -> None:
    """Writes the resolved config as YAML (loadable by ``load_config``)."""
    with open(path, "w") as f:
        yaml.safe_dump(config.to_dict(), f, sort_keys=False)


__all__ = [
    "AUTO_SELECTION",
    "ConfigError",
    "DATA_FORMATS",
    "DataConfig",
    "DistributionConfig",
    "EvalConfig",
    "ExportConfig",
    "LABEL_VIOLATION_MODES",
    "ModelConfig",
    "RunConfig",
    "SELECTION_MODES",
    "STRATEGIES",
    "SelectionConfig",
    "TrainConfig",
    "WeightingConfig",
    "load_config",
    "prepared_directory",
    "save_config",
    "selection_mode",
    "selection_terms",
    "validate_config",
]
