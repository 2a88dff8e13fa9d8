"""FeatureEmbedding: exact lookups, OOV, hashing, pooling and dense transforms."""

import numpy as np
import pytest
import tensorflow as tf

from mtrec.features import FeatureEmbedding
from mtrec.features import gather_with_dense_gradient

DENSE_ID = {"mean": 0.0, "std": 1.0, "boundaries": None}


def _constant_tables(layer: FeatureEmbedding) -> None:
    """Row i of every table becomes [i, 10 i, ...]: embeddings are readable ids."""
    for name in layer.embedding_table_names:
        rows, dim = layer.embedding_table(name).shape
        layer.set_embedding_table(
            name, np.arange(rows)[:, None] * (10.0 ** np.arange(dim))[None, :]
        )


def test_vocabulary_lookup_and_oov_buckets():
    layer = FeatureEmbedding(
        [
            {
                "name": "city",
                "kind": "categorical",
                "embedding_dim": 1,
                "num_oov_buckets": 1,
            }
        ],
        vocabularies={"city": ["paris", "rome"]},
    )
    _constant_tables(layer)
    out = layer({"city": tf.constant(["rome", "paris", "oslo", ""])}).numpy()[:, 0]
    # index 0 is the OOV bucket; the vocabulary follows in order.
    np.testing.assert_array_equal(out, [2.0, 1.0, 0.0, 0.0])


def test_integer_ids_and_several_oov_buckets_are_deterministic():
    layer = FeatureEmbedding(
        [
            {
                "name": "item",
                "kind": "categorical",
                "dtype": "int64",
                "embedding_dim": 1,
                "num_oov_buckets": 3,
            }
        ],
        vocabularies={"item": [7, 9]},
    )
    _constant_tables(layer)
    ids = tf.constant([9, 7, 123456, 123456, 5], tf.int64)
    out = layer({"item": ids}).numpy()[:, 0]
    assert out[0] == 4.0 and out[1] == 3.0
    assert out[2] == out[3] and 0 <= out[2] < 3 and 0 <= out[4] < 3


def test_hashing_is_stable_across_calls_and_versions():
    layer = FeatureEmbedding(
        [
            {
                "name": "device",
                "kind": "categorical",
                "hash_bins": 1000,
                "embedding_dim": 1,
            }
        ]
    )
    _constant_tables(layer)
    out = layer({"device": tf.constant(["ios", "android", "web", ""])}).numpy()[:, 0]
    # farmhash64 fingerprints mod 1000: pinned, so exported models keep their buckets.
    np.testing.assert_array_equal(out, [828.0, 605.0, 209.0, 263.0])
    again = FeatureEmbedding.from_config(layer.get_config())
    _constant_tables(again)
    np.testing.assert_array_equal(
        again({"device": tf.constant(["ios"])}).numpy()[:, 0], [828.0]
    )


@pytest.mark.parametrize(
    "pooling, expected",
    [
        # vocabulary [a, b, c] -> ids 1, 2, 3 (0 = OOV); embedding row i = [i, 10 i]
        ("sum", [[3.0, 30.0], [3.0, 30.0], [0.0, 0.0], [0.0, 0.0]]),
        ("mean", [[1.5, 15.0], [3.0, 30.0], [0.0, 0.0], [0.0, 0.0]]),
        (
            "sqrtn",
            [[3 / np.sqrt(2), 30 / np.sqrt(2)], [3.0, 30.0], [0.0, 0.0], [0.0, 0.0]],
        ),
        ("max", [[2.0, 20.0], [3.0, 30.0], [0.0, 0.0], [0.0, 0.0]]),
    ],
)
def test_multi_valued_pooling_by_hand(pooling, expected):
    layer = FeatureEmbedding(
        [
            {
                "name": "tags",
                "kind": "multi_valued",
                "embedding_dim": 2,
                "pooling": pooling,
            }
        ],
        vocabularies={"tags": ["a", "b", "c"]},
    )
    _constant_tables(layer)
    raw = tf.constant(["a|b", "c", "", "zz"])  # "zz" is OOV -> row 0 = zeros
    np.testing.assert_allclose(layer({"tags": raw}).numpy(), expected, rtol=1e-6)


