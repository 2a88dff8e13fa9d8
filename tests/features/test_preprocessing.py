"""Vocabulary and dense-statistics fitting on the train split."""

import numpy as np
import pytest

from mtrec.features import FeatureSet
from mtrec.features import PreprocessingState
from mtrec.features import fit_preprocessing


def _chunks():
    yield {
        "item": np.array([1, 2, 2, 3]),
        "hist": np.array(["1|2", "", "3|3|9", "2"], dtype=object),
        "city": np.array(["a", "b", "a", ""], dtype=object),
        "price": np.array([0.0, 1.0, 2.0, 3.0], dtype=np.float32),
    }
    yield {
        "item": np.array([3]),
        "hist": np.array(["4"], dtype=object),
        "city": np.array(["c"], dtype=object),
        "price": np.array([4.0], dtype=np.float32),
    }


FEATURES = [
    {"name": "item", "dtype": "int64"},
    {"name": "hist", "kind": "multi_valued", "dtype": "int64", "table": "item"},
    {"name": "city", "min_count": 2},
    {"name": "price", "kind": "dense", "num_buckets": 2},
]


def test_vocabularies_count_over_shared_tables_with_min_count():
    state = fit_preprocessing(FeatureSet.from_dicts(FEATURES), _chunks(), seed=0)
    # item counts over item + hist: 2 -> 4, 3 -> 4, 1 -> 2, 9 -> 1, 4 -> 1;
    # ties broken by token
    assert state.vocabularies["item"] == [2, 3, 1, 4, 9]
    # city: a twice; b, c once (min_count 2); the missing "" never enters
    assert state.vocabularies["city"] == ["a"]


def test_dense_mean_std_and_quantile_boundaries():
    state = fit_preprocessing(FeatureSet.from_dicts(FEATURES), _chunks(), seed=0)
    stats = state.dense["price"]
    assert stats["mean"] == pytest.approx(2.0)
    assert stats["std"] == pytest.approx(np.std([0, 1, 2, 3, 4]))
    assert stats["boundaries"] == [pytest.approx(2.0)]
    assert (stats["min"], stats["max"]) == (0.0, 4.0)  # the range serving clips to


def test_given_vocabulary_is_kept_as_is_and_hashed_tables_need_none():
    fs = FeatureSet.from_dicts(
        [
            {"name": "city", "vocabulary": ["z", "a"]},
            {"name": "item", "dtype": "int64", "hash_bins": 10},
        ]
    )
    state = fit_preprocessing(
        fs, [{"city": np.array(["a"], dtype=object), "item": np.array([1])}], seed=0
    )
    assert state.vocabularies == {"city": ["z", "a"]}


def test_save_and_load_round_trip(tmp_path):
    fs = FeatureSet.from_dicts(FEATURES)
    state = fit_preprocessing(fs, _chunks(), seed=0)
    files = state.save(tmp_path)
    assert open(files["item"]).read().splitlines() == ["2", "3", "1", "4", "9"]
    loaded = PreprocessingState.load(tmp_path, fs)
    assert loaded == state
    assert PreprocessingState.vocabulary_files(tmp_path) == files


def test_empty_split_and_all_missing_values_are_errors():
    fs = FeatureSet.from_dicts([{"name": "city", "min_count": 5}])
    with pytest.raises(ValueError, match="train split has no rows"):
        fit_preprocessing(fs, [], seed=0)
    with pytest.raises(ValueError, match="no tokens to fit a vocabulary on"):
        fit_preprocessing(fs, [{"city": np.array(["", ""], dtype=object)}], seed=0)


def test_min_count_above_every_count_keeps_the_top_token_and_warns(caplog):
    fs = FeatureSet.from_dicts([{"name": "city", "min_count": 5}])
    chunk = {"city": np.array(["b", "a", "b", "c"], dtype=object)}
    with caplog.at_level("WARNING"):
        state = fit_preprocessing(fs, [chunk], seed=0)
    assert state.vocabularies["city"] == ["b"]
    assert "no token occurs min_count=5 times" in caplog.text


def test_encoded_ids_need_no_vocabulary_and_are_range_checked():
    fs = FeatureSet.from_dicts(
        [
            {"name": "age", "dtype": "int64", "num_ids": 5},
            {
                "name": "recent",
                "kind": "multi_valued",
                "dtype": "int64",
                "num_ids": 5,
                "table": "ages",
            },
        ]
    )
    good = {"age": np.array([0, 4]), "recent": np.array(["1|4", ""], dtype=object)}
    assert fit_preprocessing(fs, [good], seed=0).vocabularies == {}
    # First offending value, by row across chunks (rows counted from 1).
    bad_age = {"age": np.array([1, 2, 5, -1]), "recent": good["recent"].repeat(2)}
    with pytest.raises(
        ValueError,
        match=r"Feature 'age': encoded id 5 at row 5 of the train split is outside "
        r"\[0, 5\) \(`num_ids=5`\)",
    ):
        fit_preprocessing(fs, [good, bad_age], seed=0)
    bad_recent = {"age": np.array([0, 0, 0]), "recent": np.array(["1", "", "2|-3|9"])}
    with pytest.raises(ValueError, match="'recent': encoded id -3 at row 3 "):
        fit_preprocessing(fs, [bad_recent], seed=0)
