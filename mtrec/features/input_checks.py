"""Checks of raw input values inside the graph, with errors naming the input.

:func:`checked_finite` refuses a NaN or infinite dense value and
:func:`checked_ids` an encoded id outside its range; both name the feature,
the batch row and the value, in training and at serving alike.
"""

from collections.abc import Sequence

import tensorflow as tf

from mtrec.features.xla_context import in_xla_context


def checked_finite(name: str, x: tf.Tensor) -> tf.Tensor:
    """``x``, after asserting it is finite; the error names ``name`` and the row.

    A NaN or infinite dense value would give a garbage score (the model has
    never seen one: the reader rejects them in training), so the model
    refuses it: ``tf.errors.InvalidArgumentError`` (HTTP 400 /
    ``INVALID_ARGUMENT`` from TF Serving and ``mtrec serve``) saying
    ``Input `price` is NaN or infinite at row 3 of the batch (value nan)``.

    Example:

    >>> checked_finite("price", tf.constant([1.0, 2.0])).numpy().tolist()
    [1.0, 2.0]
    >>> try:
    ...     checked_finite("price", tf.constant([1.0, float("nan")]))
    ... except tf.errors.InvalidArgumentError:
    ...     print("refused")
    refused
    """
    if in_xla_context():
        # XLA has no string ops; a compiled train step reads files the reader
        # checked (serving signatures are not compiled, so they check).
        return x
    finite = tf.math.is_finite(x)
    first_bad = tf.argmin(tf.cast(finite, tf.int32), output_type=tf.int64)
    message = tf.strings.format(
        "Input `"
        + name.replace("{", "{{").replace("}", "}}")
        + "` is NaN or infinite at row {} of the batch (value {}); mtrec "
        "models refuse non-finite values, as training does: give the feature "
        "a fill_value to read NaN as missing",
        (first_bad, tf.gather(x, first_bad)),
    )
    check = tf.debugging.Assert(tf.reduce_all(finite), [message])
    with tf.control_dependencies([check]):
        return tf.identity(x)


def checked_ids(
    ids: tf.Tensor,
    columns: Sequence[tuple[str, int]],
    batch_rows: tf.Tensor | None = None,
) -> tf.Tensor:
    """``ids`` ``(n, F)`` int64, unchanged if column ``j`` is in ``[0, V_j)``.

    ``batch_rows`` maps row ``i`` of ``ids`` to its batch row (the tokens of a
    multi-valued feature); default the identity.

    Otherwise raises ``InvalidArgumentError``
    ``[Encoded id out of range: feature `f`: ids must be in [0, V) (`num_ids=V`);
    received] [v] [at batch row] [i]`` for the first offending id of the first
    offending column. Static shapes and no string computation, so the graph
    compiles under XLA (which ignores ``Assert``: there the ids must be
    validated upstream).
    """
    upper = tf.constant([rows for _, rows in columns], tf.int64)
    inside = tf.logical_and(ids >= 0, ids < upper)

    def report():
        checks = []
        for j, (name, rows) in enumerate(columns):
            row = tf.argmax(tf.cast(tf.logical_not(inside[:, j]), tf.int32))
            data = [
                f"Encoded id out of range: feature `{name}`: ids must be in "
                f"[0, {rows}) (`num_ids={rows}`); received",
                ids[row, j],
                "at batch row",
                row if batch_rows is None else batch_rows[row],
            ]
            if tf.executing_eagerly():
                if not bool(tf.reduce_all(inside[:, j])):
                    message = " ".join(f"[{_plain(item)}]" for item in data)
                    raise tf.errors.InvalidArgumentError(None, None, message)
                continue
            with tf.control_dependencies(checks):
                checks = [tf.debugging.Assert(tf.reduce_all(inside[:, j]), data)]
        with tf.control_dependencies(checks):
            return tf.identity(ids)

    return tf.cond(tf.reduce_all(inside), lambda: tf.identity(ids), report)


def _plain(item) -> str:
    return item if isinstance(item, str) else str(item.numpy())