def test_multi_valued_drops_empty_tokens_and_truncates():
    layer = FeatureEmbedding(
        [
            {
                "name": "tags",
                "kind": "multi_valued",
                "embedding_dim": 1,
                "pooling": "sum",
                "max_length": 2,
            }
        ],
        vocabularies={"tags": ["a", "b", "c"]},
    )
    _constant_tables(layer)
    out = layer({"tags": tf.constant(["a||b", " c | a ", "a|b|c"])}).numpy()[:, 0]
    np.testing.assert_array_equal(out, [3.0, 4.0, 3.0])


def test_shared_table_gives_the_same_vector():
    features = [
        {
            "name": "item_category",
            "kind": "categorical",
            "embedding_dim": 3,
            "table": "cat",
        },
        {"name": "recent", "kind": "multi_valued", "embedding_dim": 3, "table": "cat"},
    ]
    layer = FeatureEmbedding(features, vocabularies={"cat": ["x", "y"]})
    out = layer(
        {"item_category": tf.constant(["y"]), "recent": tf.constant(["y"])}
    ).numpy()
    np.testing.assert_array_equal(out[:, :3], out[:, 3:])
    assert len(layer.trainable_weights) == 1


def _candidate_and_history(**history) -> list[dict]:
    return [
        {"name": "item_category", "embedding_dim": 2, "table": "cat"},
        {
            "name": "recent",
            "kind": "multi_valued",
            "embedding_dim": 2,
            "table": "cat",
            "query": "item_category",
            **history,
        },
    ]


def test_query_match_counts_tokens_equal_to_the_raw_query():
    layer = FeatureEmbedding(
        _candidate_and_history(pooling="sum", query_match=True),
        vocabularies={"cat": ["x", "y"]},
    )
    _constant_tables(layer)
    assert layer.output_dim == 2 + 2 + 1
    # No attention without attention pooling: the shared table is the only weight.
    assert len(layer.trainable_weights) == 1
    out = layer(
        {
            "item_category": tf.constant(["x", "y", "zz", "x"]),
            "recent": tf.constant(["x|y|x", "x", " zz |zz|y", ""]),
        }
    ).numpy()
    # Raw-value match, so an out-of-vocabulary candidate matches too.
    np.testing.assert_array_equal(out[:, -1], [2.0, 0.0, 2.0, 0.0])
    # The pooled part is unchanged by the match column: sum of rows x=1, y=2.
    np.testing.assert_array_equal(out[:, 2:4], [[4, 40], [1, 10], [2, 20], [0, 0]])


def test_attention_pooling_uses_the_candidate_embedding_as_query():
    layer = FeatureEmbedding(
        _candidate_and_history(pooling="attention", attention_units=[3]),
        vocabularies={"cat": ["x", "y"]},
    )
    _constant_tables(layer)
    inputs = {
        "item_category": tf.constant(["x", "y", "x"]),
        "recent": tf.constant(["x|y", "y|y|x", ""]),
    }
    out = layer(inputs).numpy()
    assert out.shape == (3, 4) and layer.output_dim == 4
    attention = layer._attention["recent"]
    assert attention.units == [3]
    table = layer.embedding_table("cat").numpy()
    query = table[[1, 2, 1]]
    keys = np.zeros((3, 3, 2), "float32")
    keys[0, :2] = table[[1, 2]]
    keys[1] = table[[2, 2, 1]]
    mask = np.array([[1, 1, 0], [1, 1, 1], [0, 0, 0]], bool)
    expected = attention([query, keys], mask=mask).numpy()
    np.testing.assert_allclose(out[:, 2:], expected, rtol=1e-6)
    np.testing.assert_array_equal(out[:, :2], query)
    np.testing.assert_array_equal(out[2, 2:], [0.0, 0.0])
    # The attention weights train with the rest of the layer.
    assert len(layer.trainable_weights) == 1 + 4


