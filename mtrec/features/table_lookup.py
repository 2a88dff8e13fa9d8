"""Embedding table lookups: sharded tables, gathers with a dense gradient, and
the gathers from a fused table (every feature of one width, or one's tokens)."""

import tensorflow as tf

from mtrec.features.xla_context import in_xla_context


def is_sharded(table) -> bool:
    """Whether ``table`` is split over parameter servers (``parameter_server``).

    A ``ShardedVariable`` is read with ``tf.nn.embedding_lookup``: one gather
    per shard on its ps task, pulling only the rows of the batch (``tf.gather``
    would first concatenate every shard), with sparse gradients.
    """
    return isinstance(table, tf.__internal__.distribute.ShardedVariable)


def int64_pairs(first: tf.Tensor, second: tf.Tensor) -> tf.Tensor:
    """``tf.stack([first, second], axis=1)`` for int64 vectors, in one pass.

    ``tf.stack`` (or ``tf.concat``) on axis 1 copies one element at a time;
    for the ``(31744, 2)`` indices of a census batch (31 features × 1024
    rows) this is 0.13 ms faster on one core (``benchmarks/step_copies.py``:
    0.44 against 0.31 ms per call, call overhead included). The pairs are built as
    complex128 numbers whose real and imaginary parts carry the int64 bits
    (``tf.bitcast`` to float64, which ``tf.complex`` only moves: no
    arithmetic sees them, so no value is rounded or flushed), and a bitcast
    views the ``(n,)`` complex128 as ``(n, 2)`` int64.

    Args:
      first, second: int64 tensors of shape ``(n,)``.

    Returns:
      int64 ``(n, 2)``, row ``i`` ``[first[i], second[i]]``.

    Example:

    >>> int64_pairs(tf.constant([0, 1], tf.int64),
    ...             tf.constant([7, -2], tf.int64)).numpy().tolist()
    [[0, 7], [1, -2]]
    """
    halves = tf.complex(tf.bitcast(first, tf.float64), tf.bitcast(second, tf.float64))
    return tf.bitcast(halves, tf.int64)


def gather_with_dense_gradient(table: tf.Variable, ids: tf.Tensor) -> tf.Tensor:
    """``tf.gather(table, ids)`` whose gradient is a dense ``(rows, d)`` tensor.

    Forward: ``y[b, j] = W[ids[b, j]]``. Backward:
    ``dW = Sᵀ dy`` with ``S`` the sparse ``(batch × F, rows)`` one-hot of
    ``ids`` (``S[n, ids_n] = 1``), one ``tf.sparse.sparse_dense_matmul``: the
    same values as ``tf.gather``'s ``IndexedSlices`` gradient after the
    optimizer merges its duplicate rows (a ``tf.unique`` and an
    ``unsorted_segment_sum``), which is the costlier path on CPU for the
    ``batch × F`` rows of a step. Under XLA (``jit_compile``), which has no
    kernel for it, the backward is ``tf.math.unsorted_segment_sum``. The
    dense gradient touches every row of the table, so this suits small tables
    (tf-keras's Adam updates every row of a sparse-gradient variable too).

    Args:
      table: the ``(rows, d)`` embedding variable.
      ids: ``int32`` or ``int64`` row ids, any shape ``s``.

    Returns:
      ``s + (d,)`` embeddings.

    Example:

    >>> table = tf.Variable(tf.reshape(tf.range(10.0), (5, 2)))
    >>> ids = tf.constant([[1, 0], [1, 4]], tf.int64)
    >>> with tf.GradientTape() as tape:
    ...     y = gather_with_dense_gradient(table, ids)
    ...     loss = tf.reduce_sum(y)
    >>> y[1].numpy().tolist()
    [[2.0, 3.0], [8.0, 9.0]]
    >>> tape.gradient(loss, table).numpy()[:, 0].tolist()
    [1.0, 2.0, 0.0, 0.0, 1.0]
    """
    rows = tf.shape(table, out_type=tf.int64)[0]

    @tf.custom_gradient
    def gather(values):
        def grad(dy):
            flat = tf.reshape(tf.cast(ids, tf.int64), [-1])
            count = tf.shape(flat, out_type=tf.int64)[0]
            row_grads = tf.reshape(dy, [count, -1])
            if in_xla_context():  # XLA has no sparse-dense matmul kernel
                return tf.math.unsorted_segment_sum(row_grads, flat, rows)
            hot = tf.sparse.SparseTensor(
                int64_pairs(tf.range(count), flat),
                tf.ones_like(flat, dtype=dy.dtype),
                tf.stack([count, rows]),
            )
            return tf.sparse.sparse_dense_matmul(hot, row_grads, adjoint_a=True)

        return tf.gather(values, ids), grad

    return gather(tf.convert_to_tensor(table))


