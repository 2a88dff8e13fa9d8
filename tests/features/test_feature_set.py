"""FeatureSet and the feature specs: parsing, validation, derived contracts."""

import pytest
import tensorflow as tf

from mtrec.features import CategoricalFeature
from mtrec.features import DenseFeature
from mtrec.features import FeatureSet
from mtrec.features import MultiValuedFeature


def test_from_dicts_builds_each_kind_and_round_trips():
    entries = [
        {"name": "user_id", "kind": "categorical", "dtype": "int64", "min_count": 2},
        {"name": "recent", "kind": "multi_valued", "pooling": "sqrtn", "table": "cat"},
        {"name": "item_cat", "kind": "categorical", "table": "cat"},
        {"name": "device", "hash_bins": 16},
        {"name": "price", "kind": "dense", "log1p": True, "num_buckets": 5},
    ]
    fs = FeatureSet.from_dicts(entries)
    assert [type(s) for s in fs] == [
        CategoricalFeature,
        MultiValuedFeature,
        CategoricalFeature,
        CategoricalFeature,
        DenseFeature,
    ]
    assert fs.names == ["user_id", "recent", "item_cat", "device", "price"]
    assert set(fs.tables) == {"user_id", "cat", "device"}
    assert FeatureSet.from_dicts(fs.to_dicts()).to_dicts() == fs.to_dicts()


