"""Everything about a run checked before a byte of data is read.

``validate_config`` checks each value by itself; :func:`preflight` checks the
rest that needs the features, the tasks or the file system: the feature specs
and tasks parse, the columns make a reader schema (``label_requires`` pairs
labels, no column is both a feature and a label), the model builds on
placeholder preprocessing (every model, backbone, tower and weighting
argument), the optimiser and schedule exist, the selection metric names an
output the model has, and the directories the run writes can be written.
Each failure is a ``ConfigError`` naming its key.
"""

import math
import os
import pathlib

import tensorflow as tf

from mtrec.features import OUTPUT_ORDERS
from mtrec.features import FeatureSet
from mtrec.features import encodable_features
from mtrec.precision import PRECISIONS
from mtrec.training.builders import build_feature_set
from mtrec.training.builders import build_tasks
from mtrec.training.builders import check_optimizer_names
from mtrec.training.builders import column_schema
from mtrec.training.builders import dry_build
from mtrec.training.config import AUTO_SELECTION
from mtrec.training.config import ConfigError
from mtrec.training.config import ModelConfig
from mtrec.training.config import RunConfig
from mtrec.training.config import selection_terms


def preflight(config: RunConfig, run_dir: str | os.PathLike | None = None) -> None:
    """Checks a validated config against its specs, model and directories.

    Args:
      config: a config that passed ``validate_config``.
      run_dir: the run directory ``train`` was given, if any.

    Raises:
      ConfigError: the first problem, naming its config key (and file).
    """
    try:
        feature_set = build_feature_set(config)
    except (OSError, ValueError) as err:
        raise ConfigError(f"'features': {err}") from err
    try:
        tasks = build_tasks(config)
    except ConfigError:
        raise
    except ValueError as err:
        raise ConfigError(f"'tasks': {err}") from err
    try:  # the reader's contract: label_requires, feature/label clashes
        column_schema(config, feature_set, tasks)
    except ConfigError:
        raise
    except ValueError as err:
        raise ConfigError(f"'data': {err}") from err
    check_model_values(config)
    check_compilable_features(config, feature_set)
    check_optimizer_names(config)
    outputs = [t.name for t in tasks]
    if config.model.architecture == "esmm":
        outputs.append(config.model.ctcvr_name)
    check_selection_outputs(config, outputs)
    dry_build(config, feature_set, tasks)
    check_writable("runs_dir", config.runs_dir)
    if run_dir is not None:
        check_writable("--run-dir", run_dir)
    if config.export.enabled and config.export.publish:
        check_writable("export.base", config.export.base)


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _non_negative(value) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def check_model_values(config: RunConfig) -> None:
    """The tower and crossing values of ``model``, each by its key."""
    mc = config.model
    _check_tower_values(mc)
    _check_cross_values(mc)
    _check_runtime_values(config)
    _check_tower_activation(mc)


def _check_tower_values(mc: ModelConfig) -> None:
    """``model.tower_units``, ``tower_dropout`` and the L2 factors."""
    units = mc.tower_units
    if not isinstance(units, list) or not all(_positive_int(u) for u in units):
        raise ConfigError(
            f"'model.tower_units' must be a list of ints >= 1. Received: {units!r}"
        )
    if not _non_negative(mc.tower_dropout) or mc.tower_dropout >= 1:
        raise ConfigError(
            f"'model.tower_dropout' must be in [0, 1). Received: {mc.tower_dropout!r}"
        )
    for key in ("tower_l2", "embeddings_l2"):
        if not _non_negative(getattr(mc, key)):
            raise ConfigError(
                f"'model.{key}' must be a number >= 0. Received: {getattr(mc, key)!r}"
            )


def _check_cross_values(mc: ModelConfig) -> None:
    """``model.cross_layers`` and ``model.cross_projection_dim``."""
    if not isinstance(mc.cross_layers, int) or mc.cross_layers < 0:
        raise ConfigError(
            f"'model.cross_layers' must be an int >= 0. Received: {mc.cross_layers!r}"
        )
    if mc.cross_projection_dim is not None and not _positive_int(
        mc.cross_projection_dim
    ):
        raise ConfigError(
            "'model.cross_projection_dim' must be an int >= 1 or null. "
            f"Received: {mc.cross_projection_dim!r}"
        )


