"""Checks of raw input values inside the graph, with errors naming the input.

:func:`checked_finite_columns` refuses a NaN or infinite dense value and
:func:`checked_ids` an encoded id outside its range; both name the feature,
the batch row and the value, in training and at serving alike.
:func:`raw_value_checks` runs both on a feature set's raw inputs alone, for a
graph whose model part XLA compiles (where the checks cannot run).
"""

from collections.abc import Callable
from collections.abc import Sequence

import tensorflow as tf

from mtrec.features.dense import DenseFeature
from mtrec.features.input_dtypes import stack_ids
from mtrec.features.multi_valued import MultiValuedFeature
from mtrec.features.xla_context import in_xla_context

#: The largest bound ``int32`` ids are range-checked against as ``uint32``:
#: a negative ``int32`` read as unsigned is at least ``2**31``.
_INT32_UNSIGNED_SAFE = 2**31

_NON_FINITE_ADVICE = (
    "mtrec models refuse non-finite values, as training does: give the feature "
    "a fill_value to read NaN as missing"
)


def checked_finite_columns(
    columns: Sequence[tuple[str, tf.Tensor, bool]],
) -> tf.Tensor:
    """The ``(F, n)`` stack of dense features' values, after asserting each
    is finite, with one check for all.

    A NaN or infinite dense value would give a garbage score (the model has
    never seen one: the reader rejects them in training), so the model
    refuses it: ``tf.errors.InvalidArgumentError`` (HTTP 400 /
    ``INVALID_ARGUMENT`` from TF Serving and ``mtrec serve``) saying
    ``Input `price` is NaN or infinite at row 3 of the batch (value nan)``
    for the first offending feature.

    ``columns``: ``(name, values (n,), nan_allowed)``; ``nan_allowed`` for a
    feature that reads NaN as missing (its ``fill_value``): its NaN passes,
    its infinities do not. Under XLA (no string ops; a compiled train step
    reads files the reader checked, and serving signatures are not
    compiled) the values pass unchecked.

    Example:

    >>> x = checked_finite_columns([("price", tf.constant([1.0, 2.0]), False)])
    >>> x.numpy().tolist()
    [[1.0, 2.0]]
    >>> try:
    ...     checked_finite_columns([("price", tf.constant([1.0, float("inf")]), True)])
    ... except tf.errors.InvalidArgumentError:
    ...     print("refused")
    refused
    """
    values = tf.stack([tf.cast(x, tf.float32) for _, x, _ in columns], axis=0)
    if in_xla_context():
        return values
    nan_allowed = tf.constant([[allowed] for _, _, allowed in columns])
    valid = tf.logical_or(
        tf.math.is_finite(values),
        tf.logical_and(tf.math.is_nan(values), nan_allowed),
    )
    prefixes = tf.constant(
        [f"Input `{name}` is NaN or infinite at row " for name, _, _ in columns]
    )

    def error_data():
        bad = tf.cast(tf.logical_not(valid), tf.int32)
        column = tf.argmax(tf.reduce_max(bad, axis=1))
        row = tf.argmax(tf.gather(bad, column))
        value = tf.gather_nd(values, tf.stack([column, row]))
        message = tf.strings.join(
            [
                tf.gather(prefixes, column),
                tf.strings.as_string(row),
                " of the batch (value ",
                tf.strings.as_string(value),
                f"); {_NON_FINITE_ADVICE}",
            ]
        )
        return [message]

    return _refused_unless(valid, values, error_data)


def ids_in_range(
    ids: tf.Tensor, rows: Sequence[int], features_first: bool = False
) -> tf.Tensor:
    """Whether each id lies in its column's ``[0, rows[j])``: ``ids``
    ``(n, F)`` integer (``features_first``: ``(F, n)``) -> bool, same shape.

    One comparison: read as unsigned, a negative id is above every bound
    (``ids >= 0``, ``ids < V`` and their ``and`` were three ops per batch;
    1.12x in ``benchmarks/step_copies.py``, case ``id_range_check``).
    ``int32`` ids are compared as ``uint32`` where every bound is at most
    ``2**31`` (above it a negative ``int32`` read as unsigned could fall
    below the bound), other ids as ``int64`` read as ``uint64``.

    Example:

    >>> ids = tf.constant([[0, 4], [-1, 5]], tf.int64)
    >>> ids_in_range(ids, [3, 5]).numpy().tolist()
    [[True, True], [False, False]]
    >>> ids_in_range(tf.constant([[2, -1]], tf.int32), [3, 5]).numpy().tolist()
    [[True, False]]
    """
    if ids.dtype == tf.int32 and max(rows) <= _INT32_UNSIGNED_SAFE:
        unsigned = tf.bitcast(ids, tf.uint32)
        upper = tf.constant(list(rows), tf.uint32)
    else:
        unsigned = tf.bitcast(tf.cast(ids, tf.int64), tf.uint64)
        upper = tf.constant(list(rows), tf.uint64)
    return unsigned < (upper[:, None] if features_first else upper)


