"""Turn a RunConfig into features, tasks and a model: the explicit registries."""

import inspect
import logging

import tensorflow as tf
import tensorflow_recommenders as tfrs

from mtrec.data.schema import ColumnSchema
from mtrec.features.embedding import FeatureEmbedding
from mtrec.features.feature_set import FeatureSet
from mtrec.layers.cgc import CGC
from mtrec.layers.mmoe import MMoE
from mtrec.layers.omoe import OMoE
from mtrec.layers.ple import PLE
from mtrec.layers.shared_bottom import SharedBottom
from mtrec.models.esmm import ESMM
from mtrec.models.esmm import esmm_supervised_tasks
from mtrec.models.ranker import MultiTaskRanker
from mtrec.models.task import Task
from mtrec.precision import precision_scope
from mtrec.training.config import ConfigError
from mtrec.training.config import RunConfig
from mtrec.weighting import WEIGHTINGS
from mtrec.weighting import build_weighting

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
    # The config's mappings in one order (the schema's order is the prepared
    # data's, and its cache key): a YAML file (keys sorted) and the same
    # config as a dict must hit one cache entry.
    passthrough = {col: "float" for col in sorted(config.eval.oracle.values())}
    group = config.eval.gauc_group
    if group and group not in feature_set.names and group not in binary + regression:
        # A feature column is already in every batch; any other column is
        # carried along as a string.
        passthrough[group] = "string"
    return feature_set.column_schema(
        label_columns=binary,
        regression_label_columns=regression,
        passthrough_columns=passthrough,
        label_requires=dict(sorted(config.data.label_requires.items())),
        on_label_violation=config.data.on_label_violation,
    )


def build_model(
    config: RunConfig,
    feature_set: FeatureSet,
    tasks: list[Task],
    vocabularies: dict,
    dense_stats: dict,
) -> MultiTaskRanker:
    """The model the config describes (not yet compiled), every layer built
    under ``model.precision`` (:func:`mtrec.precision.precision_scope`)."""
    _check_model_names(config)
    mc = config.model
    with precision_scope(mc.precision):
        features = FeatureEmbedding(
            feature_set.to_dicts(),
            vocabularies=vocabularies,
            dense_stats=dense_stats,
            embeddings_l2=mc.embeddings_l2,
            output_order=mc.embedding_order,
            name="features",
        )
        return _ranker(config, features, _backbone(config, tasks), tasks)


def _check_model_names(config: RunConfig) -> None:
    """``model.backbone`` and ``model.architecture``."""
    mc = config.model
    if mc.backbone not in BACKBONES:
        raise ConfigError(
            f"'model.backbone': unknown backbone {mc.backbone!r}; choose from "
            f"{sorted(BACKBONES)}"
        )
    if mc.architecture not in ARCHITECTURES:
        raise ConfigError(
            f"'model.architecture': unknown architecture {mc.architecture!r}; "
            f"choose from {list(ARCHITECTURES)}"
        )


def _backbone(config: RunConfig, tasks: list[Task]) -> tf.keras.layers.Layer:
    """``model.backbone`` with ``model.backbone_args`` (each checked)."""
    mc = config.model
    backbone_cls = BACKBONES[mc.backbone]
    valid = sorted(
        name
        for name in inspect.signature(backbone_cls.__init__).parameters
        if name not in ("self", "task_names", "kwargs", "name")
    )
    unknown = sorted(set(mc.backbone_args) - set(valid))
    if unknown:
        raise ConfigError(
            f"'model.backbone_args' for {mc.backbone!r}: unknown argument(s) "
            f"{unknown}; valid: {valid}"
        )
    try:
        return backbone_cls(
            [t.name for t in tasks], name="backbone", **mc.backbone_args
        )
    except (TypeError, ValueError) as err:
        raise ConfigError(f"'model.backbone_args' for {mc.backbone!r}: {err}") from err


