"""Arithmetic on gradient lists: one entry per variable, dense, sparse or None.

Embedding tables get ``tf.IndexedSlices`` gradients; these helpers keep them
sparse when scaling and adding, and densify them only for dot products and
norms. ``None`` (a task that does not reach a variable) counts as zero.
"""

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


def dense(grad: Gradient, variable: tf.Variable) -> tf.Tensor:
    """The gradient as a dense tensor of the variable's shape (zeros for None)."""
    if grad is None:
        return tf.zeros_like(variable)
    return tf.convert_to_tensor(grad)


def dot(a: Sequence[tf.Tensor], b: Sequence[tf.Tensor]) -> tf.Tensor:
    """``<a, b>`` of two dense gradient lists seen as one flat vector."""
    return tf.add_n([tf.reduce_sum(x * y) for x, y in zip(a, b, strict=True)])


def squared_norm(a: Sequence[tf.Tensor]) -> tf.Tensor:
    """``||a||²`` of a dense gradient list seen as one flat vector."""
    return tf.add_n([tf.reduce_sum(tf.square(x)) for x in a])