#: The most rows a table may have for ``int32`` ids to be offset into it
#: without a cast to ``int64``: every row id then fits in ``int32``.
_INT32_ROWS = 2**31


def fused_gather(
    table, ids: tf.Tensor, offsets: list[int], rows: int, dense_gradient_rows: int
) -> tf.Tensor:
    """``table[ids[:, f] + offsets[f]]`` for every column ``f``, in one gather.

    ``int32`` ids stay ``int32`` unless the table is sharded or has more
    than ``2**31`` rows (then they are cast to ``int64``). A sharded table
    (:func:`is_sharded`) is read with
    ``tf.nn.embedding_lookup``, a table of at most ``dense_gradient_rows``
    rows with :func:`gather_with_dense_gradient`,
    any other with ``tf.gather``.

    Args:
      table: the fused ``(rows, d)`` embedding variable ``W_d`` (or a
        ``ShardedVariable``).
      ids: ``(batch, F)`` ``int32`` or ``int64`` row ids, column ``f`` in its
        feature's own logical table.
      offsets: the first row of column ``f``'s logical table in ``table``.
      rows: the rows of ``table``.
      dense_gradient_rows: ``FeatureEmbedding``'s.

    Returns:
      ``(batch, F, d)`` embeddings.

    Example:

    >>> table = tf.Variable(tf.reshape(tf.range(10.0), (5, 2)))
    >>> ids = tf.constant([[0, 1], [1, 0]], tf.int32)
    >>> fused_gather(table, ids, [0, 3], 5, 8192)[:, :, 0].numpy().tolist()
    [[0.0, 8.0], [2.0, 6.0]]
    """
    if ids.dtype != tf.int64 and (is_sharded(table) or rows > _INT32_ROWS):
        ids = tf.cast(ids, tf.int64)
    if any(offsets):
        ids = ids + tf.constant(offsets, ids.dtype)
    if is_sharded(table):
        return tf.nn.embedding_lookup(table, ids)
    if rows <= dense_gradient_rows:
        return gather_with_dense_gradient(table, ids)
    return tf.gather(table, ids)


def fused_token_gather(table, ids: tf.RaggedTensor, offset: int) -> tf.RaggedTensor:
    """The ``(batch, None, d)`` vectors of a multi-valued feature's
    ``(batch, None)`` token rows ``ids``, in its logical table from row
    ``offset`` of the fused ``table`` (sharded: read with
    ``tf.nn.embedding_lookup``).

    Example:

    >>> table = tf.Variable(tf.reshape(tf.range(10.0), (5, 2)))
    >>> ids = tf.ragged.constant([[0, 1], []], tf.int64)
    >>> fused_token_gather(table, ids, 3)[:, :, 0].to_list()
    [[6.0, 8.0], []]
    """
    gather = tf.nn.embedding_lookup if is_sharded(table) else tf.gather
    return tf.ragged.map_flat_values(
        lambda i: gather(table, i + offset if offset else i), ids
    )
