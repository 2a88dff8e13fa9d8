"""IdEncoder: raw values to table rows ahead of training, embedded alike."""

import numpy as np
import pytest
import tensorflow as tf

from mtrec.features import FeatureEmbedding
from mtrec.features import FeatureSet
from mtrec.features import IdEncoder
from mtrec.features import check_row_ids_keys
from mtrec.features import encodable_features
from mtrec.features import row_ids_key

FEATURES = [
    {"name": "city", "kind": "categorical", "embedding_dim": 3},
    {"name": "item", "kind": "categorical", "dtype": "int64", "embedding_dim": 3},
    {"name": "site", "kind": "categorical", "hash_bins": 7, "embedding_dim": 3},
    {"name": "home", "kind": "categorical", "table": "city", "embedding_dim": 3},
    {"name": "age", "dtype": "int64", "num_ids": 4, "embedding_dim": 3},
    {"name": "wide", "kind": "categorical", "embedding_dim": 5},
    {
        "name": "history",
        "kind": "multi_valued",
        "table": "wide",
        "query": "wide",
        "query_match": True,
        "embedding_dim": 5,
    },
    {"name": "price", "kind": "dense"},
]
VOCABULARIES = {
    "city": ["paris", "rome", "oslo"],
    "item": [7, 9, 11],
    "wide": ["x", "y"],
}
DENSE = {"price": {"mean": 1.0, "std": 2.0, "boundaries": None}}


def _raw_batch() -> dict[str, tf.Tensor]:
    return {
        "city": tf.constant(["rome", "lima", "", "paris", "oslo"]),
        "item": tf.constant([9, 7, 123, 11, 9], tf.int64),
        "site": tf.constant(["s1", "s2", "s3", "s1", ""]),
        "home": tf.constant(["paris", "paris", "rome", "zz", "oslo"]),
        "age": tf.constant([0, 3, 2, 1, 0], tf.int64),
        "wide": tf.constant(["x", "y", "q", "x", "y"]),
        "history": tf.constant(["x,y", "y", "", "q,x", "x"]),
        "price": tf.constant([0.5, 1.0, 2.0, -1.0, 3.0]),
        "click": tf.constant([1.0, 0.0, 1.0, 0.0, 1.0]),
    }


def _layer(fused: bool) -> FeatureEmbedding:
    tf.keras.utils.set_random_seed(3)
    return FeatureEmbedding(FEATURES, VOCABULARIES, DENSE, fused=fused)


def test_encodable_features_leave_out_encoded_multi_valued_and_query_features():
    features = FeatureSet.from_dicts(FEATURES)
    assert encodable_features(features) == ["city", "item", "site", "home"]


@pytest.mark.parametrize("fused", [True, False])
def test_encoded_rows_embed_exactly_as_the_raw_values(fused):
    layer = _layer(fused)
    raw = _raw_batch()
    encoder = IdEncoder(layer.feature_set, VOCABULARIES)
    encoded = encoder(raw)
    assert set(encoded) == (set(raw) - set(encoder.names)) | {
        row_ids_key(n) for n in encoder.names
    }
    assert encoded[row_ids_key("city")].dtype == tf.int64
    # OOV bucket 0, then the vocabulary in order; the shared table alike.
    assert encoded[row_ids_key("city")].numpy().tolist() == [2, 0, 0, 1, 3]
    assert encoded[row_ids_key("home")].numpy().tolist() == [1, 1, 2, 0, 3]
    assert layer.given_row_ids(encoded) == frozenset(encoder.names)
    assert layer.given_row_ids(raw) == frozenset()
    np.testing.assert_array_equal(layer(encoded).numpy(), layer(raw).numpy())
    # Gradients reach the same table rows with the same values.
    grads = []
    for batch in (raw, encoded):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(batch) ** 2)
        grads.append(tape.gradient(loss, layer.trainable_variables))
    for a, b in zip(*grads, strict=True):
        np.testing.assert_array_equal(tf.convert_to_tensor(a), tf.convert_to_tensor(b))


@pytest.mark.parametrize("fused", [True, False])
def test_row_ids_out_of_their_table_are_refused_naming_the_feature(fused):
    layer = _layer(fused)
    encoded = IdEncoder(layer.feature_set, VOCABULARIES)(_raw_batch())
    encoded[row_ids_key("item")] = tf.constant([0, 1, 4, 2, 3], tf.int64)  # 4 rows
    with pytest.raises(tf.errors.InvalidArgumentError, match="feature `item`") as info:
        layer(encoded)
    assert "[0, 4)" in str(info.value) and "at batch row" in str(info.value)


def test_a_column_named_like_a_row_id_column_is_refused():
    features = FeatureSet.from_dicts(
        [
            {"name": "city", "kind": "categorical"},
            {"name": "city__row_ids", "dtype": "int64", "num_ids": 3},
        ]
    )
    with pytest.raises(ValueError, match="'city__row_ids' it would be stored in"):
        IdEncoder(features, {"city": ["a"]})


def test_a_table_column_named_like_a_row_id_column_is_refused():
    features = FeatureSet.from_dicts([{"name": "city", "kind": "categorical"}])
    check_row_ids_keys(features, {"city": 0, "click": 0})  # fine
    with pytest.raises(ValueError, match="'city__row_ids' it would be stored in"):
        check_row_ids_keys(features, {"city": 0, "city__row_ids": 0})
    encoder = IdEncoder(features, {"city": ["a"]})
    with pytest.raises(ValueError, match="'city__row_ids' it would be stored in"):
        encoder({"city": tf.constant(["a"]), "city__row_ids": tf.constant([0])})


def test_the_fingerprint_follows_the_vocabularies_and_specs(tmp_path):
    features = FeatureSet.from_dicts(FEATURES)
    base = IdEncoder(features, VOCABULARIES).fingerprint
    assert IdEncoder(features, dict(VOCABULARIES)).fingerprint == base
    changed = {**VOCABULARIES, "city": ["rome", "paris", "oslo"]}
    assert IdEncoder(features, changed).fingerprint != base
    other = FeatureSet.from_dicts(
        [dict(f, hash_bins=8) if f["name"] == "site" else f for f in FEATURES]
    )
    assert IdEncoder(other, VOCABULARIES).fingerprint != base
    # A vocabulary file counts by its contents, not its path.
    path = tmp_path / "city.txt"
    path.write_text("paris\nrome\noslo\n")
    from_file = IdEncoder(features, {**VOCABULARIES, "city": str(path)})
    path.write_text("paris\nrome\nlima\n")
    assert IdEncoder(features, {**VOCABULARIES, "city": str(path)}).fingerprint != (
        from_file.fingerprint
    )
