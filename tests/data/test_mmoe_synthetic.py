"""Tests of the MMoE paper's synthetic regression data (Ma et al., KDD 2018)."""

import math
import re

import numpy as np
import pandas as pd
import pytest

from mtrec.data.mmoe_synthetic import generate_mmoe_regression
from mtrec.data.mmoe_synthetic import mmoe_task_params
from mtrec.data.mmoe_synthetic import standardize_labels

NUM_ROWS = 20_000


def _inputs(df: pd.DataFrame, input_dim: int) -> np.ndarray:
    return df[[f"x{j}" for j in range(input_dim)]].to_numpy()


def test_columns_and_dtypes():
    df = generate_mmoe_regression(50, 0.5, seed=1, input_dim=6)
    assert list(df.columns) == [f"x{j}" for j in range(6)] + ["y1", "y2"]
    assert (df.dtypes == "float64").all()
    assert len(df) == 50


def test_same_seed_same_frame_other_seed_other_frame():
    first = generate_mmoe_regression(200, 0.3, seed=4, input_dim=10)
    again = generate_mmoe_regression(200, 0.3, seed=4, input_dim=10)
    other = generate_mmoe_regression(200, 0.3, seed=5, input_dim=10)
    pd.testing.assert_frame_equal(first, again)
    assert not np.allclose(first.to_numpy(), other.to_numpy())


@pytest.mark.parametrize("correlation", [-1.0, -0.5, 0.0, 0.5, 0.9, 1.0])
def test_linear_parts_correlate_as_asked(correlation):
    df = generate_mmoe_regression(NUM_ROWS, correlation, seed=3)
    params = mmoe_task_params(correlation, seed=3)
    x = _inputs(df, 100)
    pearson = np.corrcoef(x @ params.w1, x @ params.w2)[0, 1]
    assert pearson == pytest.approx(correlation, abs=0.05)


@pytest.mark.parametrize("c", [0.5, 1.0, 3.0])
def test_weights_have_norm_c_and_cosine_p(c):
    params = mmoe_task_params(0.7, seed=2, input_dim=20, c=c)
    assert np.linalg.norm(params.w1) == pytest.approx(c)
    assert np.linalg.norm(params.w2) == pytest.approx(c)
    assert params.w1 @ params.w2 == pytest.approx(0.7 * c * c)
    assert params.alpha.shape == params.beta.shape == (10,)


def test_labels_follow_the_formula():
    # With no noise, y_k = w_k^T x + sum_i sin(alpha_i w_k^T x + beta_i) exactly.
    df = generate_mmoe_regression(
        500, 0.4, seed=8, input_dim=12, c=2.0, num_sin=3, noise_std=0.0
    )
    params = mmoe_task_params(0.4, seed=8, input_dim=12, c=2.0, num_sin=3)
    x = _inputs(df, 12)
    for label, w in (("y1", params.w1), ("y2", params.w2)):
        linear = x @ w
        expected = linear + sum(
            np.sin(a * linear + b) for a, b in zip(params.alpha, params.beta)
        )
        np.testing.assert_allclose(df[label], expected, rtol=1e-12, atol=1e-12)


def test_alpha_std_scales_the_frequencies_and_nothing_else():
    base = mmoe_task_params(0.5, seed=4, input_dim=10)
    scaled = mmoe_task_params(0.5, seed=4, input_dim=10, alpha_std=3.0)
    np.testing.assert_allclose(scaled.alpha, 3.0 * base.alpha, rtol=1e-12)
    np.testing.assert_array_equal(scaled.beta, base.beta)
    np.testing.assert_array_equal(scaled.w1, base.w1)
    np.testing.assert_array_equal(scaled.w2, base.w2)
    # The default is the unscaled draw: earlier results stay reproducible.
    pd.testing.assert_frame_equal(
        generate_mmoe_regression(100, 0.5, seed=4, input_dim=10),
        generate_mmoe_regression(100, 0.5, seed=4, input_dim=10, alpha_std=1.0),
    )


def test_higher_alpha_std_makes_the_label_less_smooth():
    # The share of the label's variance that a cubic in w^T x cannot explain
    # (seed 2: about 4% at alpha_std 1, 37% at 4).
    def unexplained_by_cubic(alpha_std: float) -> float:
        df = generate_mmoe_regression(
            NUM_ROWS, 1.0, seed=2, input_dim=10, noise_std=0.0, alpha_std=alpha_std
        )
        params = mmoe_task_params(1.0, seed=2, input_dim=10, alpha_std=alpha_std)
        z = _inputs(df, 10) @ params.w1
        y = df["y1"].to_numpy()
        fit = np.polynomial.polynomial.polyfit(z, y, 3)
        residual = y - np.polynomial.polynomial.polyval(z, fit)
        return float(residual.var() / y.var())

    assert unexplained_by_cubic(4.0) > 5 * unexplained_by_cubic(1.0)


def test_noise_has_the_given_std():
    clean = generate_mmoe_regression(NUM_ROWS, 0.2, seed=6, noise_std=0.0)
    noisy = generate_mmoe_regression(NUM_ROWS, 0.2, seed=6, noise_std=0.5)
    residual = (noisy["y1"] - clean["y1"]).to_numpy()
    assert residual.std() == pytest.approx(0.5, rel=0.05)