def test_dense_zscore_log1p_and_buckets():
    features = [
        {"name": "price", "kind": "dense", "log1p": True},
        {"name": "raw", "kind": "dense", "normalization": "none"},
        {
            "name": "age",
            "kind": "dense",
            "boundaries": [18.0, 30.0],
            "embedding_dim": 1,
        },
    ]
    stats = {
        "price": {"mean": 1.0, "std": 2.0, "boundaries": None},
        "raw": {"mean": 5.0, "std": 5.0, "boundaries": None},
        "age": {"mean": 0.0, "std": 1.0, "boundaries": [18.0, 30.0]},
    }
    x = {
        "price": tf.constant([0.0, np.e - 1, -(np.e - 1)], tf.float32),
        "raw": tf.constant([1.0, 2.0, 3.0]),
        "age": tf.constant([10.0, 18.0, 45.0]),
    }
    # Grouped (default): the gathered bucket embedding first.
    for order, (price, raw, age) in {
        "grouped": (1, 2, 0),
        "features": (0, 1, 2),
    }.items():
        layer = FeatureEmbedding(features, dense_stats=stats, output_order=order)
        _constant_tables(layer)
        out = layer(x).numpy()
        np.testing.assert_allclose(
            out[:, price], [(0 - 1) / 2, (1 - 1) / 2, (-1 - 1) / 2], atol=1e-6
        )
        np.testing.assert_allclose(out[:, raw], [1.0, 2.0, 3.0])
        np.testing.assert_array_equal(out[:, age], [0.0, 1.0, 2.0])


def test_accepts_column_vectors_and_ignores_extra_keys():
    layer = FeatureEmbedding(
        [{"name": "city", "kind": "categorical", "embedding_dim": 2}],
        vocabularies={"city": ["a"]},
    )
    out = layer({"city": tf.constant([["a"], ["b"]]), "click": tf.constant([1.0, 0.0])})
    assert out.shape == (2, 2)


def test_missing_input_names_the_feature():
    layer = FeatureEmbedding(
        [{"name": "city", "kind": "categorical"}], vocabularies={"city": ["a"]}
    )
    with pytest.raises(KeyError, match="Missing input feature 'city'"):
        layer({"town": tf.constant(["a"])})


def test_missing_vocabulary_and_stats_are_clear_errors():
    with pytest.raises(ValueError, match="No vocabulary for table 'city'"):
        FeatureEmbedding([{"name": "city", "kind": "categorical"}])
    with pytest.raises(ValueError, match="No statistics for dense feature 'price'"):
        FeatureEmbedding([{"name": "price", "kind": "dense"}])


def test_vocabulary_file_config_round_trip_and_save_load(tmp_path):
    vocab = tmp_path / "city.txt"
    vocab.write_text("paris\nrome\n")
    features = [
        {"name": "city", "kind": "categorical", "embedding_dim": 2},
        {"name": "price", "kind": "dense"},
    ]
    layer = FeatureEmbedding(
        features, {"city": str(vocab)}, {"price": DENSE_ID}, name="features"
    )
    clone = FeatureEmbedding.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    inputs = {
        "city": tf.keras.Input(shape=(), dtype=tf.string, name="city"),
        "price": tf.keras.Input(shape=(), dtype=tf.float32, name="price"),
    }
    model = tf.keras.Model(inputs, layer(inputs))
    batch = {"city": tf.constant(["rome", "nice"]), "price": tf.constant([1.0, 2.0])}
    expected = model(batch).numpy()
    model.save(tmp_path / "saved", save_format="tf")
    vocab.unlink()  # the vocabulary must travel inside the SavedModel as an asset
    loaded = tf.keras.models.load_model(tmp_path / "saved")
    np.testing.assert_allclose(loaded(batch).numpy(), expected, atol=1e-6)


ENCODED = [
    {"name": "age", "dtype": "int64", "num_ids": 5, "embedding_dim": 2},
    {
        "name": "recent",
        "kind": "multi_valued",
        "dtype": "int64",
        "num_ids": 4,
        "embedding_dim": 2,
        "pooling": "sum",
    },
]


