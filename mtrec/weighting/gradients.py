"""Arithmetic on gradient lists: one entry per variable, dense, sparse or None.

Embedding tables get ``tf.IndexedSlices`` gradients (the rows a batch
touches). These helpers never densify them: scaling and adding keep them
sparse, norms read their values (duplicate rows summed first), and
:func:`common_rows` puts several tasks' gradients of one table on the union
of the rows they touch, so that dot products and projections (PCGrad) run on
``(rows touched, dim)`` tensors instead of ``(vocabulary, dim)`` ones.
``None`` (a task that does not reach a variable) counts as zero.
"""

from collections.abc import Callable
from collections.abc import Sequence

import tensorflow as tf

Gradient = tf.Tensor | tf.IndexedSlices | None


def scale(grad: Gradient, factor) -> Gradient:
    """``factor · grad``."""
    if grad is None:
        return None
    factor = tf.cast(factor, grad.dtype)
    if isinstance(grad, tf.IndexedSlices):
        return tf.IndexedSlices(grad.values * factor, grad.indices, grad.dense_shape)
    return grad * factor


def add(grads: Sequence[Gradient]) -> Gradient:
    """``Σ grads`` (``None`` if every entry is ``None``).

    Sparse entries stay sparse (values and indices concatenated; optimisers
    sum duplicate indices) unless a dense entry is present.
    """
    present = [g for g in grads if g is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    if all(isinstance(g, tf.IndexedSlices) for g in present):
        return tf.IndexedSlices(
            tf.concat([g.values for g in present], axis=0),
            tf.concat([g.indices for g in present], axis=0),
            present[0].dense_shape,
        )
    return tf.add_n([tf.convert_to_tensor(g) for g in present])


def weighted_sum(
    task_grads: Sequence[Sequence[Gradient]], weights: tf.Tensor
) -> list[Gradient]:
    """``Σ_k w_k · g_k`` per variable: task ``k``'s gradient list scaled by
    ``weights[k]`` (:func:`scale`) and the tasks added (:func:`add`), so a
    sparse gradient stays sparse and a variable no task reaches stays ``None``.

    Args:
      task_grads: one gradient list per task, each with one entry per variable.
      weights: ``(tasks,)``.

    Returns:
      One gradient per variable.

    Example:

    >>> [g.numpy().tolist() for g in weighted_sum(
    ...     [[tf.constant([1.0, 2.0])], [tf.constant([10.0, 20.0])]],
    ...     tf.constant([2.0, 0.5]))]
    [[7.0, 14.0]]
    """
    return [
        add([scale(grad, weights[k]) for k, grad in enumerate(per_variable)])
        for per_variable in zip(*task_grads, strict=True)
    ]


def deduplicate(grad: tf.IndexedSlices) -> tf.IndexedSlices:
    """The same sparse gradient with each row once (duplicates summed)."""
    rows, position = tf.unique(grad.indices)
    values = tf.math.unsorted_segment_sum(grad.values, position, tf.size(rows))
    return tf.IndexedSlices(values, rows, grad.dense_shape)


def squared_norm(grads: Sequence[Gradient]) -> tf.Tensor:
    """``||g||²`` of a gradient list seen as one flat vector (sparse kept sparse).

    >>> g = tf.IndexedSlices(tf.constant([[1.0], [2.0]]), tf.constant([3, 3]))
    >>> float(squared_norm([g, tf.constant([4.0]), None]))
    25.0
    """
    terms = []
    for g in grads:
        if g is None:
            continue
        if isinstance(g, tf.IndexedSlices):
            g = deduplicate(g).values
        terms.append(tf.reduce_sum(tf.square(g)))
    return tf.add_n(terms) if terms else tf.constant(0.0)


def common_rows(
    grads: Sequence[Gradient],
) -> tuple[list[tf.Tensor], Callable[[tf.Tensor], Gradient]]:
    """Several tasks' gradients of one variable as dense tensors on a common support.

    When every present entry is sparse, the support is the union ``R`` of
    the rows they touch: each entry becomes a ``(|R|, ...)`` tensor (zeros for
    ``None``), and ``to_gradient`` turns a tensor of that shape back into an
    ``IndexedSlices`` of the variable. Any inner product, norm or linear
    combination of the entries equals that of their dense forms, as every
    row outside ``R`` is zero in all of them. Otherwise (a dense entry) the
    entries are densified and ``to_gradient`` is the identity.

    Args:
      grads: one gradient of the same variable per task, at least one present.

    Returns:
      ``(tensors, to_gradient)``.
    """
    present = [g for g in grads if g is not None]
    if not present:
        raise ValueError("`grads` has no gradient; at least one task must reach it")
    if all(isinstance(g, tf.IndexedSlices) for g in present):
        rows, positions = tf.unique(
            tf.concat([g.indices for g in present], axis=0), out_idx=tf.int64
        )
        size = tf.size(rows, out_type=tf.int64)
        shape = tf.concat(
            [[size], tf.shape(present[0].values, out_type=tf.int64)[1:]], axis=0
        )
        dense_shape = present[0].dense_shape
        # Each entry's positions in ``rows``, in the order of ``present``.
        positions = tf.split(positions, [tf.size(g.indices) for g in present])
        tensors, n = [], 0
        for g in grads:
            if g is None:
                tensors.append(tf.zeros(shape, present[0].values.dtype))
                continue
            tensors.append(tf.math.unsorted_segment_sum(g.values, positions[n], size))
            n += 1

        def to_sparse(tensor: tf.Tensor) -> tf.IndexedSlices:
            return tf.IndexedSlices(tensor, rows, dense_shape)

        return tensors, to_sparse
    dense = [tf.convert_to_tensor(g) for g in present]
    zeros = tf.zeros_like(dense[0])
    return [zeros if g is None else tf.convert_to_tensor(g) for g in grads], (
        lambda tensor: tensor
    )


def dense(grad: Gradient, variable: tf.Variable) -> tf.Tensor:
    """The gradient as a dense tensor of the variable's shape (zeros for None)."""
    if grad is None:
        return tf.zeros_like(variable)
    return tf.convert_to_tensor(grad)


def dot(a: Sequence[tf.Tensor], b: Sequence[tf.Tensor]) -> tf.Tensor:
    """``<a, b>`` of two dense gradient lists seen as one flat vector."""
    return tf.add_n([tf.reduce_sum(x * y) for x, y in zip(a, b, strict=True)])