def _check_runtime_values(config: RunConfig) -> None:
    """How the model runs: ``model.embedding_order``, ``predict_jit_compile``
    (one process only) and ``precision``."""
    mc = config.model
    if mc.embedding_order not in OUTPUT_ORDERS:
        raise ConfigError(
            f"'model.embedding_order' must be one of {list(OUTPUT_ORDERS)}. "
            f"Received: {mc.embedding_order!r}"
        )
    if not isinstance(mc.predict_jit_compile, bool):
        raise ConfigError(
            "'model.predict_jit_compile' must be bool. "
            f"Received: {mc.predict_jit_compile!r}"
        )
    strategy = config.train.distribution.strategy
    if mc.predict_jit_compile and strategy != "none":
        raise ConfigError(
            "'model.predict_jit_compile: true' works in one process; under "
            f"'train.distribution.strategy: {strategy}' it is not supported"
        )
    if mc.precision not in PRECISIONS:
        raise ConfigError(
            f"'model.precision' must be one of {list(PRECISIONS)}. "
            f"Received: {mc.precision!r}"
        )


def _check_tower_activation(mc: ModelConfig) -> None:
    """``model.tower_activation`` names a ``tf.keras`` activation."""
    try:
        tf.keras.activations.get(mc.tower_activation)
    except (TypeError, ValueError) as err:
        raise ConfigError(
            f"'model.tower_activation': unknown activation {mc.tower_activation!r} "
            "(a tf.keras activation name, e.g. 'relu', 'gelu', 'swish')"
        ) from err


def check_compilable_features(config: RunConfig, feature_set: FeatureSet) -> None:
    """``train.jit_compile`` and ``model.predict_jit_compile`` need features
    XLA can compile (``FeatureSet.uncompilable`` empty): found here, not by
    XLA's error about a string op after the prepare pass has read the data.

    With ``train.encode_ids`` the training batches hold table rows instead of
    the raw values of every ``encodable_features`` feature (single-valued
    ones with a vocabulary or hash lookup), so the training step has no lookup
    for them and ``train.jit_compile`` needs only the others compilable.
    ``model.predict_jit_compile`` compiles the model on raw values, as
    served, and needs all of them.
    """
    uncompilable = feature_set.uncompilable
    if config.train.jit_compile and config.train.encode_ids:
        encoded = set(encodable_features(feature_set))
        blocking = [name for name in uncompilable if name not in encoded]
        if blocking:
            raise ConfigError(
                "'train.jit_compile: true' needs a training step XLA can "
                "compile; 'train.encode_ids: true' encodes the single-valued "
                "categorical features before training, not a multi-valued "
                f"feature or its query. Features {blocking} need a lookup or "
                "a string op in the training step"
            )
    elif config.train.jit_compile and uncompilable:
        raise ConfigError(
            _UNCOMPILABLE.format(key="train.jit_compile", names=uncompilable)
            + " (or set 'train.encode_ids: true': the single-valued ones are "
            "then encoded before training)"
        )
    if config.model.predict_jit_compile and uncompilable:
        raise ConfigError(
            _UNCOMPILABLE.format(key="model.predict_jit_compile", names=uncompilable)
        )


_UNCOMPILABLE = (
    "'{key}: true' needs features XLA can compile: every categorical feature "
    "single-valued with encoded ids (`num_ids`), no vocabulary, hashing or "
    "token splitting. Features {names} need a lookup or a string op"
)


def check_selection_outputs(config: RunConfig, outputs: list[str]) -> None:
    """Every ``train.selection.metric`` term names an output of the model."""
    metric = config.train.selection.metric
    if metric is None or metric == AUTO_SELECTION:
        return
    for term in selection_terms(metric):
        output = term.split(".", 1)[0]
        if output not in outputs:
            raise ConfigError(
                f"'train.selection.metric': {term!r} names output {output!r}, "
                f"which the model does not have; its outputs: {outputs}"
            )


def check_writable(key: str, path: str | os.PathLike) -> None:
    """``path`` is a directory, or can be made one, that this process can write.

    Raises:
      ConfigError: ``path`` (or a parent) is a file, or the nearest existing
        parent is not writable.
    """
    path = pathlib.Path(path).absolute()
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(
            f"'{key}' must be a directory; {existing} is a file. Received: {path}"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"'{key}': {existing} is not writable by this user. Received: {path}"
        )