def test_encoded_ids_are_the_rows_without_a_lookup():
    layer = FeatureEmbedding(ENCODED)
    _constant_tables(layer)
    out = layer(
        {
            "age": tf.constant([4, 0, 2], tf.int64),
            "recent": tf.constant(["1|3", "", "0|0|2"]),
        }
    ).numpy()
    np.testing.assert_array_equal(out, [[4, 40, 4, 40], [0, 0, 0, 0], [2, 20, 2, 20]])
    # No vocabulary table in the graph.
    graph = (
        tf.function(layer)
        .get_concrete_function(
            {
                "age": tf.TensorSpec([None], tf.int64),
                "recent": tf.TensorSpec([None], tf.string),
            }
        )
        .graph
    )
    ops = {op.type for op in graph.get_operations()}
    assert not {"LookupTableFindV2", "HashTableV2"} & ops
    assert not layer.jit_compatible  # multi-valued needs string splitting
    assert FeatureEmbedding(ENCODED[:1]).jit_compatible


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("graph", [False, True])
def test_out_of_range_encoded_ids_raise_naming_feature_and_range(fused, graph):
    layer = FeatureEmbedding(ENCODED, fused=fused)
    call = tf.function(layer) if graph else layer
    ok = {"age": tf.constant([4, 0], tf.int64), "recent": tf.constant(["3", ""])}
    assert call(ok).shape == (2, 4)
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"\[Encoded id out of range: feature `age`: ids must be in \[0, 5\) "
        r"\(`num_ids=5`\); received\] \[5\] \[at batch row\] \[1\]",
    ):
        call({"age": tf.constant([0, 5, -1], tf.int64), "recent": ok["recent"][:1]})
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"feature `recent`: ids must be in \[0, 4\) .*; received\] \[-2\] "
        r"\[at batch row\] \[1\]",
    ):
        call({"age": ok["age"], "recent": tf.constant(["1|2", "0|-2"])})


FUSED_FEATURES = [
    {"name": "city", "embedding_dim": 3, "table": "place"},
    {"name": "price", "kind": "dense", "log1p": True},
    {"name": "age", "dtype": "int64", "num_ids": 6, "embedding_dim": 2},
    {
        "name": "visited",
        "kind": "multi_valued",
        "embedding_dim": 3,
        "table": "place",
        "pooling": "attention",
        "query": "city",
        "query_match": True,
    },
    {"name": "device", "hash_bins": 7, "embedding_dim": 2},
    {"name": "home", "embedding_dim": 3, "table": "place"},
    {"name": "income", "kind": "dense", "boundaries": [1.0, 2.0], "embedding_dim": 3},
    {"name": "tags", "kind": "multi_valued", "embedding_dim": 2, "pooling": "mean"},
    {"name": "brand", "dtype": "int64", "embedding_dim": 3, "num_oov_buckets": 2},
]
FUSED_VOCABULARIES = {"place": ["a", "b", "c"], "tags": ["x", "y"], "brand": [7, 9]}
FUSED_STATS = {
    "price": {"mean": 1.0, "std": 0.5, "boundaries": None},
    "income": {"mean": 0.0, "std": 1.0, "boundaries": [1.0, 2.0]},
}


def _fused_pair(embeddings_l2=0.0, dense_gradient_rows=8192, order="grouped"):
    """A fused and an unfused layer with the same per-table weights."""
    return _same_weights(
        [
            FeatureEmbedding(
                FUSED_FEATURES,
                FUSED_VOCABULARIES,
                FUSED_STATS,
                embeddings_l2=embeddings_l2,
                fused=fused,
                dense_gradient_rows=dense_gradient_rows,
                output_order=order,
            )
            for fused in (True, False)
        ]
    )


def _same_weights(layers: list) -> list:
    """``layers`` (of FUSED_FEATURES) with the same tables and attention."""
    rng = np.random.default_rng(0)
    for name in layers[0].embedding_table_names:
        values = rng.normal(size=layers[0].embedding_table(name).shape)
        for layer in layers:
            layer.set_embedding_table(name, values)
    for layer in layers[1:]:
        layer._attention["visited"].set_weights(
            layers[0]._attention["visited"].get_weights()
        )
    return layers


