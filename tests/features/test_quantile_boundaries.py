"""quantile_boundaries: equal-mass buckets, a point mass in a bucket of its own."""

import numpy as np
import pytest
import tensorflow as tf

from mtrec.features import DenseFeature
from mtrec.features import FeatureEmbedding
from mtrec.features import FeatureSet
from mtrec.features import dense_value
from mtrec.features import fit_preprocessing
from mtrec.features import quantile_boundaries


def test_without_a_point_mass_the_boundaries_are_the_plain_quantiles():
    sample = np.random.default_rng(0).normal(size=10_000)
    expected = np.quantile(sample, np.linspace(0, 1, 9)[1:-1])
    np.testing.assert_allclose(quantile_boundaries(sample, 8), expected)
    assert quantile_boundaries([1, 2, 3, 4, 5], 2) == [3.0]


def test_zeros_of_a_zero_inflated_amount_get_their_own_bucket():
    # 96% zeros: plain quantiles would cut only at 0.0 (two buckets).
    sample = np.concatenate([np.zeros(960), np.arange(1.0, 41.0)])
    assert sorted(set(np.quantile(sample, np.linspace(0, 1, 5)[1:-1]))) == [0.0]
    bounds = quantile_boundaries(sample, 4)
    # Zero's bucket ends halfway to 1; the 40 other values in three of ~13.
    assert bounds == [0.5, 14.0, 27.0]
    buckets = np.searchsorted(bounds, sample, side="right")
    assert set(buckets[:960]) == {0}
    assert np.bincount(buckets[960:]).tolist() == [0, 13, 13, 14]


def test_a_point_mass_in_the_middle_is_bounded_by_midpoints_on_both_sides():
    sample = [1, 2, 2, 2, 2, 2, 3, 9]
    # 2 holds 5/8 >= 1/4: [1.5, 2.5) is its bucket; the rest's quantiles
    # (1, 3, 9 at 1/3 and 2/3: 2.33 and 5.0) lose the one inside 2's bucket.
    assert quantile_boundaries(sample, 4) == [1.5, 2.5, 5.0]
    # Two values, each a point mass: one boundary between them.
    assert quantile_boundaries([0, 1, 1, 0], 64) == [0.5]


def test_constant_or_empty_samples_and_bad_counts():
    # A constant keeps the one boundary plain quantiles gave it (a model
    # with it still builds: its bucket table has two rows).
    assert quantile_boundaries([3.0, 3.0], 4) == [3.0]
    assert quantile_boundaries([], 4) == []
    for bad in (1, 2.5):
        with pytest.raises(ValueError) as error:
            quantile_boundaries([1.0, 2.0], bad)
        assert str(error.value) == (
            f"`num_buckets` must be an integer >= 2. Received: `num_buckets={bad!r}`"
        )


def test_fitted_buckets_hold_a_log1p_point_mass_computed_in_float32():
    # A value 5 in half the rows, log1p'd: float32 in the graph, float64 in
    # the fit. Its bucket is bounded by midpoints, so both agree.
    values = np.array([5.0] * 50 + list(range(6, 56)), dtype=np.float64)
    spec = {"name": "amount", "kind": "dense", "log1p": True, "num_buckets": 8}
    state = fit_preprocessing(
        FeatureSet.from_dicts([spec]), [{"amount": values}], seed=0
    )
    bounds = state.dense["amount"]["boundaries"]
    assert len(bounds) == 7
    assert bounds[0] == pytest.approx((np.log1p(5.0) + np.log1p(6.0)) / 2)
    x = dense_value(
        DenseFeature(**{k: v for k, v in spec.items() if k != "kind"}),
        tf.constant([5.0, 6.0], tf.float32),
        state.dense["amount"],
    )
    buckets = tf.keras.layers.Discretization(bin_boundaries=bounds)(x).numpy()
    assert buckets.tolist() == [0, 1]


def test_a_feature_constant_on_the_train_split_still_gets_a_bucket_table():
    spec = {"name": "flag", "kind": "dense", "num_buckets": 8, "keep_value": True}
    fs = FeatureSet.from_dicts([spec])
    state = fit_preprocessing(fs, [{"flag": np.full(100, 2.0)}], seed=0)
    assert state.dense["flag"]["boundaries"] == [2.0]
    layer = FeatureEmbedding([spec], None, state.dense)
    out = layer({"flag": tf.constant([2.0, 2.0])})
    assert out.shape == (2, 8 + 1)
    assert layer.embedding_table("flag").shape == (2, 8)
