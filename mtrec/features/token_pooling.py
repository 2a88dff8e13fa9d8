"""Pooling the token vectors of a multi-valued feature into one vector."""

import tensorflow as tf

from mtrec.features.multi_valued import MultiValuedFeature


def pool_token_vectors(
    spec: MultiValuedFeature,
    vectors: tf.RaggedTensor,
    attention=None,
    query=None,
    training=None,
) -> tf.Tensor:
    """``(batch, None, d)`` ragged token vectors to ``(batch, d)`` by ``spec.pooling``.

    ``mean`` (``sum / max(n, 1)``), ``sum``, ``sqrtn`` (``sum / sqrt(max(n,
    1))``), ``max`` (zeros for a row without tokens) or ``attention``:
    ``attention([query, keys], mask=...)`` (a ``TargetAttention``) over the
    padded tokens with the query feature's ``(batch, d)`` embedding.

    Example:

    >>> spec = MultiValuedFeature(name="tags", pooling="sqrtn", embedding_dim=2)
    >>> vectors = tf.ragged.constant([[[1.0, 2.0], [3.0, 2.0]], []], ragged_rank=1)
    >>> pool_token_vectors(spec, vectors).numpy().astype("float64").round(3)
    array([[2.828, 2.828],
           [0.   , 0.   ]])
    """
    if spec.pooling == "attention":
        keys = vectors.to_tensor()
        mask = tf.sequence_mask(vectors.row_lengths(), tf.shape(keys)[1])
        return attention([query, keys], mask=mask, training=training)
    count = tf.cast(vectors.row_lengths(), vectors.dtype)[:, None]
    if spec.pooling == "max":
        pooled = tf.reduce_max(vectors, axis=1)
        return tf.where(count > 0, pooled, tf.zeros_like(pooled))
    total = tf.reduce_sum(vectors, axis=1)
    if spec.pooling == "sum":
        return total
    denominator = tf.maximum(count, 1.0)
    if spec.pooling == "sqrtn":
        denominator = tf.sqrt(denominator)
    return total / denominator
