"""Raw feature values to one dense vector, with all preprocessing in the graph."""

from collections.abc import Sequence

import tensorflow as tf

from mtrec.features.dense import DenseFeature
from mtrec.features.feature_set import FeatureSet
from mtrec.features.multi_valued import MultiValuedFeature
from mtrec.layers.target_attention import TargetAttention


@tf.keras.utils.register_keras_serializable(package="mtrec")
class FeatureEmbedding(tf.keras.layers.Layer):
    """Embeds raw categorical, multi-valued and dense inputs and concatenates them.

    For input dict ``x`` the output is
    ``concat([E_t(lookup_t(x_f)) for categorical f] + [pool(E_t(lookup_t(tokens(x_f))))
    for multi-valued f] + [z(x_f) or E_f(bucket(x_f)) for dense f])`` in feature
    order (a multi-valued feature with ``pooling="attention"`` is pooled by
    ``TargetAttention`` with its query feature's embedding as the query),
    where ``t`` is the feature's table, ``lookup_t`` maps a raw id to
    ``num_oov + rank`` (OOV and missing ids to a hashed OOV bucket) or to
    ``farmhash(x) mod hash_bins``, and ``z(x) = (log1p?(x) - mean) / std``.
    Because the string splitting, lookups and normalisation live here, an
    exported model takes raw values.

    Args:
      features: feature specs as dicts (``FeatureSet.to_dicts()``).
      vocabularies: table name -> vocabulary file path or token list, for every
        table that uses a vocabulary.
      dense_stats: feature name -> ``{"mean", "std", "boundaries"}`` for every
        dense feature (``PreprocessingState.dense``).
      embeddings_l2: L2 penalty on the embedding tables. Default 0.

    Call arguments:
      inputs: dict ``{feature name: (batch,) or (batch, 1)}`` raw tensors
        (string, int64 or float); extra keys are ignored.

    Returns:
      Float tensor ``(batch, output_dim)``.

    Example:

    >>> layer = FeatureEmbedding(
    ...     features=[{"name": "city", "kind": "categorical", "embedding_dim": 4},
    ...               {"name": "age", "kind": "dense"}],
    ...     vocabularies={"city": ["paris", "rome"]},
    ...     dense_stats={"age": {"mean": 40.0, "std": 10.0, "boundaries": None}})
    >>> x = {"city": tf.constant(["rome", "oslo"]), "age": tf.constant([30.0, 50.0])}
    >>> layer(x).shape
    TensorShape([2, 5])
    """

    def __init__(
        self,
        features: Sequence[dict],
        vocabularies: dict | None = None,
        dense_stats: dict | None = None,
        embeddings_l2: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.features = [dict(f) for f in features]
        self.vocabularies = dict(vocabularies or {})
        self.dense_stats = {k: dict(v) for k, v in (dense_stats or {}).items()}
        if embeddings_l2 < 0:
            raise ValueError(
                "`embeddings_l2` must be >= 0. "
                f"Received: `embeddings_l2={embeddings_l2}`"
            )
        self.embeddings_l2 = float(embeddings_l2)
        self.feature_set = FeatureSet.from_dicts(self.features)
        regularizer = (
            tf.keras.regularizers.L2(self.embeddings_l2) if embeddings_l2 else None
        )

        self._lookups = {}
        self._embeddings = {}
        for table, members in self.feature_set.tables.items():
            spec = members[0]
            if spec.uses_vocabulary:
                if table not in self.vocabularies:
                    raise ValueError(
                        f"No vocabulary for table {table!r} (features "
                        f"{[m.name for m in members]}); fit preprocessing first."
                    )
                lookup_cls = (
                    tf.keras.layers.StringLookup
                    if spec.dtype == "string"
                    else tf.keras.layers.IntegerLookup
                )
                lookup = lookup_cls(
                    vocabulary=self.vocabularies[table],
                    num_oov_indices=spec.num_oov_buckets,
                    name=f"lookup_{table}",
                )
                input_dim = lookup.vocabulary_size()
            else:
                lookup = tf.keras.layers.Hashing(
                    num_bins=spec.hash_bins, name=f"hash_{table}"
                )
                input_dim = spec.hash_bins
            self._lookups[table] = lookup
            self._embeddings[table] = tf.keras.layers.Embedding(
                input_dim,
                spec.embedding_dim,
                embeddings_regularizer=regularizer,
                name=f"embedding_{table}",
            )
        self._attention = {
            spec.name: TargetAttention(
                units=spec.attention_units, name=f"attention_{spec.name}"
            )
            for spec in self.feature_set.categorical
            if getattr(spec, "pooling", None) == "attention"
        }
        self._buckets = {}
        for spec in self.feature_set.dense:
            if spec.name not in self.dense_stats:
                raise ValueError(
                    f"No statistics for dense feature {spec.name!r};"
                    " fit preprocessing first."
                )
            boundaries = self.dense_stats[spec.name].get("boundaries")
            if spec.bucketized:
                if not boundaries:
                    raise ValueError(
                        f"Dense feature {spec.name!r} is bucketised "
                        "but has no boundaries."
                    )
                self._buckets[spec.name] = (
                    tf.keras.layers.Discretization(
                        bin_boundaries=list(boundaries), name=f"buckets_{spec.name}"
                    ),
                    tf.keras.layers.Embedding(
                        len(boundaries) + 1,
                        spec.embedding_dim,
                        embeddings_regularizer=regularizer,
                        name=f"embedding_{spec.name}",
                    ),
                )

    @property
    def output_dim(self) -> int:
        dim = 0
        for spec in self.feature_set:
            if isinstance(spec, DenseFeature):
                dim += spec.embedding_dim if spec.bucketized else 1
            else:
                dim += spec.embedding_dim + int(getattr(spec, "query_match", False))
        return dim

    def build(self, input_shape=None):
        for embedding in self._embeddings.values():
            embedding.build((None,))
        for _, embedding in self._buckets.values():
            embedding.build((None,))
        for name, attention in self._attention.items():
            dim = self.feature_set[name].embedding_dim
            attention.build([(None, dim), (None, None, dim)])
        super().build(input_shape)

    def _pool(
        self,
        spec: MultiValuedFeature,
        raw: tf.Tensor,
        query=None,
        query_raw=None,
        training=None,
    ) -> tf.Tensor:
        tokens = tf.strings.split(raw, sep=spec.separator)
        tokens = tf.ragged.map_flat_values(tf.strings.strip, tokens)
        tokens = tf.ragged.boolean_mask(tokens, tf.strings.length(tokens) > 0)
        if spec.max_length is not None:
            tokens = tokens[:, : spec.max_length]
        if spec.dtype == "int64":
            tokens = tf.ragged.map_flat_values(
                tf.strings.to_number, tokens, out_type=tf.int64
            )
        match = None
        if spec.query_match:
            hits = tf.cast(tokens == query_raw[:, None], tf.float32)
            match = tf.reduce_sum(hits, axis=1, keepdims=True)
        pooled = self._pool_tokens(spec, tokens, query, training)
        return pooled if match is None else tf.concat([pooled, match], axis=-1)

    def _pool_tokens(self, spec, tokens, query, training):
        ids = tf.ragged.map_flat_values(self._lookups[spec.table_name], tokens)
        vectors = tf.ragged.map_flat_values(self._embeddings[spec.table_name], ids)
        if spec.pooling == "attention":
            keys = vectors.to_tensor()
            mask = tf.sequence_mask(vectors.row_lengths(), tf.shape(keys)[1])
            return self._attention[spec.name](
                [query, keys], mask=mask, training=training
            )
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

    def _raw(self, inputs, name: str) -> tf.Tensor:
        if name not in inputs:
            raise KeyError(
                f"Missing input feature {name!r}; the model expects "
                f"{self.feature_set.names}"
            )
        raw = inputs[name]
        return tf.squeeze(raw, axis=-1) if raw.shape.rank == 2 else raw

    def call(self, inputs, training=None):
        embedded = {}
        for spec in self.feature_set.categorical:
            if not isinstance(spec, MultiValuedFeature):
                ids = self._lookups[spec.table_name](self._raw(inputs, spec.name))
                embedded[spec.name] = self._embeddings[spec.table_name](ids)
        parts = []
        for spec in self.feature_set:
            raw = self._raw(inputs, spec.name)
            if isinstance(spec, DenseFeature):
                x = tf.cast(raw, tf.float32)
                if spec.log1p:
                    x = tf.sign(x) * tf.math.log1p(tf.abs(x))
                if spec.bucketized:
                    buckets, embedding = self._buckets[spec.name]
                    parts.append(embedding(buckets(x)))
                    continue
                if spec.normalization == "zscore":
                    stats = self.dense_stats[spec.name]
                    x = (x - stats["mean"]) / stats["std"]
                parts.append(x[:, None])
            elif isinstance(spec, MultiValuedFeature):
                query = embedded.get(spec.query) if spec.query else None
                query_raw = self._raw(inputs, spec.query) if spec.query else None
                parts.append(self._pool(spec, raw, query, query_raw, training=training))
            else:
                parts.append(embedded[spec.name])
        return tf.concat(parts, axis=-1)

    def compute_output_shape(self, input_shape):
        return tf.TensorShape([None, self.output_dim])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "features": self.features,
                "vocabularies": self.vocabularies,
                "dense_stats": self.dense_stats,
                "embeddings_l2": self.embeddings_l2,
            }
        )
        return config
