"""FeatureEmbedding: exact lookups, OOV, hashing, pooling and dense transforms."""

import numpy as np
import pytest
import tensorflow as tf

from mtrec.features import FeatureEmbedding

DENSE_ID = {"mean": 0.0, "std": 1.0, "boundaries": None}


def _constant_tables(layer: FeatureEmbedding) -> None:
    """Row i of every table becomes [i, 10 i, ...]: embeddings are readable ids."""
    layer.build()
    tables = [*layer._embeddings.values(), *(emb for _, emb in layer._buckets.values())]
    for table in tables:
        rows, dim = table.embeddings.shape
        table.embeddings.assign(
            np.arange(rows)[:, None] * (10.0 ** np.arange(dim))[None, :]
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
    table = layer._embeddings["cat"].embeddings.numpy()
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
    layer = FeatureEmbedding(features, dense_stats=stats)
    _constant_tables(layer)
    x = {
        "price": tf.constant([0.0, np.e - 1, -(np.e - 1)], tf.float32),
        "raw": tf.constant([1.0, 2.0, 3.0]),
        "age": tf.constant([10.0, 18.0, 45.0]),
    }
    out = layer(x).numpy()
    np.testing.assert_allclose(
        out[:, 0], [(0 - 1) / 2, (1 - 1) / 2, (-1 - 1) / 2], atol=1e-6
    )
    np.testing.assert_allclose(out[:, 1], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(out[:, 2], [0.0, 1.0, 2.0])


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