def _fused_batch():
    return {
        "city": tf.constant(["a", "c", "zz", "b"]),
        "price": tf.constant([0.0, 1.0, 2.0, 30.0]),
        "age": tf.constant([5, 0, 3, 1], tf.int64),
        "visited": tf.constant(["a|b", "", "c|c|zz", "b"]),
        "device": tf.constant(["ios", "web", "", "ios"]),
        "home": tf.constant(["b", "b", "a", "q"]),
        "income": tf.constant([0.5, 1.5, 2.5, 1.0]),
        "tags": tf.constant(["x|y", "y", "", "q|x"]),
        "brand": tf.constant([9, 7, 8, 9], tf.int64),
    }


def test_fused_tables_equal_the_per_table_computation():
    fused, unfused = _fused_pair(dense_gradient_rows=0)
    batch = _fused_batch()
    np.testing.assert_array_equal(fused(batch).numpy(), unfused(batch).numpy())
    np.testing.assert_array_equal(
        tf.function(fused)(batch).numpy(), unfused(batch).numpy()
    )
    assert fused.output_dim == unfused.output_dim == 3 + 1 + 2 + 4 + 2 + 3 + 3 + 2 + 3
    # One table per width: place (3 + 1 OOV), income buckets (3), brand (2 + 2)
    # in width 3; age (6), device (7), tags (2 + 1) in width 2.
    tables = {
        v.name.split("/")[-1]: tuple(v.shape)
        for v in fused.trainable_variables
        if "embeddings_" in v.name
    }
    assert tables == {
        "embeddings_2:0": (6 + 7 + 3, 2),
        "embeddings_3:0": (4 + 3 + 4, 3),
    }
    assert len(unfused.trainable_variables) - len(fused.trainable_variables) == 6 - 2

    # One gather per width for the single-valued features (6 of them), plus one
    # per multi-valued feature; the unfused layer has one per feature.
    def gathers(layer):
        graph = tf.function(layer).get_concrete_function(batch).graph
        return sum(op.type == "ResourceGather" for op in graph.get_operations())

    assert (gathers(fused), gathers(unfused)) == (2 + 2, 6 + 2)


def test_fused_l2_penalises_the_same_rows_and_gradients_stay_sparse():
    fused, unfused = _fused_pair(embeddings_l2=0.01, dense_gradient_rows=0)
    batch = _fused_batch()
    fused(batch), unfused(batch)
    np.testing.assert_allclose(
        float(tf.add_n(fused.losses)), float(tf.add_n(unfused.losses)), rtol=1e-6
    )
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(fused(batch) ** 2)
    table = fused._tables["3"]
    grad = tape.gradient(loss, table)
    assert isinstance(grad, tf.IndexedSlices)
    # 4 rows × (city, income, home, brand) in the single gather, plus the tokens
    # of "visited" (a, b, c, c, zz, b): duplicates are not merged.
    assert grad.indices.shape[0] == 4 * 4 + 6
    # The dense equivalent equals the per-table gradients stacked at the offsets
    # (categorical tables first, then bucket tables).
    with tf.GradientTape() as tape:
        reference = tf.reduce_sum(unfused(batch) ** 2)
    per_table = tape.gradient(
        reference,
        [
            unfused._embeddings["place"].embeddings,
            unfused._embeddings["brand"].embeddings,
            unfused._buckets["income"][1].embeddings,
        ],
    )
    np.testing.assert_allclose(
        tf.convert_to_tensor(grad).numpy(),
        np.concatenate([tf.convert_to_tensor(g).numpy() for g in per_table]),
        rtol=1e-5,
        atol=1e-6,
    )


def test_small_tables_get_the_dense_gradient_of_the_sparse_one():
    dense, _ = _fused_pair()
    sparse, _ = _fused_pair(dense_gradient_rows=0)
    for name in dense.embedding_table_names:
        sparse.set_embedding_table(name, dense.embedding_table(name))
    sparse._attention["visited"].set_weights(dense._attention["visited"].get_weights())
    batch = _fused_batch()
    np.testing.assert_array_equal(
        tf.function(dense)(batch).numpy(), sparse(batch).numpy()
    )
    grads = []
    for layer in (dense, sparse):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(batch) ** 2)
        grads.append(tape.gradient(loss, layer._tables["3"]))
    # Width 3 holds place, income buckets and brand (11 rows): the single-valued
    # gather's part is dense; the tokens of "visited" still add sparse rows,
    # which TensorFlow sums into the dense tensor.
    assert not isinstance(grads[0], tf.IndexedSlices)
    assert isinstance(grads[1], tf.IndexedSlices)
    np.testing.assert_allclose(
        grads[0].numpy(), tf.convert_to_tensor(grads[1]).numpy(), rtol=1e-6
    )
    # Over the limit (11 and 16 rows > 10), the gradients stay sparse.
    limited, _ = _fused_pair(dense_gradient_rows=10)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(limited(batch) ** 2)
    tables = [limited._tables["3"], limited._tables["2"]]
    assert all(isinstance(g, tf.IndexedSlices) for g in tape.gradient(loss, tables))


