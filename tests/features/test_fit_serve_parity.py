"""Fitting and serving agree: stable statistics, one tokeniser, one log1p."""

import numpy as np
import pytest
import tensorflow as tf

from mtrec.features import FeatureSet
from mtrec.features import fit_preprocessing
from mtrec.features.moments import RunningMoments
from mtrec.features.tokens import split_tokens
from mtrec.features.tokens import token_array
from mtrec.features.transforms import signed_log1p


def test_dense_statistics_of_a_large_mean_feature_are_exact():
    # Unix timestamps: mean 1.7e9, spread 10 s. E[x^2] - E[x]^2 loses every
    # digit of the variance here; the chunked Chan merge keeps them.
    rng = np.random.default_rng(0)
    values = 1.7e9 + rng.normal(0.0, 10.0, size=100_000)
    chunks = ({"ts": part} for part in np.array_split(values, 37))
    state = fit_preprocessing(
        FeatureSet.from_dicts([{"name": "ts", "kind": "dense"}]), chunks, seed=0
    )
    stats = state.dense["ts"]
    assert stats["mean"] == pytest.approx(values.mean(), rel=1e-14)
    assert stats["std"] == pytest.approx(values.std(), rel=1e-9)
    assert 9.9 < stats["std"] < 10.1


@pytest.mark.parametrize("splits", [1, 2, 7, 1000])
def test_running_moments_do_not_depend_on_the_chunking(splits):
    values = np.random.default_rng(1).lognormal(3.0, 2.0, size=5_000)
    moments = RunningMoments()
    for part in np.array_split(values, splits):
        moments.add(part)
    assert moments.count == values.size
    assert moments.mean == pytest.approx(values.mean(), rel=1e-12)
    assert moments.std == pytest.approx(values.std(), rel=1e-10)


def test_running_moments_of_nothing_and_of_a_constant():
    empty = RunningMoments()
    empty.add(np.array([]))
    assert (empty.count, empty.variance) == (0, 0.0)
    constant = RunningMoments()
    for _ in range(3):
        constant.add(np.full(10, 1.7e9))
    assert (constant.mean, constant.std) == (1.7e9, 0.0)


EDGE_CELLS = [
    "",  # an empty field
    "a||b",  # repeated separators
    "|a|",  # leading and trailing separators
    " a | b ",  # spaces around tokens
    "| |",  # only separators and blanks
    "é|中文|🙂",  # unicode
    "\u00a0x|x",  # a non-ASCII space: whatever strip does, both paths do it
    "||a|b|c",  # max_length counts kept tokens, not empty ones
]


@pytest.mark.parametrize("max_length", [None, 2])
def test_fitting_and_the_model_split_string_cells_the_same(max_length):
    cells = np.array(EDGE_CELLS, dtype=object)
    fitted = list(token_array(cells, "|", max_length, "string"))
    served = [
        t.decode("utf-8")
        for t in split_tokens(
            tf.constant(EDGE_CELLS), "|", max_length, "string"
        ).flat_values.numpy()
    ]
    assert fitted == served
    if max_length == 2:
        assert fitted[-2:] == ["a", "b"]  # from "||a|b|c"
    else:
        assert {"é", "中文", "🙂"} <= set(fitted)


def test_int_tokens_keep_huge_and_negative_ids():
    cells = np.array([str(2**62) + "|-5", None, " 7 |"], dtype=object)
    assert token_array(cells, "|", None, "int64").tolist() == [2**62, -5, 7]
    with pytest.raises(ValueError, match="a token is not an integer"):
        token_array(np.array(["1|x"], dtype=object), "|", None, "int64")


def test_the_fitted_vocabulary_is_what_the_model_looks_up():
    # "||a|b|c" with max_length 2 serves a and b: both must be in the vocabulary
    # (fitting used to truncate before dropping the empty tokens: only "a").
    specs = [
        {"name": "tags", "kind": "multi_valued", "max_length": 2, "embedding_dim": 2}
    ]
    feature_set = FeatureSet.from_dicts(specs)
    cells = np.array(["||a|b|c", "b", ""], dtype=object)
    state = fit_preprocessing(feature_set, [{"tags": cells}], seed=0)
    assert sorted(state.vocabularies["tags"]) == ["a", "b"]


@pytest.mark.parametrize(
    "value", [0.0, -0.0, 1e-8, -0.5, 3.0, 1e6, -1e30, 3.4e38, np.inf, -np.inf]
)
def test_signed_log1p_is_one_implementation(value):
    graph = signed_log1p(tf.constant([value], tf.float64)).numpy()
    fitted = signed_log1p(np.array([value]))
    np.testing.assert_array_equal(graph, fitted)
    expected = np.sign(value) * np.log1p(np.abs(value))
    np.testing.assert_allclose(fitted, [expected], rtol=1e-15)
