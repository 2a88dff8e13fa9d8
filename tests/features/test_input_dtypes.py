"""The dtypes a feature's raw input may have: int32 ids as int64 ones, and a
clear error for a tensor of the wrong kind."""

import re

import numpy as np
import pytest
import tensorflow as tf

from mtrec.features import FeatureEmbedding
from mtrec.features import ids_in_range

FEATURES = [
    {"name": "age", "dtype": "int64", "num_ids": 6, "embedding_dim": 2},
    {"name": "brand", "dtype": "int64", "embedding_dim": 3, "num_oov_buckets": 2},
    {"name": "shop", "dtype": "int64", "hash_bins": 7, "embedding_dim": 2},
    {"name": "city", "embedding_dim": 3},
    {"name": "price", "kind": "dense", "log1p": True},
    {"name": "tags", "kind": "multi_valued", "dtype": "int64", "embedding_dim": 2},
]
VOCABULARIES = {"brand": [7, 9, 11], "city": ["a", "b"], "tags": [1, 2, 3]}
STATS = {"price": {"mean": 1.0, "std": 0.5, "boundaries": None}}


def _inputs(id_dtype) -> dict:
    return {
        "age": tf.constant([5, 0, 3], id_dtype),
        "brand": tf.constant([9, 8, 11], id_dtype),  # 8: out of vocabulary
        "shop": tf.constant([123456, -4, 0], id_dtype),
        "city": tf.constant(["b", "z", "a"]),
        "price": tf.constant([3.0, 0.0, 10.0]),
        "tags": tf.constant(["1|3", "", "2|9"]),
    }


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("graph", [False, True])
def test_int32_ids_embed_hash_and_look_up_exactly_as_int64_ids(fused, graph):
    layer = FeatureEmbedding(
        FEATURES, vocabularies=VOCABULARIES, dense_stats=STATS, fused=fused
    )
    call = tf.function(layer) if graph else layer
    expected = call(_inputs(tf.int64)).numpy()
    assert expected.shape == (3, 2 + 3 + 2 + 3 + 1 + 2)
    np.testing.assert_array_equal(call(_inputs(tf.int32)).numpy(), expected)
    # Ids as (batch, 1) columns, as Keras gives a dict of 2-D arrays.
    columns = {k: v[:, None] for k, v in _inputs(tf.int32).items()}
    np.testing.assert_array_equal(call(columns).numpy(), expected)


@pytest.mark.parametrize("where", ["layer", "input_checks"])
def test_an_int32_id_out_of_range_is_refused_as_an_int64_one(where):
    # `input_checks`: the checks a model that predicts through XLA runs
    # before the compiled part.
    layer = FeatureEmbedding(FEATURES[:1])
    call = layer if where == "layer" else layer.input_checks
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"\[Encoded id out of range: feature `age`: ids must be in \[0, 6\) "
        r"\(`num_ids=6`\); received\] \[6\] \[at batch row\] \[1\]",
    ):
        call({"age": tf.constant([1, 6], tf.int32)})
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=r"\[-1\] \[at batch row\] \[0\]"
    ):
        call({"age": tf.constant([-1, 2], tf.int32)})


@pytest.mark.parametrize(
    "name, value, message",
    [
        (
            "age",
            tf.constant([1.0, 2.7, 0.0]),
            "Input feature 'age' (categorical, `dtype='int64'`) takes integer ids "
            "(e.g. int32 or int64). Received: a tensor of dtype float32.",
        ),
        (
            "brand",
            tf.constant(["9", "7", "11"]),
            "Input feature 'brand' (categorical, `dtype='int64'`) takes integer ids "
            "(e.g. int32 or int64). Received: a tensor of dtype string.",
        ),
        (
            "city",
            tf.constant([1, 2, 3], tf.int64),
            "Input feature 'city' (categorical, `dtype='string'`) takes strings. "
            "Received: a tensor of dtype int64.",
        ),
        (
            "price",
            tf.constant(["3.0", "0", "1"]),
            "Input feature 'price' (dense) takes numbers (a float or integer "
            "dtype). Received: a tensor of dtype string.",
        ),
        (
            "tags",
            tf.constant([1, 2, 3], tf.int64),
            "Input feature 'tags' (multi-valued) takes strings (its tokens "
            "joined). Received: a tensor of dtype int64.",
        ),
    ],
)
def test_an_input_of_the_wrong_kind_is_refused_naming_the_feature(name, value, message):
    layer = FeatureEmbedding(FEATURES, vocabularies=VOCABULARIES, dense_stats=STATS)
    layer(_inputs(tf.int64))
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        layer.call({**_inputs(tf.int64), name: value})
    with pytest.raises(ValueError, match=re.escape(message)):
        layer({**_inputs(tf.int64), name: value})