def test_gather_with_dense_gradient_equals_the_merged_sparse_gradient():
    rng = np.random.default_rng(3)
    table = tf.Variable(rng.normal(size=(7, 3)).astype(np.float32))
    ids = tf.constant(rng.integers(0, 7, size=(5, 4)), tf.int64)
    weights = tf.constant(rng.normal(size=(5, 4, 3)).astype(np.float32))
    grads = []
    for gather in (gather_with_dense_gradient, tf.gather):
        with tf.GradientTape() as tape:
            out = gather(table, ids)
            loss = tf.reduce_sum(out * weights)
        grads.append(tf.convert_to_tensor(tape.gradient(loss, table)).numpy())
        np.testing.assert_array_equal(out.numpy(), tf.gather(table, ids).numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6, atol=1e-6)


#: Output width of each of FUSED_FEATURES (``visited`` adds its query match).
FUSED_WIDTHS = {
    "city": 3,
    "price": 1,
    "age": 2,
    "visited": 4,
    "device": 2,
    "home": 3,
    "income": 3,
    "tags": 2,
    "brand": 3,
}


def test_grouped_order_is_the_feature_order_with_the_gathers_first():
    grouped, in_order = _same_weights(
        [
            FeatureEmbedding(
                FUSED_FEATURES, FUSED_VOCABULARIES, FUSED_STATS, output_order=order
            )
            for order in ("grouped", "features")
        ]
    )
    batch = _fused_batch()
    by_feature, start = {}, 0
    out = in_order(batch).numpy()
    for name, width in FUSED_WIDTHS.items():
        by_feature[name] = out[:, start : start + width]
        start += width
    # Width 3 appears first (city), then width 2 (age); within a width the
    # feature order; then price, visited and tags, not gathered, in order.
    expected = np.concatenate(
        [
            by_feature[name]
            for name in (
                ["city", "home", "income", "brand", "age", "device"]
                + ["price", "visited", "tags"]
            )
        ],
        axis=1,
    )
    np.testing.assert_array_equal(grouped(batch).numpy(), expected)
    np.testing.assert_array_equal(tf.function(grouped)(batch).numpy(), expected)

    # Grouped, each width's block is one slice: nothing is split around the
    # other features (in feature order the width-3 block is cut in 3 runs).
    def splits(layer):
        graph = tf.function(layer).get_concrete_function(batch).graph
        return sum(op.type == "SplitV" for op in graph.get_operations())

    assert (splits(grouped), splits(in_order)) == (0, 2)


@pytest.mark.parametrize("order", ["grouped", "features"])
def test_fused_and_unfused_agree_in_either_order(order):
    fused, unfused = _fused_pair(order=order)
    batch = _fused_batch()
    np.testing.assert_array_equal(fused(batch).numpy(), unfused(batch).numpy())


def test_output_order_round_trips_and_older_configs_keep_feature_order():
    layer = FeatureEmbedding(FUSED_FEATURES, FUSED_VOCABULARIES, FUSED_STATS)
    config = layer.get_config()
    assert config["output_order"] == "grouped"
    assert FeatureEmbedding.from_config(config).output_order == "grouped"
    del config["output_order"]  # a config written before the option
    assert FeatureEmbedding.from_config(config).output_order == "features"
    with pytest.raises(
        ValueError,
        match=r"`output_order` must be one of \('grouped', 'features'\). "
        r"Received: `output_order='sorted'`",
    ):
        FeatureEmbedding(
            FUSED_FEATURES, FUSED_VOCABULARIES, FUSED_STATS, output_order="sorted"
        )


