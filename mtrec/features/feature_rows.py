"""A feature's raw input column, and its table rows: looked up, given as they
are, or bucket ids."""

import tensorflow as tf

from mtrec.features.dense import DenseFeature
from mtrec.features.feature_set import FeatureSet
from mtrec.features.id_encoding import row_ids_key
from mtrec.features.input_checks import checked_ids
from mtrec.features.input_dtypes import as_int64
from mtrec.features.input_dtypes import check_input_dtype
from mtrec.features.multi_valued import MultiValuedFeature


def raw_input(inputs, feature_set: FeatureSet, name: str, given: frozenset):
    """Feature ``name``'s input, ``(batch,)``, its dtype checked: the column
    ``name``, or ``row_ids_key(name)`` (its table rows) for a feature in
    ``given``, whose dtype is not checked; a ``(batch, 1)`` column squeezed.

    Raises:
      KeyError: the input dict has no such column, naming it and the
        features the model expects.
      ValueError: the column's dtype cannot be the feature's input
        (:func:`~mtrec.features.input_dtypes.check_input_dtype`).

    Example:

    >>> features = FeatureSet.from_dicts([{"name": "price", "kind": "dense"}])
    >>> raw_input({"price": tf.constant([[1.0], [2.0]])}, features, "price",
    ...           frozenset()).shape
    TensorShape([2])
    """
    key = row_ids_key(name) if name in given else name
    if key not in inputs:
        raise KeyError(
            f"Missing input feature {key!r}; the model expects {feature_set.names}"
        )
    raw = inputs[key]
    if name not in given:
        check_input_dtype(feature_set[name], raw)
    return tf.squeeze(raw, axis=-1) if raw.shape.rank == 2 else raw


def skips_lookup(spec, given: frozenset) -> bool:
    """Whether a single-valued feature's ids skip the lookup (encoded ids,
    or rows given): they are range-checked instead.

    Example:

    >>> from mtrec.features import CategoricalFeature
    >>> city = CategoricalFeature("city")
    >>> skips_lookup(city, frozenset()), skips_lookup(city, frozenset({"city"}))
    (False, True)
    """
    return bool(getattr(spec, "encoded", False)) or spec.name in given


def feature_rows(
    spec, raw: tf.Tensor, lookups: dict, given: frozenset, buckets: dict
) -> tf.Tensor:
    """Row ids of a single-valued feature in its own table: int64 from a
    lookup (``lookups``: table -> layer) or from ``buckets`` (a bucketised
    dense feature's); the raw integer ids of an encoded feature or of one in
    ``given`` (whose inputs are their rows already), in their own dtype:
    ``stack_ids`` keeps a block of ``int32`` ids ``int32`` (the gather takes
    them) and casts the rest to ``int64``.

    Example:

    >>> from mtrec.features import CategoricalFeature
    >>> age = CategoricalFeature("age", dtype="int64", num_ids=5)
    >>> feature_rows(age, tf.constant([3], tf.int32), {}, frozenset(), {}).dtype.name
    'int32'
    """
    if isinstance(spec, DenseFeature):
        return buckets[spec.name]
    if skips_lookup(spec, given):
        return raw  # any integer dtype (stack_ids)
    return lookups[spec.table_name](as_int64(raw))


def token_rows(
    spec: MultiValuedFeature, tokens: tf.RaggedTensor, lookups: dict
) -> tf.RaggedTensor:
    """Row ids of a multi-valued feature's ``(batch, None)`` tokens in its
    own table: looked up (``lookups``: table -> layer), or, for encoded ids
    (``num_ids``), the tokens range-checked
    (:func:`~mtrec.features.input_checks.checked_ids`, naming the batch row).

    Example:

    >>> spec = MultiValuedFeature("tags", dtype="int64", num_ids=5)
    >>> tokens = tf.ragged.constant([[1, 4], []], tf.int64)
    >>> token_rows(spec, tokens, {}).to_list()
    [[1, 4], []]
    """
    if spec.encoded:
        flat = checked_ids(
            tokens.flat_values[:, None],
            [(spec.name, spec.num_ids)],
            batch_rows=tokens.value_rowids(),
        )
        return tokens.with_flat_values(flat[:, 0])
    return tf.ragged.map_flat_values(lookups[spec.table_name], tokens)
