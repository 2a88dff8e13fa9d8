"""The dense features' parts of the embedding: bucket ids and the value block."""

from collections.abc import Sequence

import tensorflow as tf

from mtrec.features.dense import DenseFeature
from mtrec.features.transforms import bucket_columns
from mtrec.features.transforms import zscored


def bucket_ids(
    dense: Sequence[DenseFeature], columns: tf.Tensor | None, dense_stats: dict
) -> dict[str, tf.Tensor]:
    """Bucket ids ``(batch,)`` int64 of the bucketised dense features, by
    name, from every dense feature's
    :func:`~mtrec.features.transforms.dense_columns` (``columns``, ``(F,
    batch)``), all in one :func:`~mtrec.features.transforms.bucket_columns`.

    Example:

    >>> dense = [DenseFeature("price"), DenseFeature("age", boundaries=[18.0])]
    >>> columns = tf.constant([[1.0, 2.0], [10.0, 20.0]])
    >>> ids = bucket_ids(dense, columns, {"age": {"boundaries": [18.0]}})
    >>> {name: v.numpy().tolist() for name, v in ids.items()}
    {'age': [0, 1]}
    """
    rows = [i for i, spec in enumerate(dense) if spec.bucketized]
    if not rows:
        return {}
    x = columns if len(rows) == len(dense) else tf.gather(columns, rows)
    bounds = [dense_stats[dense[i].name]["boundaries"] for i in rows]
    ids = bucket_columns(x, bounds)
    return {dense[i].name: ids[k] for k, i in enumerate(rows)}


def value_block(
    dense: Sequence[DenseFeature], columns: tf.Tensor | None, dense_stats: dict
) -> tuple[tf.Tensor | None, list[str]]:
    """The values of the dense features that have one (not bucketised, or
    bucketised with ``keep_value``) as one ``(batch, F_v, 1)`` block,
    z-scored (:func:`~mtrec.features.transforms.zscored`), cut into the
    output like a gathered block; and those features' names, in block order.
    ``(None, [])`` when no feature has a value.

    Example:

    >>> dense = [DenseFeature("price"), DenseFeature("age", boundaries=[18.0])]
    >>> columns = tf.constant([[1.0, 3.0], [10.0, 20.0]])
    >>> block, names = value_block(dense, columns, {"price": {"mean": 1.0, "std": 2.0}})
    >>> block.shape, names
    (TensorShape([2, 1, 1]), ['price'])
    """
    valued = [i for i, spec in enumerate(dense) if spec.has_value]
    if not valued:
        return None, []
    rows = columns if len(valued) == len(dense) else tf.gather(columns, valued)
    block = zscored([dense[i] for i in valued], rows, dense_stats)
    return block[:, :, None], [dense[i].name for i in valued]