def _ranker(
    config: RunConfig,
    features: FeatureEmbedding,
    backbone: tf.keras.layers.Layer,
    tasks: list[Task],
) -> MultiTaskRanker:
    """The ``model.architecture`` ranker with its towers and weighting."""
    mc = config.model
    weighting = config.weighting
    if weighting.name not in WEIGHTINGS:
        raise ConfigError(
            f"'weighting.name': unknown loss weighting {weighting.name!r}; choose "
            f"from {sorted(WEIGHTINGS)}"
        )
    towers = dict(
        weighting=None,  # built below, once the loss outputs are known
        tower_units=mc.tower_units,
        tower_activation=mc.tower_activation,
        tower_dropout=mc.tower_dropout,
        tower_l2=mc.tower_l2,
        cross_layers=mc.cross_layers,
        cross_projection_dim=mc.cross_projection_dim,
        training_metrics=config.train.training_metrics,
        predict_jit_compile=mc.predict_jit_compile,
    )
    try:
        if mc.architecture == "esmm":
            ctr, cvr, extras = _esmm_tasks(tasks)
            supervised = esmm_supervised_tasks(ctr, cvr, extras, mc.ctcvr_name)
            towers["weighting"] = _weighting(config, supervised)
            return ESMM(
                features,
                backbone,
                ctr,
                cvr,
                extra_tasks=extras,
                ctcvr_name=mc.ctcvr_name,
                name="esmm",
                **towers,
            )
        towers["weighting"] = _weighting(config, {t.name: t for t in tasks})
        return MultiTaskRanker(features, backbone, tasks, name="multi_task", **towers)
    except ConfigError:  # already names its key (weighting, esmm's tasks)
        raise
    except ValueError as err:  # a tower or crossing argument out of range
        raise ConfigError(f"'model': {err}") from err


def dry_build(config: RunConfig, feature_set: FeatureSet, tasks: list[Task]) -> None:
    """Builds the config's model on placeholder preprocessing, reading no data.

    Surfaces every model, backbone, tower and weighting argument error as a
    ``ConfigError`` naming its key before the prepare pass reads the files.
    ``feature_set`` and ``tasks`` are the config's, already parsed
    (:func:`build_feature_set`, :func:`build_tasks`).

    Raises:
      ConfigError: a bad model, backbone, tower or weighting argument.
    """
    vocabularies = {
        table: [0] if members[0].dtype == "int64" else ["<dry-build>"]
        for table, members in feature_set.tables.items()
        if members[0].uses_vocabulary
    }
    dense_stats = {
        spec.name: {
            "mean": 0.0,
            "std": 1.0,
            "boundaries": list(spec.boundaries)
            if spec.boundaries is not None
            else ([0.0] if spec.num_buckets else None),
        }
        for spec in feature_set.dense
    }
    build_model(config, feature_set, tasks, vocabularies, dense_stats)


def _weighting(config: RunConfig, supervised: dict):
    """The run's loss weighting for the model's loss outputs ``supervised``."""
    weighting = config.weighting
    try:
        return build_weighting(
            weighting.name, supervised, weighting.args, seed=config.seed
        )
    except ValueError as err:
        raise ConfigError(f"'weighting.args' for {weighting.name!r}: {err}") from err


def _esmm_tasks(tasks) -> tuple:
    """``(ctr, cvr, extra tasks)``: ESMM's one task conditioned on another's label."""
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
    return ctr, cvr, [t for t in tasks if t is not ctr and t is not cvr]


OPTIMIZERS = ("adam", "adagrad", "sgd", "rmsprop")


def _optimizer_class(name: str, legacy: bool):
    module = tf.keras.optimizers.legacy if legacy else tf.keras.optimizers
    return {
        "adam": module.Adam,
        "adagrad": module.Adagrad,
        "sgd": module.SGD,
        "rmsprop": module.RMSprop,
    }[name]


LR_SCHEDULES = ("constant", "cosine", "cosine_epoch")


def _check_schedule(name: str) -> None:
    if name not in LR_SCHEDULES:
        raise ConfigError(
            f"'train.lr_schedule': unknown schedule {name!r}; choose from "
            f"{list(LR_SCHEDULES)}"
        )