def test_only_the_second_task_depends_on_the_correlation():
    low = generate_mmoe_regression(1_000, 0.1, seed=9)
    high = generate_mmoe_regression(1_000, 0.9, seed=9)
    pd.testing.assert_series_equal(low["y1"], high["y1"])
    assert not np.allclose(low["y2"], high["y2"])
    # More related tasks have more correlated labels.
    low_corr = np.corrcoef(low["y1"], low["y2"])[0, 1]
    high_corr = np.corrcoef(high["y1"], high["y2"])[0, 1]
    assert high_corr > low_corr + 0.3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"correlation": 1.5},
            "`correlation` must be in [-1, 1]. Received: `correlation=1.5`",
        ),
        (
            {"correlation": math.nan},
            "`correlation` must be in [-1, 1]. Received: `correlation=nan`",
        ),
        ({"num_rows": 0}, "`num_rows` must be an int >= 1. Received: `num_rows=0`"),
        ({"seed": -2}, "`seed` must be an int >= 0. Received: `seed=-2`"),
        ({"input_dim": 1}, "`input_dim` must be an int >= 2. Received: `input_dim=1`"),
        ({"num_sin": -1}, "`num_sin` must be an int >= 0. Received: `num_sin=-1`"),
        ({"c": 0.0}, "`c` must be > 0. Received: `c=0.0`"),
        ({"noise_std": -0.1}, "`noise_std` must be >= 0. Received: `noise_std=-0.1`"),
        ({"alpha_std": 0.0}, "`alpha_std` must be > 0. Received: `alpha_std=0.0`"),
        (
            {"alpha_std": math.inf},
            "`alpha_std` must be > 0. Received: `alpha_std=inf`",
        ),
        ({"alpha_std": "3"}, "`alpha_std` must be > 0. Received: `alpha_std='3'`"),
    ],
)
def test_bad_arguments(kwargs, message):
    arguments = {"num_rows": 10, "correlation": 0.5, "seed": 1, **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        generate_mmoe_regression(**arguments)


def test_standardize_labels_uses_train_statistics():
    df = generate_mmoe_regression(3_000, 0.5, seed=7, input_dim=5)
    train, test = df.iloc[:2_000], df.iloc[2_000:]
    before = df.copy()
    (train_std, test_std), stats = standardize_labels(train, test)
    for column in ("y1", "y2"):
        mean = train[column].to_numpy().mean()
        std = train[column].to_numpy().std()
        assert stats[column] == pytest.approx((mean, std), rel=1e-12)
        assert train_std[column].mean() == pytest.approx(0.0, abs=1e-12)
        assert train_std[column].std(ddof=0) == pytest.approx(1.0, rel=1e-12)
        # The test rows use the train statistics, not their own.
        np.testing.assert_allclose(
            test_std[column], (test[column] - mean) / std, rtol=1e-12
        )
    # Inputs are copied unchanged; the given frames are not modified.
    pd.testing.assert_frame_equal(train_std[["x0", "x4"]], train[["x0", "x4"]])
    pd.testing.assert_index_equal(test_std.index, test.index)
    pd.testing.assert_frame_equal(df, before)


def test_standardize_labels_keeps_the_mse_ratio():
    # MSE in standardised units = MSE / Var_train(y).
    df = generate_mmoe_regression(1_000, 0.9, seed=2, input_dim=4)
    (train,), stats = standardize_labels(df, columns=["y1"])
    mean, std = stats["y1"]
    prediction = df["x0"].to_numpy()
    mse = np.mean((prediction - df["y1"]) ** 2)
    mse_std = np.mean(((prediction - mean) / std - train["y1"]) ** 2)
    assert mse_std == pytest.approx(mse / std**2, rel=1e-12)
    assert list(train.columns) == list(df.columns)
    assert train["y2"].equals(df["y2"])


def test_standardize_labels_rejects_constant_or_missing_labels():
    df = generate_mmoe_regression(10, 0.5, seed=1, input_dim=2)
    constant = df.assign(y1=3.0)
    with pytest.raises(ValueError, match="Label 'y1' must be finite and not constant"):
        standardize_labels(constant)
    with pytest.raises(ValueError, match=r"missing 'y2' in others\[0\]"):
        standardize_labels(df, df.drop(columns="y2"))


@pytest.mark.parametrize("where", ["train", "others[1]"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_standardize_labels_names_a_label_that_is_not_finite(where, value):
    df = generate_mmoe_regression(10, 0.5, seed=1, input_dim=2)
    bad = df.copy()
    bad.loc[[4, 7], "y2"] = value
    frames = [bad, df, df] if where == "train" else [df, df, bad]
    message = f"Label 'y2' must be finite. Received: {value!r} in {where} at row 4"
    with pytest.raises(ValueError, match=re.escape(message + " (2 such rows)")):
        standardize_labels(*frames)
    pd.testing.assert_frame_equal(frames[0 if where == "train" else 2], bad)
