"""Value transforms shared by fitting (numpy) and the model (graph)."""

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from mtrec.features.dense import DenseFeature
from mtrec.features.input_checks import checked_finite_columns


def signed_log1p(x):
    """``sign(x) * log(1 + |x|)``, one implementation for fitting and serving.

    A ``tf.Tensor`` stays a tensor (the model, any float dtype); anything else
    is computed by the same TensorFlow ops in float64 and returned as numpy
    (the statistics fitted on the train split).

    Example:

    >>> signed_log1p(np.array([-3.0, 0.0, 1e30])).round(4)
    array([-1.3863,  0.    , 69.0776])
    """
    if isinstance(x, tf.Tensor):
        return tf.sign(x) * tf.math.log1p(tf.abs(x))
    values = tf.constant(np.asarray(x, dtype=np.float64))
    return (tf.sign(values) * tf.math.log1p(tf.abs(values))).numpy()


def dense_value(spec: DenseFeature, raw: tf.Tensor, stats: dict) -> tf.Tensor:
    """The transformed value of a dense feature, the same in training and
    serving, before its z-score or buckets: :func:`dense_columns` of the one
    feature.

    Example:

    >>> spec = DenseFeature(name="price", log1p=True, fill_value=0.0)
    >>> raw = tf.constant([float("nan"), 1.0, 1e6])
    >>> value = dense_value(spec, raw, {"min": 0.0, "max": 5.0})
    >>> value.numpy().astype("float64").round(3)
    array([0.   , 0.693, 5.   ])
    """
    return dense_columns([spec], [raw], {spec.name: stats})[0]


def dense_columns(
    specs: Sequence[DenseFeature], raws: Sequence[tf.Tensor], dense_stats: dict
) -> tf.Tensor:
    """``(F, batch)``: the transformed values of dense features, before their
    z-score or buckets, the same in training and serving.

    Per feature: NaN is its ``fill_value`` (a missing cell) when it has one;
    a value still NaN or infinite is an error naming the feature and the row
    (:func:`~mtrec.features.input_checks.checked_finite_columns`, one check
    for all); then :func:`signed_log1p` if ``spec.log1p``; then clipped to
    the training range ``[min, max]`` of ``dense_stats[name]`` when both are
    known. Each step runs once for all features, with per-column constants;
    a feature without the step gets the identity (no fill, no log1p, clip
    to ``±inf``).

    Args:
      specs: the dense features.
      raws: their raw values, ``(batch,)`` each.
      dense_stats: ``{name: {"min", "max", ...}}`` from fitting.
    """
    x = checked_finite_columns(
        [
            (spec.name, raw, spec.fill_value is not None)
            for spec, raw in zip(specs, raws, strict=True)
        ]
    )
    if any(spec.fill_value is not None for spec in specs):
        filled = _column([spec.fill_value is not None for spec in specs]) > 0
        fills = _column([spec.fill_value or 0.0 for spec in specs])
        x = tf.where(tf.logical_and(tf.math.is_nan(x), filled), fills, x)
    if any(spec.log1p for spec in specs):
        x = tf.where(_column([spec.log1p for spec in specs]) > 0, signed_log1p(x), x)
    stats = [dense_stats.get(spec.name, {}) for spec in specs]
    bounded = [s.get("min") is not None and s.get("max") is not None for s in stats]
    if any(bounded):
        low = _column([s["min"] if b else -np.inf for s, b in zip(stats, bounded)])
        high = _column([s["max"] if b else np.inf for s, b in zip(stats, bounded)])
        x = tf.clip_by_value(x, low, high)
    return x


def dense_block(
    specs: Sequence[DenseFeature], raws: Sequence[tf.Tensor], dense_stats: dict
) -> tf.Tensor:
    """``(batch, F)``: each feature's model input, as one block of columns:
    :func:`dense_columns`, then :func:`zscored`. For bucketised features use
    :func:`dense_value`.

    Args:
      specs: the (not bucketised) dense features.
      raws: their raw values, ``(batch,)`` each.
      dense_stats: ``{name: {"mean", "std", "min", "max"}}`` from fitting.

    Example:

    >>> specs = [DenseFeature("price", log1p=True, fill_value=0.0),
    ...          DenseFeature("age", normalization="none")]
    >>> stats = {"price": {"mean": 1.0, "std": 2.0}}
    >>> raws = [tf.constant([float("nan"), 1.0]), tf.constant([30.0, 40.0])]
    >>> dense_block(specs, raws, stats).numpy().astype("float64").round(3).tolist()
    [[-0.5, 30.0], [-0.153, 40.0]]
    """
    return zscored(specs, dense_columns(specs, raws, dense_stats), dense_stats)


def zscored(
    specs: Sequence[DenseFeature], columns: tf.Tensor, dense_stats: dict
) -> tf.Tensor:
    """``(batch, F)`` from :func:`dense_columns`' ``(F, batch)``:
    ``(x - mean) / std`` for a ``zscore`` feature, ``x`` for the others.

    Example:

    >>> specs = [DenseFeature("price"), DenseFeature("age", normalization="none")]
    >>> columns = tf.constant([[1.0, 3.0], [30.0, 40.0]])
    >>> stats = {"price": {"mean": 1.0, "std": 2.0}}
    >>> zscored(specs, columns, stats).numpy().tolist()
    [[0.0, 30.0], [1.0, 40.0]]
    """
    x = columns
    stats = [dense_stats.get(spec.name, {}) for spec in specs]
    scored = [spec.normalization == "zscore" for spec in specs]
    if any(scored):
        mean = _column([s["mean"] if z else 0.0 for s, z in zip(stats, scored)])
        std = _column([s["std"] if z else 1.0 for s, z in zip(stats, scored)])
        x = (x - mean) / std
    return tf.transpose(x)


def bucket_columns(columns: tf.Tensor, boundaries: Sequence[Sequence[float]]):
    """``(F, batch)`` int64 bucket ids of :func:`dense_columns`' ``(F,
    batch)`` values, feature ``f`` cut at ``boundaries[f]``: the count of its
    boundaries ``<= x``, as each one's ``tf.keras.layers.Discretization``
    gives, for all features in one ``searchsorted`` over the boundaries
    padded to one length with ``+inf`` (a value is finite and clipped
    already, so a pad never counts).

    Example:

    >>> columns = tf.constant([[0.0, 1.0, 5.0], [-1.0, 2.0, 2.5]])
    >>> bucket_columns(columns, [[1.0], [0.0, 2.0, 3.0]]).numpy().tolist()
    [[0, 1, 1], [0, 2, 2]]
    """
    width = max(len(b) for b in boundaries)
    padded = np.full((len(boundaries), width), np.inf, np.float32)
    for row, bounds in enumerate(boundaries):
        padded[row, : len(bounds)] = bounds
    return tf.searchsorted(
        tf.constant(padded), columns, side="right", out_type=tf.int64
    )


def _column(values) -> tf.Tensor:
    """``(len(values), 1)`` float32: one constant per feature row."""
    return tf.constant([[v] for v in values], tf.float32)