def checked_ids(
    ids: tf.Tensor,
    columns: Sequence[tuple[str, int]],
    batch_rows: tf.Tensor | None = None,
    features_first: bool = False,
) -> tf.Tensor:
    """``ids`` ``(n, F)`` ``int32`` or ``int64``, unchanged if column ``j``
    is in ``[0, V_j)``.

    ``batch_rows`` maps row ``i`` of ``ids`` to its batch row (the tokens of a
    multi-valued feature); default the identity. ``features_first``: ``ids``
    is ``(F, n)`` instead (stacked without a transpose); the same check and
    error.

    Otherwise raises ``InvalidArgumentError``
    ``[Encoded id out of range: feature `f`: ids must be in [0, V) (`num_ids=V`);
    received] [v] [at batch row] [i]`` for the first offending id of the first
    offending column. Under XLA (which ignores ``Assert`` and has no string
    ops) ``ids`` pass unchecked: there they must be validated upstream.
    """
    if in_xla_context():
        # XLA ignores ``Assert`` and has no string ops.
        return ids
    inside = ids_in_range(ids, [rows for _, rows in columns], features_first)
    prefixes = [
        f"Encoded id out of range: feature `{name}`: ids must be in "
        f"[0, {rows}) (`num_ids={rows}`); received"
        for name, rows in columns
    ]

    def error_data():
        # One vectorised search for all columns: a search per column would
        # put ~30 nodes per feature in the error branch.
        by_row = tf.transpose(ids) if features_first else ids
        outside = tf.cast(tf.logical_not(inside), tf.int32)
        if features_first:
            outside = tf.transpose(outside)
        column = tf.argmax(tf.reduce_max(outside, axis=0))
        row = tf.argmax(tf.gather(outside, column, axis=1))
        return [
            tf.gather(tf.constant(prefixes), column),
            tf.gather_nd(by_row, tf.stack([row, column])),
            "at batch row",
            row if batch_rows is None else tf.gather(batch_rows, row),
        ]

    return _refused_unless(inside, ids, error_data)


def raw_value_checks(feature_set, raws: dict) -> list[tf.Tensor]:
    """The model's checks of raw values, apart from the model: one tensor per
    check (encoded ids, dense values), for control dependencies.

    The encoded ids of the single-valued categorical features are checked as
    :func:`checked_ids` checks them, the dense values as
    :func:`checked_finite_columns` does in the layer; the same errors.
    A graph that XLA-compiles the model (which drops the checks inside it)
    runs these before it.

    Args:
      feature_set: the ``FeatureSet`` of the inputs.
      raws: ``{feature name: (batch,) raw values}``.

    Returns:
      The checked tensors; empty when there is nothing to check.
    """
    encoded = [
        spec
        for spec in feature_set.categorical
        if spec.encoded and not isinstance(spec, MultiValuedFeature)
    ]
    checks = []
    if encoded:
        stacked = stack_ids([raws[s.name] for s in encoded], features_first=True)
        columns = [(s.name, s.num_ids) for s in encoded]
        checks.append(checked_ids(stacked, columns, features_first=True))
    dense = [
        (spec.name, raws[spec.name], spec.fill_value is not None)
        for spec in feature_set
        if isinstance(spec, DenseFeature)
    ]
    if dense:
        checks.append(checked_finite_columns(dense))
    return checks


def _refused_unless(
    valid: tf.Tensor, x: tf.Tensor, error_data: Callable[[], list]
) -> tf.Tensor:
    """``x`` if ``valid`` is all true, else an ``InvalidArgumentError``
    ``[item] [item] ...`` of ``error_data()``.

    The error data are built only in the branch taken on an error. Grappler
    lowers ``tf.cond`` to Switch/Merge, whose untaken branch the executor
    still visits node by node on every batch: built per feature on the taken
    path or in large branches, the checks put ~1,000 nodes in census ESMM's
    inference graph and cost 0.25 ms per batch.
    """

    def report():
        data = error_data()
        if tf.executing_eagerly():
            message = " ".join(f"[{_plain(item)}]" for item in data)
            raise tf.errors.InvalidArgumentError(None, None, message)
        with tf.control_dependencies([tf.debugging.Assert(tf.reduce_all(valid), data)]):
            return tf.identity(x)

    return tf.cond(tf.reduce_all(valid), lambda: tf.identity(x), report)


def _plain(item) -> str:
    if isinstance(item, str):
        return item
    value = item.numpy()
    return value.decode() if isinstance(value, bytes) else str(value)
