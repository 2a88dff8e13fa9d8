"""Raw feature values to one dense vector, with all preprocessing in the graph."""

from collections.abc import Sequence

import tensorflow as tf

from mtrec.checks import check_bool
from mtrec.checks import check_int
from mtrec.features.column_blocks import split_runs
from mtrec.features.dense import DenseFeature
from mtrec.features.dense_parts import bucket_ids
from mtrec.features.dense_parts import value_block
from mtrec.features.feature_rows import feature_rows
from mtrec.features.feature_rows import raw_input
from mtrec.features.feature_rows import skips_lookup
from mtrec.features.feature_rows import token_rows
from mtrec.features.feature_set import FeatureSet
from mtrec.features.id_encoding import encodable_features
from mtrec.features.id_encoding import row_ids_key
from mtrec.features.input_checks import checked_ids
from mtrec.features.input_checks import raw_value_checks
from mtrec.features.input_dtypes import as_int64
from mtrec.features.input_dtypes import stack_ids
from mtrec.features.input_lookups import bucket_rows
from mtrec.features.input_lookups import table_lookups
from mtrec.features.multi_valued import MultiValuedFeature
from mtrec.features.output_parts import DENSE_BLOCK
from mtrec.features.output_parts import OUTPUT_ORDERS
from mtrec.features.output_parts import output_parts
from mtrec.features.output_parts import output_runs
from mtrec.features.output_parts import output_width
from mtrec.features.table_layout import RowSpace
from mtrec.features.table_layout import TableLayout
from mtrec.features.table_layout import gathered_features
from mtrec.features.table_lookup import fused_gather
from mtrec.features.table_lookup import fused_token_gather
from mtrec.features.token_pooling import pool_token_vectors
from mtrec.features.tokens import split_tokens
from mtrec.features.transforms import dense_columns
from mtrec.layers.target_attention import TargetAttention