def test_integer_dense_values_are_read_as_numbers():
    layer = FeatureEmbedding(FEATURES[4:5], dense_stats=STATS)
    expected = layer({"price": tf.constant([3.0, 0.0, 10.0])}).numpy()
    got = layer({"price": tf.constant([3, 0, 10], tf.int32)}).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_int32_encoded_ids_reach_the_gather_uncast_as_a_matrix():
    features = [
        {"name": n, "dtype": "int64", "num_ids": 9, "embedding_dim": 2}
        for n in ("age", "level", "region")
    ]
    layer = FeatureEmbedding([*features, FEATURES[4]], dense_stats=STATS)
    signature = {
        "age": tf.TensorSpec([None], tf.int32, name="age"),
        "level": tf.TensorSpec([None], tf.int32, name="level"),
        "region": tf.TensorSpec([None], tf.int32, name="region"),
        "price": tf.TensorSpec([None], tf.float32, name="price"),
    }
    graph = tf.function(layer).get_concrete_function(signature).graph
    casts = [
        op
        for op in graph.get_operations()
        if op.type == "Cast" and op.get_attr("SrcT") == tf.int32
    ]
    assert casts == []
    # The gather reads the (batch, 3) int32 matrix: the three inputs stacked
    # (and offset into the one table).
    gathers = [op for op in graph.get_operations() if op.type == "GatherV2"]
    assert len(gathers) == 1
    assert gathers[0].inputs[1].dtype == tf.int32
    assert gathers[0].inputs[1].shape.as_list() == [None, 3]
    ids = {"age": [3, 0], "level": [8, 1], "region": [2, 2]}
    as32 = {k: tf.constant(v, tf.int32) for k, v in ids.items()}
    as64 = {k: tf.constant(v, tf.int64) for k, v in ids.items()}
    price = {"price": tf.constant([1.0, 2.0])}
    np.testing.assert_array_equal(
        layer({**as32, **price}).numpy(), layer({**as64, **price}).numpy()
    )


def test_int32_and_int64_ids_of_one_table_are_stacked_as_int64():
    features = [
        {"name": n, "dtype": "int64", "num_ids": 9, "embedding_dim": 2}
        for n in ("age", "level")
    ]
    layer = FeatureEmbedding(features)
    signature = {
        "age": tf.TensorSpec([None], tf.int32, name="age"),
        "level": tf.TensorSpec([None], tf.int64, name="level"),
    }
    graph = tf.function(layer).get_concrete_function(signature).graph
    gathers = [op for op in graph.get_operations() if op.type == "GatherV2"]
    assert [op.inputs[1].dtype for op in gathers] == [tf.int64]
    mixed = {"age": tf.constant([3, 8], tf.int32), "level": tf.constant([0, 5])}
    as64 = {"age": tf.constant([3, 8], tf.int64), "level": tf.constant([0, 5])}
    np.testing.assert_array_equal(layer(mixed).numpy(), layer(as64).numpy())


def test_int32_ids_are_read_as_unsigned_only_below_two_to_the_31():
    # Above 2**31 a negative int32 read as uint32 could fall below the bound:
    # those columns are compared as int64.
    rows = [2**31, 2**32 + 3, 5]
    got = ids_in_range(tf.constant([[-1, -1, 7], [0, 2**31 - 1, 4]], tf.int32), rows)
    assert got.numpy().tolist() == [[False, False, False], [True, True, True]]
    by_feature = ids_in_range(tf.constant([[-1, 0], [3, 2]], tf.int32), [3, 4], True)
    assert by_feature.numpy().tolist() == [[False, True], [True, True]]


@pytest.mark.parametrize("dense_gradient_rows", [0, 10_000])
def test_int32_ids_train_as_int64_ids(dense_gradient_rows):
    """The same gradients of the table through the sparse (``tf.gather``)
    and the dense (``gather_with_dense_gradient``) backward."""
    features = [
        {"name": n, "dtype": "int64", "num_ids": 9, "embedding_dim": 2}
        for n in ("age", "level")
    ]
    layer = FeatureEmbedding(features, dense_gradient_rows=dense_gradient_rows)
    ids = {"age": [3, 8, 3], "level": [0, 5, 8]}
    grads = []
    for dtype in (tf.int32, tf.int64):
        with tf.GradientTape() as tape:
            out = layer({k: tf.constant(v, dtype) for k, v in ids.items()})
            loss = tf.reduce_sum(out * tf.range(1.0, 13.0)[None, :4])
        (grad,) = tape.gradient(loss, layer.trainable_weights)
        grads.append(tf.convert_to_tensor(grad).numpy())
    np.testing.assert_array_equal(grads[0], grads[1])
    # Row 3 of `age` is read twice: its gradient is the sum.
    np.testing.assert_array_equal(grads[0][3], [2.0, 4.0])
