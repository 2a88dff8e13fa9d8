"""Turn a RunConfig into features, tasks and a model: the explicit registries."""

import logging

import tensorflow as tf

from mtrec.data.schema import ColumnSchema
from mtrec.features.embedding import FeatureEmbedding
from mtrec.features.feature_set import FeatureSet
from mtrec.layers.cgc import CGC
from mtrec.layers.mmoe import MMoE
from mtrec.layers.omoe import OMoE
from mtrec.layers.ple import PLE
from mtrec.layers.shared_bottom import SharedBottom
from mtrec.models.esmm import ESMM
from mtrec.models.ranker import MultiTaskRanker
from mtrec.models.task import Task
from mtrec.training.config import ConfigError
from mtrec.training.config import RunConfig

logger = logging.getLogger(__name__)

#: Backbone name -> layer class taking ``task_names`` first.
BACKBONES: dict[str, type[tf.keras.layers.Layer]] = {
    "shared_bottom": SharedBottom,
    "omoe": OMoE,
    "mmoe": MMoE,
    "cgc": CGC,
    "ple": PLE,
}

ARCHITECTURES = ("esmm", "multi_task")


def build_feature_set(config: RunConfig) -> FeatureSet:
    if isinstance(config.features, str):
        return FeatureSet.from_yaml(config.features)
    return FeatureSet.from_dicts(config.features, source="config 'features'")


def build_tasks(config: RunConfig) -> list[Task]:
    tasks = [Task.from_dict(t, where=f"tasks[{i}]") for i, t in enumerate(config.tasks)]
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ConfigError(f"'tasks': task names must be unique. Received: {names}")
    return tasks


def column_schema(
    config: RunConfig, feature_set: FeatureSet, tasks: list[Task]
) -> ColumnSchema:
    """Reader contract: features, every label/condition column, oracle columns."""
    binary, regression = [], []
    for task in tasks:
        (binary if task.kind == "binary" else regression).append(task.label)
        if task.condition:
            binary.append(task.condition)
    clash = sorted(set(feature_set.names) & (set(binary) | set(regression)))
    if clash:
        raise ConfigError(f"columns {clash} are both features and labels")
    return feature_set.column_schema(
        label_columns=binary,
        regression_label_columns=regression,
        passthrough_columns={col: "float" for col in config.eval.oracle.values()},
        label_requires=config.data.label_requires,
        on_label_violation=config.data.on_label_violation,
    )


def build_model(
    config: RunConfig,
    feature_set: FeatureSet,
    tasks: list[Task],
    vocabularies: dict,
    dense_stats: dict,
) -> MultiTaskRanker:
    """The model the config describes (not yet compiled)."""
    mc = config.model
    if mc.backbone not in BACKBONES:
        raise ConfigError(
            f"'model.backbone': unknown backbone {mc.backbone!r}; choose from {sorted(BACKBONES)}"
        )
    if mc.architecture not in ARCHITECTURES:
        raise ConfigError(
            f"'model.architecture': unknown architecture {mc.architecture!r}; "
            f"choose from {list(ARCHITECTURES)}"
        )
    features = FeatureEmbedding(
        feature_set.to_dicts(),
        vocabularies=vocabularies,
        dense_stats=dense_stats,
        embeddings_l2=mc.embeddings_l2,
        name="features",
    )
    try:
        backbone = BACKBONES[mc.backbone](
            [t.name for t in tasks], name="backbone", **mc.backbone_args
        )
    except TypeError as err:
        raise ConfigError(f"'model.backbone_args' for {mc.backbone!r}: {err}") from err
    towers = dict(
        tower_units=mc.tower_units,
        tower_activation=mc.tower_activation,
        tower_dropout=mc.tower_dropout,
        tower_l2=mc.tower_l2,
        cross_layers=mc.cross_layers,
        cross_projection_dim=mc.cross_projection_dim,
    )
    if mc.architecture == "esmm":
        return _build_esmm(tasks, features, backbone, mc.ctcvr_name, towers)
    return MultiTaskRanker(features, backbone, tasks, name="multi_task", **towers)


def _build_esmm(tasks, features, backbone, ctcvr_name, towers) -> ESMM:
    conditioned = [t for t in tasks if t.condition]
    labels = {t.label: t for t in tasks}
    pairs = [(labels[t.condition], t) for t in conditioned if t.condition in labels]
    if len(pairs) != 1:
        raise ConfigError(
            "'model.architecture: esmm' needs exactly one task conditioned on another "
            "task's label (e.g. tasks: [{name: ctr, label: click}, {name: cvr, label: "
            "conversion, condition: click}]). Received: "
            f"{[t.to_dict() for t in tasks]}"
        )
    ctr, cvr = pairs[0]
    extras = [t for t in tasks if t is not ctr and t is not cvr]
    return ESMM(
        features,
        backbone,
        ctr,
        cvr,
        extra_tasks=extras,
        ctcvr_name=ctcvr_name,
        name="esmm",
        **towers,
    )


def build_optimizer(config: RunConfig) -> tf.keras.optimizers.Optimizer:
    name = config.train.optimizer.lower()
    optimizers = {
        "adam": tf.keras.optimizers.Adam,
        "adagrad": tf.keras.optimizers.Adagrad,
        "sgd": tf.keras.optimizers.SGD,
        "rmsprop": tf.keras.optimizers.RMSprop,
    }
    if name not in optimizers:
        raise ConfigError(
            f"'train.optimizer': unknown optimizer {name!r}; choose from {sorted(optimizers)}"
        )
    return optimizers[name](learning_rate=config.train.learning_rate)


def dummy_inputs(feature_set: FeatureSet, rows: int = 1) -> dict[str, tf.Tensor]:
    """A batch of empty raw inputs (creates the model's variables)."""
    out = {}
    for name in feature_set.names:
        dtype = feature_set.input_dtype(name)
        value = "" if dtype == tf.string else 0
        out[name] = tf.fill([rows], tf.constant(value, dtype=dtype))
    return out