def check_optimizer_names(config: RunConfig) -> None:
    """``train.optimizer``, ``train.embedding_optimizer``, ``train.lr_schedule``.

    Raises:
      ConfigError: an unknown name, naming its key and the choices.
    """
    tc = config.train
    choices = sorted([*OPTIMIZERS, "composite"])
    if str(tc.optimizer).lower() not in choices:
        raise ConfigError(
            f"'train.optimizer': unknown optimizer {tc.optimizer!r}; choose from "
            f"{choices}"
        )
    if str(tc.embedding_optimizer).lower() not in OPTIMIZERS:
        raise ConfigError(
            f"'train.embedding_optimizer': unknown optimizer "
            f"{tc.embedding_optimizer!r}; choose from {sorted(OPTIMIZERS)}"
        )
    _check_schedule(tc.lr_schedule)


def learning_rate(
    config: RunConfig,
    rate: float,
    total_steps: int | None,
    epoch_steps: int | None = None,
):
    """A float, or a cosine decay to ``lr_final_fraction * rate``.

    ``cosine``: one decay over the ``total_steps`` of the run. ``cosine_epoch``:
    the decay over each epoch of ``epoch_steps``, restarting at ``rate`` at the
    start of every epoch (SGDR with a period of one epoch; Loshchilov & Hutter,
    "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR 2017), so every
    epoch ends at the small rate and any epoch is a good one to select. Both
    are constant without the step counts.
    """
    tc = config.train
    _check_schedule(tc.lr_schedule)
    if not 0.0 <= tc.lr_final_fraction <= 1.0:
        raise ConfigError(
            "'train.lr_final_fraction' must be in [0, 1]. "
            f"Received: {tc.lr_final_fraction}"
        )
    if tc.lr_schedule == "cosine_epoch" and epoch_steps:
        return tf.keras.optimizers.schedules.CosineDecayRestarts(
            rate,
            first_decay_steps=int(epoch_steps),
            t_mul=1.0,
            m_mul=1.0,
            alpha=tc.lr_final_fraction,
        )
    if tc.lr_schedule != "cosine" or not total_steps:
        return rate
    return tf.keras.optimizers.schedules.CosineDecay(
        rate, decay_steps=int(total_steps), alpha=tc.lr_final_fraction
    )


def build_optimizer(
    config: RunConfig,
    model: MultiTaskRanker | None = None,
    total_steps: int | None = None,
    epoch_steps: int | None = None,
) -> tf.keras.optimizers.Optimizer:
    """The optimiser ``train.optimizer`` names.

    From ``tf.keras.optimizers.legacy`` (fused kernels) when
    ``train.fused_optimizer``, else from ``tf.keras.optimizers``.

    ``composite`` is ``tfrs.experimental.optimizers.CompositeOptimizer`` with
    ``train.embedding_optimizer`` (default Adagrad) on
    ``model.embedding_variables()`` and Adam on ``model.dense_variables()``
    (everything else, learnable loss weights included); it needs the model.
    """
    check_optimizer_names(config)
    tc = config.train
    name = tc.optimizer.lower()
    if name == "composite":
        embedding = tc.embedding_optimizer.lower()
        if model is None:
            raise ValueError("the composite optimizer needs the model")
        embedding_lr = tc.embedding_learning_rate or tc.learning_rate
        return tfrs.experimental.optimizers.CompositeOptimizer(
            [
                (
                    _optimizer_class(embedding, legacy=True)(
                        learning_rate=learning_rate(
                            config, embedding_lr, total_steps, epoch_steps
                        )
                    ),
                    model.embedding_variables,
                ),
                (
                    _optimizer_class("adam", legacy=True)(
                        learning_rate=learning_rate(
                            config, tc.learning_rate, total_steps, epoch_steps
                        )
                    ),
                    model.dense_variables,
                ),
            ]
        )
    return _optimizer_class(name, legacy=tc.fused_optimizer)(
        learning_rate=learning_rate(config, tc.learning_rate, total_steps, epoch_steps)
    )


def dummy_inputs(feature_set: FeatureSet, rows: int = 1) -> dict[str, tf.Tensor]:
    """A batch of empty raw inputs (creates the model's variables)."""
    out = {}
    for name in feature_set.names:
        dtype = feature_set.input_dtype(name)
        value = "" if dtype == tf.string else 0
        out[name] = tf.fill([rows], tf.constant(value, dtype=dtype))
    return out
