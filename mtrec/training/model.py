"""``build_model(prepared, config)``: the model of a prepared run, with variables."""

import tensorflow as tf

from mtrec.models.ranker import MultiTaskRanker
from mtrec.training import builders
from mtrec.training.config import RunConfig
from mtrec.training.prepared import Prepared


def build_model(prepared: Prepared, config: RunConfig | None = None) -> MultiTaskRanker:
    """The model ``config.model`` describes on the prepared features, built.

    Seeds TensorFlow, numpy and Python with ``config.seed`` first, so the same
    config and data give the same initial weights whatever ran before, then
    creates every variable (one call on a batch of empty inputs). Not compiled:
    :func:`mtrec.training.fit` (or :func:`mtrec.training.compile_model`)
    compiles it.

    Args:
      prepared: from :func:`mtrec.training.prepare`.
      config: the run's config; default ``prepared.config``.

    Raises:
      ConfigError: an unknown backbone, architecture or weighting, or bad
        ``backbone_args`` / ``weighting.args``, naming the key.

    Example:

    >>> import numpy as np
    >>> from mtrec.training import build_model, load_config, prepare
    >>> config = load_config({
    ...     "features": [{"name": "city", "kind": "categorical",
    ...                   "embedding_dim": 2}],
    ...     "tasks": [{"name": "ctr", "label": "click"}],
    ...     "model": {"architecture": "multi_task", "backbone_args": {"units": [4]},
    ...               "tower_units": [2]},
    ... }, in_memory=True)
    >>> rows = {"city": np.array(["a", "b"] * 20), "click": np.array([0, 1] * 20)}
    >>> model = build_model(prepare(config, train=rows))
    >>> model.prediction_names
    ['ctr']
    """
    config = prepared.config if config is None else config
    tf.keras.utils.set_random_seed(config.seed)
    model = builders.build_model(
        config,
        prepared.feature_set,
        list(prepared.tasks),
        prepared.vocabulary_files,
        prepared.preprocessing.dense,
    )
    model(builders.dummy_inputs(prepared.feature_set))
    return model