def test_fused_config_round_trip_and_older_configs_load():
    fused, unfused = _fused_pair()
    config = fused.get_config()
    assert config["fused"] is True and unfused.get_config()["fused"] is False
    assert FeatureEmbedding.from_config(config).get_config() == config
    del config["fused"]  # a config written before fusing existed
    assert FeatureEmbedding.from_config(config).fused is True
    with pytest.raises(
        ValueError, match=r"^`fused` must be a bool\. Received: `fused=1`$"
    ):
        FeatureEmbedding(FUSED_FEATURES, FUSED_VOCABULARIES, FUSED_STATS, fused=1)
    # A NumPy bool (a flag read from an array) is one, kept as Python's.
    layer = FeatureEmbedding(
        FUSED_FEATURES, FUSED_VOCABULARIES, FUSED_STATS, fused=np.bool_(False)
    )
    assert layer.get_config()["fused"] is False
    assert config["dense_gradient_rows"] == 8192
    for bad in (-1, 2.5, True):
        with pytest.raises(
            ValueError,
            match=f"`dense_gradient_rows` must be an int >= 0. Received: "
            f"`dense_gradient_rows={bad!r}`",
        ):
            FeatureEmbedding(
                FUSED_FEATURES, FUSED_VOCABULARIES, FUSED_STATS, dense_gradient_rows=bad
            )


def test_table_accessors_and_name_clash_are_clear_errors():
    fused, _ = _fused_pair()
    with pytest.raises(KeyError, match="No embedding table 'nope'"):
        fused.embedding_table("nope")
    with pytest.raises(ValueError, match=r"Table 'age' has shape \(6, 2\)"):
        fused.set_embedding_table("age", np.zeros((5, 2)))
    with pytest.raises(ValueError, match="would share the name of the categorical"):
        FeatureEmbedding(
            [
                {"name": "x", "embedding_dim": 2, "table": "income"},
                {"name": "income", "kind": "dense", "boundaries": [1.0]},
            ],
            {"income": ["a"]},
            {"income": {"mean": 0.0, "std": 1.0, "boundaries": [1.0]}},
        )


def _price_layer(fill_value=None):
    feature = {"name": "price", "kind": "dense", "normalization": "none"}
    if fill_value is not None:
        feature["fill_value"] = fill_value
    stats = {
        "price": {"mean": 0.0, "std": 1.0, "boundaries": None, "min": -2.0, "max": 5.0}
    }
    return FeatureEmbedding([feature], dense_stats=stats)


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
def test_non_finite_dense_values_are_refused_naming_the_feature_and_row(graph):
    layer = _price_layer()
    call = tf.function(layer) if graph else layer
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(
            tf.errors.InvalidArgumentError,
            match=r"Input `price` is NaN or infinite at row 2 of the batch",
        ):
            call({"price": tf.constant([1.0, 2.0, bad])})


def test_nan_is_the_fill_value_when_the_feature_has_one_but_inf_is_refused():
    layer = _price_layer(fill_value=3.0)
    out = layer({"price": tf.constant([1.0, np.nan])}).numpy()
    np.testing.assert_array_equal(out[:, 0], [1.0, 3.0])
    with pytest.raises(tf.errors.InvalidArgumentError, match="at row 0"):
        layer({"price": tf.constant([np.inf, 1.0])})


def test_dense_values_are_clipped_to_the_training_range():
    layer = _price_layer()
    out = layer({"price": tf.constant([-1e30, -2.0, 0.5, 5.0, 1e30])}).numpy()
    np.testing.assert_array_equal(out[:, 0], [-2.0, -2.0, 0.5, 5.0, 5.0])
    # Stats without a range (runs prepared before it was recorded) do not clip.
    older = FeatureEmbedding(
        [{"name": "price", "kind": "dense", "normalization": "none"}],
        dense_stats={"price": {"mean": 0.0, "std": 1.0, "boundaries": None}},
    )
    out = older({"price": tf.constant([1e30])}).numpy()
    np.testing.assert_array_equal(out, np.float32([[1e30]]))