def test_from_yaml(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_text(
        "features:\n  - {name: a, kind: categorical}\n  - {name: b, kind: dense}\n"
    )
    assert FeatureSet.from_yaml(path).names == ["a", "b"]


def test_input_signature_and_column_schema():
    fs = FeatureSet.from_dicts(
        [
            {"name": "user_id", "dtype": "int64"},
            {"name": "city"},
            {"name": "hist", "kind": "multi_valued", "dtype": "int64"},
            {"name": "price", "kind": "dense", "fill_value": 0.0},
            {"name": "age", "kind": "dense"},
        ]
    )
    sig = fs.input_signature()
    assert {k: v.dtype for k, v in sig.items()} == {
        "user_id": tf.int64,
        "city": tf.string,
        "hist": tf.string,
        "price": tf.float32,
        "age": tf.float32,
    }
    assert all(v.shape.as_list() == [None] and v.name == k for k, v in sig.items())
    schema = fs.column_schema(
        ["click", "conversion"], label_requires={"conversion": "click"}
    )
    assert schema.string_columns == ("city", "hist")
    assert schema.int_columns == ("user_id",)
    assert schema.float_columns == {"price": 0.0, "age": None}
    assert schema.label_columns == ("click", "conversion")


@pytest.mark.parametrize(
    "entries, message",
    [
        ([], "at least one feature"),
        ([{"name": "a"}, {"name": "a"}], "'a' is declared twice"),
        ([{"name": "a", "kind": "sparse"}], "unknown kind 'sparse'"),
        ([{"name": "a", "embeding_dim": 4}], r"unknown field\(s\) \['embeding_dim'\]"),
        ([{"kind": "dense"}], "needs a `name`"),
        (
            [{"name": "a", "embedding_dim": 0}],
            "`embedding_dim` must be an integer >= 1. Received: `embedding_dim=0`",
        ),
        ([{"name": "a", "dtype": "float"}], "`dtype` must be one of"),
        (
            [{"name": "a", "hash_bins": 8, "vocabulary": ["x"]}],
            "either `hash_bins` or a vocabulary",
        ),
        (
            [{"name": "a", "kind": "multi_valued", "pooling": "median"}],
            "`pooling` must be one of",
        ),
        (
            [{"name": "a", "kind": "dense", "boundaries": [2.0, 1.0]}],
            "strictly increasing",
        ),
        (
            [{"name": "a", "kind": "dense", "num_buckets": 1}],
            "`num_buckets` must be an integer >= 2",
        ),
        (
            [{"name": "a", "kind": "dense", "normalization": "minmax"}],
            "`normalization` must be one of",
        ),
        (
            [
                {"name": "a", "table": "t", "embedding_dim": 4},
                {"name": "b", "table": "t", "embedding_dim": 8},
            ],
            "share the embedding table 't' but disagree",
        ),
        (
            [{"name": "r", "kind": "multi_valued", "pooling": "attention"}],
            "`pooling='attention'` and `query_match=True` need a `query` feature",
        ),
        (
            [{"name": "r", "kind": "multi_valued", "query_match": True}],
            "need a `query` feature",
        ),
        (
            [
                {"name": "c"},
                {"name": "r", "kind": "multi_valued", "query": "c"},
            ],
            "`query` is only used by them",
        ),
        (
            [{"name": "r", "kind": "multi_valued", "query": "x", "query_match": True}],
            "the attention `query` 'x' must be .* Received: no such feature",
        ),
        (
            [
                {"name": "c", "embedding_dim": 4},
                {
                    "name": "r",
                    "kind": "multi_valued",
                    "embedding_dim": 8,
                    "pooling": "attention",
                    "query": "c",
                },
            ],
            "same embedding_dim \\(8\\) for attention pooling. Received: a "
            "categorical feature of dtype 'string' with embedding_dim 4",
        ),
        (
            [
                {"name": "c", "dtype": "int64"},
                {"name": "r", "kind": "multi_valued", "query": "c", "query_match": 1},
            ],
            "same dtype \\('string'\\) for `query_match`",
        ),
        (
            [
                {"name": "p", "kind": "dense"},
                {"name": "r", "kind": "multi_valued", "query": "p", "query_match": 1},
            ],
            "Received: a dense feature",
        ),
        (
            [
                {"name": "c"},
                {
                    "name": "r",
                    "kind": "multi_valued",
                    "pooling": "attention",
                    "query": "c",
                    "attention_units": [0],
                },
            ],
            "`attention_units` must be a non-empty list of positive integers",
        ),
    ],
)
def test_bad_specs_raise_clear_errors(entries, message):
    with pytest.raises(ValueError, match=message):
        FeatureSet.from_dicts(entries)


def test_encoded_ids_declare_num_ids_and_round_trip():
    fs = FeatureSet.from_dicts(
        [
            {"name": "age_bucket", "dtype": "int64", "num_ids": 50},
            {
                "name": "recent",
                "kind": "multi_valued",
                "dtype": "int64",
                "num_ids": 7,
                "pooling": "sum",
            },
        ]
    )
    age, recent = fs["age_bucket"], fs["recent"]
    assert age.encoded and recent.encoded and not age.uses_vocabulary
    assert fs.to_dicts()[0] == {
        "name": "age_bucket",
        "kind": "categorical",
        "dtype": "int64",
        "num_ids": 50,
    }
    assert FeatureSet.from_dicts(fs.to_dicts()).to_dicts() == fs.to_dicts()
    # The raw input stays an int64 id (multi-valued: the delimited string).
    assert fs.input_dtype("age_bucket") == tf.int64
    assert fs.input_dtype("recent") == tf.string


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"num_ids": 0}, "`num_ids` must be an integer >= 1. Received: `num_ids=0`"),
        (
            {"num_ids": 5, "dtype": "string"},
            "`dtype` must be 'int64'. Received: `dtype='string'`",
        ),
        ({"num_ids": 5, "hash_bins": 4}, r"excludes .* Received: `hash_bins=4`"),
        (
            {"num_ids": 5, "vocabulary": [1, 2]},
            r"excludes .* Received: `vocabulary=\[1, 2\]`",
        ),
        (
            {"num_ids": 5, "num_oov_buckets": 2, "min_count": 3},
            "Received: `min_count=3`, `num_oov_buckets=2`",
        ),
    ],
)
def test_bad_encoded_ids(extra, message):
    entry = {"name": "a", "dtype": "int64", **extra}
    with pytest.raises(ValueError, match=f"feature 'a': .*{message}"):
        FeatureSet.from_dicts([entry])