@tf.keras.utils.register_keras_serializable(package="mtrec")
class FeatureEmbedding(tf.keras.layers.Layer):
    """Embeds raw categorical, multi-valued and dense inputs and concatenates them.

    For input dict ``x`` the output is the concatenation of
    ``E_t(lookup_t(x_f))`` for each single-valued categorical ``f``,
    ``pool(E_t(lookup_t(tokens(x_f))))`` for each multi-valued ``f`` and
    ``z(x_f)``, ``E_f(bucket(x_f))`` or, with ``keep_value``, both for each
    dense ``f`` (a multi-valued feature with ``pooling="attention"`` is
    pooled by ``TargetAttention`` with its query feature's embedding as the
    query). ``output_order="grouped"`` (default) puts the embeddings read by
    one gather first, grouped by width (widths in order of first appearance,
    features in feature order within one), then the other parts (pooled
    vectors and dense values) in feature order: the gathered block is one
    contiguous slice, as DeepCTR orders its inputs.
    ``output_order="features"`` concatenates in feature order, which costs a
    split of the block around every other feature (the census inputs'
    forward and table gradient: 1.07x and 1.11x faster grouped in two runs
    of ``benchmarks/step_copies.py``). The first layer after this one
    sees the same columns in either order, so the choice changes nothing but
    the meaning of its kernel's rows: a checkpoint must be restored into the
    order it was written with (a Keras config without the key, written before
    the option, loads as ``"features"``).
    Here ``t`` is the feature's table, ``lookup_t`` maps a raw id to
    ``num_oov + rank`` (OOV and missing ids to a hashed OOV bucket), to
    ``farmhash(x) mod hash_bins``, or, for encoded ids (``num_ids``), is the
    identity (an id outside ``[0, num_ids)`` raises ``InvalidArgumentError``
    naming the feature and its range), and ``z(x) = (log1p?(x) - mean) / std``.
    Because the string splitting, lookups and normalisation live here, an
    exported model takes raw values. An input dict may instead hold a
    single-valued categorical feature's table rows under
    ``row_ids_key(name)`` (``<name>__row_ids``, as ``IdEncoder`` encodes them
    ahead of training, ``train.encode_ids``): that feature then skips its
    lookup, its rows are range-checked as encoded ids are
    (:meth:`given_row_ids`), and the output is the same.

    Fused tables (``fused=True``, default): the tables ``E_t`` of one
    ``embedding_dim`` (categorical tables and bucketised dense features alike)
    are row blocks of ONE variable ``W_d`` (``embeddings_<d>``):
    ``E_t = W_d[o_t : o_t + rows_t]`` with row offset ``o_t``. Every
    single-valued feature of width ``d`` is read by one gather,
    ``W_d[stack([id_f + o_t(f)]_f)]`` of shape ``(batch, F_d, d)``; a
    multi-valued feature gathers its tokens from ``W_d`` at its offset. The
    outputs equal the unfused layer's for the same per-table weights; the L2
    penalty ``embeddings_l2 * Σ W_d²`` is the sum of the per-table penalties.
    The gradient of ``W_d`` is a ``tf.IndexedSlices`` with one row per
    gathered id (``batch × F_d`` rows per step, duplicates not merged),
    exactly the rows the per-table gradients had, now in one object; the
    optimizer then merges duplicates (a ``tf.unique`` and a segment sum over
    ``batch × F_d`` rows). A table of at most ``dense_gradient_rows`` rows
    instead gets the dense ``(rows, d)`` gradient from one sparse-dense
    matmul (:func:`gather_with_dense_gradient`): the same values, without the
    merge.
    ``embedding_table(t)`` and ``set_embedding_table(t, w)`` read and write
    one logical table in either layout.

    Args:
      features: feature specs as dicts (``FeatureSet.to_dicts()``).
      vocabularies: table name -> vocabulary file path or token list, for every
        table that uses a vocabulary.
      dense_stats: feature name -> ``{"mean", "std", "boundaries"}`` (and
        ``"min"``, ``"max"``: the training range serving clips to) for every
        dense feature (``PreprocessingState.dense``).
      embeddings_l2: L2 penalty on the embedding tables. Default 0.
      fused: one table and one gather per embedding width (default ``True``);
        ``False`` keeps one ``Embedding`` layer and one gather per table (the
        layout of checkpoints written before fusing).
      dense_gradient_rows: a fused table with at most this many rows gets
        a dense gradient (every row updated each step, no duplicate merge);
        larger tables keep the sparse one. Default 8192; 0: always sparse.
      output_order: ``"grouped"`` (default) or ``"features"``, see above.

    Call arguments:
      inputs: dict ``{feature name: (batch,) or (batch, 1)}`` raw tensors
        (string, int64 or float); extra keys are ignored.

    Returns:
      Float tensor ``(batch, output_dim)``.

    Example:

    >>> layer = FeatureEmbedding(
    ...     features=[{"name": "city", "kind": "categorical", "embedding_dim": 4},
    ...               {"name": "age_bucket", "kind": "categorical",
    ...                "dtype": "int64", "num_ids": 10, "embedding_dim": 4},
    ...               {"name": "age", "kind": "dense"}],
    ...     vocabularies={"city": ["paris", "rome"]},
    ...     dense_stats={"age": {"mean": 40.0, "std": 10.0, "boundaries": None}})
    >>> x = {"city": tf.constant(["rome", "oslo"]),
    ...      "age_bucket": tf.constant([3, 9], tf.int64),
    ...      "age": tf.constant([30.0, 50.0])}
    >>> layer(x).shape
    TensorShape([2, 9])
    >>> [(v.name.split("/")[-1], v.shape) for v in layer.trainable_variables]
    [('embeddings_4:0', TensorShape([13, 4]))]
    """

    def __init__(
        self,
        features: Sequence[dict],
        vocabularies: dict | None = None,
        dense_stats: dict | None = None,
        embeddings_l2: float = 0.0,
        fused: bool = True,
        dense_gradient_rows: int = 8192,
        output_order: str = "grouped",
        **kwargs,
    ):
        # Raw inputs keep their dtype under a mixed precision policy (Keras
        # would cast dense values to bfloat16 before the fill, log1p and
        # z-score, 8 bits of mantissa); the output is cast at the end.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.features = [dict(f) for f in features]
        self.vocabularies = dict(vocabularies or {})
        self.dense_stats = {k: dict(v) for k, v in (dense_stats or {}).items()}
        _check_arguments(embeddings_l2, fused, dense_gradient_rows, output_order)
        self.output_order = output_order
        self.embeddings_l2 = float(embeddings_l2)
        self.fused = bool(fused)
        self.dense_gradient_rows = dense_gradient_rows
        self.feature_set = FeatureSet.from_dicts(self.features)
        self._regularizer = (
            tf.keras.regularizers.L2(self.embeddings_l2) if embeddings_l2 else None
        )
        buckets = self._lay_out_tables()
        self._create_tables(buckets)

    def _lay_out_tables(self) -> dict[str, int]:
        """The lookups and every logical table's rows (``_layout``); between
        the categorical and the bucket tables, the attention poolers. Returns
        the bucket tables' rows, by name."""
        self._lookups, table_rows = table_lookups(self.feature_set, self.vocabularies)
        self._encodable = frozenset(encodable_features(self.feature_set))
        self._layout = TableLayout(fused=self.fused)
        for table, rows in table_rows.items():
            spec = self.feature_set.tables[table][0]
            self._layout.add(table, rows, spec.embedding_dim)
        self._attention = {
            spec.name: TargetAttention(
                units=spec.attention_units, name=f"attention_{spec.name}"
            )
            for spec in self.feature_set.categorical
            if getattr(spec, "pooling", None) == "attention"
        }
        buckets = bucket_rows(self.feature_set, self.dense_stats)
        for name, rows in buckets.items():
            self._layout.add(name, rows, self.feature_set[name].embedding_dim)
        self._layout.gathered = gathered_features(self.feature_set)
        return buckets

    def _create_tables(self, buckets: dict[str, int]) -> None:
        """Fused: ``_tables``, filled by :meth:`build` (one variable per
        width). Unfused: one ``Embedding`` per table and per bucketised dense
        feature (``buckets``: its rows, by name)."""
        if self.fused:
            self._tables = {}
            return
        # Today's layout: one Embedding per table, bucket embeddings beside
        # a Discretization that computes nothing (the ids come from
        # `bucket_columns`, for all features at once) but keeps each
        # embedding at `_buckets/<name>/1`, where older checkpoints hold it.
        self._embeddings = {
            table: self._embedding_layer(table, f"embedding_{table}")
            for table in self.feature_set.tables
        }
        self._buckets = {
            name: (
                tf.keras.layers.Discretization(
                    bin_boundaries=list(self.dense_stats[name]["boundaries"]),
                    name=f"buckets_{name}",
                ),
                self._embedding_layer(name, f"embedding_{name}"),
            )
            for name in buckets
        }

    def _embedding_layer(self, space: str, name: str) -> tf.keras.layers.Embedding:
        return tf.keras.layers.Embedding(
            self._layout.spaces[space].rows,
            self._layout.spaces[space].dim,
            embeddings_regularizer=self._regularizer,
            name=name,
        )

    @property
    def output_dim(self) -> int:
        return output_width(self.feature_set)

    @property
    def jit_compatible(self) -> bool:
        """Whether the graph has no lookup or string op, so XLA can compile it.

        True when every categorical feature is single-valued with encoded ids
        (``num_ids``): vocabulary and hash lookups and string splitting are
        outside what ``jit_compile`` handles. Note that XLA drops the range
        check of encoded ids (``Assert`` does not compile) and clamps
        out-of-range gather indices: under ``jit_compile`` the ids must be
        validated upstream (``fit_preprocessing`` does it on the train split).
        """
        return not self.feature_set.uncompilable

    def input_checks(self, inputs) -> list[tf.Tensor]:
        """The layer's checks of the raw ``inputs`` alone (encoded ids in
        range, dense values finite), with the errors :meth:`call` raises;
        for a graph that XLA-compiles the layer, where they cannot run
        (``mtrec.features.input_checks.raw_value_checks``)."""
        names = self.feature_set.names
        raws = {
            name: raw_input(inputs, self.feature_set, name, frozenset())
            for name in names
        }
        return raw_value_checks(self.feature_set, raws)

    @property
    def embedding_table_names(self) -> list[str]:
        """The logical tables: categorical table names, then bucketised dense
        feature names."""
        return list(self._layout.spaces)

    def embedding_table(self, name: str) -> tf.Tensor:
        """The ``(rows, embedding_dim)`` weights of one logical table."""
        space = self._space(name)
        if not self.fused:
            return tf.convert_to_tensor(self._table_layer(name).embeddings)
        table = self._tables[str(space.dim)]
        return table[space.offset : space.offset + space.rows]

    def set_embedding_table(self, name: str, values) -> None:
        """Assigns the ``(rows, embedding_dim)`` weights of one logical table."""
        space = self._space(name)
        values = tf.convert_to_tensor(values, tf.float32)
        if values.shape != (space.rows, space.dim):
            raise ValueError(
                f"Table {name!r} has shape {(space.rows, space.dim)}. "
                f"Received: values of shape {tuple(values.shape)}"
            )
        if not self.fused:
            self._table_layer(name).embeddings.assign(values)
            return
        table = self._tables[str(space.dim)]
        table[space.offset : space.offset + space.rows].assign(values)

    def _space(self, name: str) -> RowSpace:
        if name not in self._layout.spaces:
            raise KeyError(
                f"No embedding table {name!r}; tables: {self.embedding_table_names}"
            )
        if not self.built:
            with tf.name_scope(self.name):  # as when built by the first call
                self.build()
        return self._layout.spaces[name]

    def _table_layer(self, name: str) -> tf.keras.layers.Embedding:
        if name in self._embeddings:
            return self._embeddings[name]
        return self._buckets[name][1]

    def build(self, input_shape=None):
        if self.fused:
            for dim, rows in sorted(self._layout.widths.items()):
                self._tables[str(dim)] = self.add_weight(
                    name=f"embeddings_{dim}",
                    shape=(rows, dim),
                    initializer="uniform",
                    regularizer=self._regularizer,
                    trainable=True,
                )
        else:
            for embedding in self._embeddings.values():
                embedding.build((None,))
            for _, embedding in self._buckets.values():
                embedding.build((None,))
        for name, attention in self._attention.items():
            dim = self.feature_set[name].embedding_dim
            attention.build([(None, dim), (None, None, dim)])
        super().build(input_shape)

    def given_row_ids(self, inputs) -> frozenset:
        """The features whose table rows ``inputs`` holds under
        ``row_ids_key(name)`` (``mtrec.features.IdEncoder``); their raw
        columns are not read."""
        return frozenset(
            name for name in self._encodable if row_ids_key(name) in inputs
        )

    def _gather_single(
        self, raws: dict, given: frozenset, buckets: dict
    ) -> tuple[dict, dict]:
        """One gather per width (fused) or per feature (unfused); the ids
        of ``encoded`` features and of those in ``given`` are range-checked;
        ``buckets``: the bucket ids of the bucketised dense features.

        Returns:
          ``(blocks, where)``: ``blocks[d]`` is ``(batch, F_d, d)`` for the
          fused layout, and ``where[f]`` is ``(d, i)``, the block and column of
          feature ``f``; unfused, ``blocks[f]`` is ``(batch, 1, d)`` and
          ``where[f] = (f, 0)``.
        """
        blocks, where = {}, {}
        for dim, names in self._layout.gathered.items():
            specs = [self.feature_set[name] for name in names]
            ids = [
                feature_rows(spec, raws[spec.name], self._lookups, given, buckets)
                for spec in specs
            ]
            unlooked = [i for i, spec in enumerate(specs) if skips_lookup(spec, given)]
            if not self.fused:
                for name, block in self._gather_unfused(specs, ids, unlooked):
                    blocks[name] = block
                    where[name] = (name, 0)
                continue
            blocks[dim] = self._gather_fused(dim, specs, ids, unlooked)
            for i, name in enumerate(names):
                where[name] = (dim, i)
        return blocks, where

    def _gather_unfused(self, specs: list, ids: list, unlooked: list) -> list:
        """``(name, (batch, 1, d) embedding)`` of each feature of ``specs``,
        one gather per feature; the ids at ``unlooked`` range-checked first,
        in one check for all of them."""
        if unlooked:
            checked = tf.unstack(
                checked_ids(
                    stack_ids([ids[i] for i in unlooked]),
                    [(specs[i].name, self._rows(specs[i])) for i in unlooked],
                ),
                axis=1,
            )
            for i, column in zip(unlooked, checked, strict=True):
                ids[i] = column
        return [
            (spec.name, self._table_layer(self._space_name(spec))(column[:, None]))
            for spec, column in zip(specs, ids, strict=True)
        ]

    def _gather_fused(
        self, dim: int, specs: list, ids: list, unlooked: list
    ) -> tf.Tensor:
        """``(batch, F_d, d)``: the features of width ``dim``, one gather from
        ``W_d``; range-checked first if any is ``unlooked``."""
        stacked = stack_ids(ids)
        spaces = [self._layout.spaces[self._space_name(spec)] for spec in specs]
        if unlooked:
            stacked = checked_ids(
                stacked,
                [(s.name, space.rows) for s, space in zip(specs, spaces)],
            )
        return fused_gather(
            self._tables[str(dim)],
            stacked,
            [space.offset for space in spaces],
            self._layout.widths[dim],
            self.dense_gradient_rows,
        )

    def _space_name(self, spec) -> str:
        return spec.name if isinstance(spec, DenseFeature) else spec.table_name

    def _rows(self, spec) -> int:
        """Rows of the feature's table (``num_ids`` for encoded ids)."""
        return self._layout.spaces[self._space_name(spec)].rows

    def _pool(
        self, spec: MultiValuedFeature, raws: dict, query, training=None
    ) -> tf.Tensor:
        """A multi-valued feature's pooled vector (with its ``query_match``
        count); ``query``: attention pooling's query vector
        (:func:`_attention_query`), else ``None``."""
        tokens = split_tokens(
            raws[spec.name], spec.separator, spec.max_length, spec.dtype
        )
        match = None
        if spec.query_match:
            hits = tf.cast(tokens == as_int64(raws[spec.query])[:, None], tf.float32)
            match = tf.reduce_sum(hits, axis=1, keepdims=True)
        pooled = pool_token_vectors(
            spec,
            self._token_vectors(spec, tokens),
            self._attention.get(spec.name),
            query,
            training,
        )
        if match is None:
            return pooled
        return tf.concat([pooled, tf.cast(match, pooled.dtype)], axis=-1)

    def _token_vectors(self, spec: MultiValuedFeature, tokens) -> tf.RaggedTensor:
        ids = token_rows(spec, tokens, self._lookups)
        if not self.fused:
            return tf.ragged.map_flat_values(self._embeddings[spec.table_name], ids)
        space = self._layout.spaces[spec.table_name]
        return fused_token_gather(self._tables[str(space.dim)], ids, space.offset)

    def call(self, inputs, training=None):
        given = self.given_row_ids(inputs)
        raws = {
            name: raw_input(inputs, self.feature_set, name, given)
            for name in self.feature_set.names
        }
        # Every dense feature's transformed value, once: (F_d, batch).
        dense = self.feature_set.dense
        columns = None
        if dense:
            columns = dense_columns(
                dense, [raws[s.name] for s in dense], self.dense_stats
            )
        buckets = bucket_ids(dense, columns, self.dense_stats)
        blocks, where = self._gather_single(raws, given, buckets)
        # The dense values (of features not bucketised, or bucketised with
        # `keep_value`) as one block of columns, cut into the output like a
        # gathered block.
        block, valued = value_block(dense, columns, self.dense_stats)
        if valued:
            blocks[DENSE_BLOCK] = block
        values = {name: (DENSE_BLOCK, k) for k, name in enumerate(valued)}
        # Consecutive columns of one block become one slice of the output.
        parts = output_parts(self.feature_set, self._layout.gathered, self.output_order)
        runs = output_runs(parts, where, values)
        for i, run in enumerate(runs):
            if not isinstance(run, list):  # a multi-valued feature's spec
                query = _attention_query(run, blocks, where)
                runs[i] = self._pool(run, raws, query, training)
        pieces = split_runs(blocks, [run for run in runs if isinstance(run, list)])
        parts = [pieces.pop(0) if isinstance(run, list) else run for run in runs]
        # Under a mixed policy the tables are gathered in the compute dtype
        # already; dense values and pooled vectors are cast to it here.
        parts = [tf.cast(part, self.compute_dtype) for part in parts]
        return parts[0] if len(parts) == 1 else tf.concat(parts, axis=-1)

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
                "fused": self.fused,
                "dense_gradient_rows": self.dense_gradient_rows,
                "output_order": self.output_order,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        # Configs written before ``output_order`` existed concatenated in
        # feature order; their weights mean that order.
        return super().from_config({"output_order": "features", **config})


def _attention_query(spec: MultiValuedFeature, blocks: dict, where: dict):
    """The query vector ``(batch, d)`` of ``spec``'s attention pooling: its
    query feature's gathered row, from ``blocks`` at ``where`` (the
    ``(block, column)`` of each gathered feature); ``None`` for other
    pooling or without a query."""
    if spec.query is None or spec.pooling != "attention":
        return None
    key, column = where[spec.query]
    return blocks[key][:, column]


def _check_arguments(
    embeddings_l2: float, fused: bool, dense_gradient_rows: int, output_order: str
) -> None:
    """Raises ``ValueError`` for the first invalid ``FeatureEmbedding``
    argument, in this order."""
    if embeddings_l2 < 0:
        raise ValueError(
            f"`embeddings_l2` must be >= 0. Received: `embeddings_l2={embeddings_l2}`"
        )
    check_bool("fused", fused)
    check_int("dense_gradient_rows", dense_gradient_rows, 0)
    if output_order not in OUTPUT_ORDERS:
        raise ValueError(
            f"`output_order` must be one of {OUTPUT_ORDERS}. "
            f"Received: `output_order={output_order!r}`"
        )
