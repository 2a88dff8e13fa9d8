"""The in-graph maps from raw values to table rows: lookups; and the rows of
the bucketised dense features' tables."""

import tensorflow as tf

from mtrec.features.feature_set import FeatureSet


def table_lookups(
    feature_set: FeatureSet, vocabularies: dict
) -> tuple[dict[str, tf.keras.layers.Layer], dict[str, int]]:
    """Each table's raw-value-to-row layer and its number of rows.

    A table of encoded ids (``num_ids``) needs no layer and has ``num_ids``
    rows; one with a vocabulary gets a ``StringLookup`` / ``IntegerLookup``
    (``num_oov_buckets`` OOV rows first); a hashed one a ``Hashing`` layer of
    ``hash_bins`` rows.

    Returns:
      ``(lookups, rows)``: ``{table: layer}`` for the tables that have one and
      ``{table: rows}`` for every table, in ``feature_set.tables`` order.

    Raises:
      ValueError: a table that uses a vocabulary has none in ``vocabularies``.

    Example:

    >>> features = FeatureSet.from_dicts([{"name": "city", "kind": "categorical"}])
    >>> lookups, rows = table_lookups(features, {"city": ["paris", "rome"]})
    >>> type(lookups["city"]).__name__, rows
    ('StringLookup', {'city': 3})
    """
    lookups, rows = {}, {}
    for table, members in feature_set.tables.items():
        spec = members[0]
        if spec.encoded:
            rows[table] = spec.num_ids
            continue
        if spec.uses_vocabulary:
            if table not in vocabularies:
                raise ValueError(
                    f"No vocabulary for table {table!r} (features "
                    f"{[m.name for m in members]}); fit preprocessing first."
                )
            lookup_cls = (
                tf.keras.layers.StringLookup
                if spec.dtype == "string"
                else tf.keras.layers.IntegerLookup
            )
            lookups[table] = lookup_cls(
                vocabulary=vocabularies[table],
                num_oov_indices=spec.num_oov_buckets,
                name=f"lookup_{table}",
            )
            rows[table] = lookups[table].vocabulary_size()
        else:
            lookups[table] = tf.keras.layers.Hashing(
                num_bins=spec.hash_bins, name=f"hash_{table}"
            )
            rows[table] = spec.hash_bins
    return lookups, rows


def bucket_rows(feature_set: FeatureSet, dense_stats: dict) -> dict[str, int]:
    """The bucket table's rows of each bucketised dense feature (one per
    bucket: ``len(boundaries) + 1``), by name in feature order; the ids come
    from :func:`~mtrec.features.transforms.bucket_columns`.

    Checks every dense feature: each needs its statistics in ``dense_stats``,
    a bucketised one its ``boundaries``, and a bucketised one's name (its
    bucket table's name) must not be a categorical table's.

    Raises:
      ValueError: naming the feature, for each case above.

    Example:

    >>> features = FeatureSet.from_dicts(
    ...     [{"name": "age", "kind": "dense", "boundaries": [18.0, 65.0]}])
    >>> bucket_rows(features, {"age": {"mean": 0.0, "std": 1.0,
    ...                                "boundaries": [18.0, 65.0]}})
    {'age': 3}
    """
    tables = set(feature_set.tables)
    rows = {}
    for spec in feature_set.dense:
        if spec.name not in dense_stats:
            raise ValueError(
                f"No statistics for dense feature {spec.name!r};"
                " fit preprocessing first."
            )
        if not spec.bucketized:
            continue
        boundaries = dense_stats[spec.name].get("boundaries")
        if not boundaries:
            raise ValueError(
                f"Dense feature {spec.name!r} is bucketised but has no boundaries."
            )
        if spec.name in tables:
            raise ValueError(
                f"Dense feature {spec.name!r} is bucketised, and its bucket "
                "embedding would share the name of the categorical table "
                f"{spec.name!r}; rename the table (`table: ...`)."
            )
        rows[spec.name] = len(boundaries) + 1
    return rows
