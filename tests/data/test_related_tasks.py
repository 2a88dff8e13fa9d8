"""Tests of the extra tasks with designed relations to click."""

import re

import numpy as np
import pandas as pd
import pytest

from mtrec.data.related_tasks import RELATED_TASKS
from mtrec.data.related_tasks import add_related_tasks
from mtrec.data.synthetic import CLICK_LOG_COLUMNS
from mtrec.data.synthetic import generate_click_log

TRUE_COLUMNS = [f"true_{task}" for task in RELATED_TASKS]


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    """50k rows of the default world (many users and items, so id latents average
    out in correlations)."""
    return generate_click_log(50_000, seed=4)


@pytest.fixture(scope="module")
def tasks(log) -> pd.DataFrame:
    return add_related_tasks(log, seed=9)


def _rank_corr(df: pd.DataFrame, column: str) -> float:
    return float(df["true_ctr"].rank().corr(df[column].rank()))


class TestColumns:
    def test_appended_after_the_log(self, log, tasks):
        expected = list(CLICK_LOG_COLUMNS)
        for task in RELATED_TASKS:
            expected += [task, f"true_{task}"]
        assert list(tasks.columns) == expected
        pd.testing.assert_frame_equal(tasks[list(CLICK_LOG_COLUMNS)], log)
        for task in RELATED_TASKS:
            assert tasks[task].dtype == "int64"
            assert tasks[f"true_{task}"].dtype == "float64"

    def test_the_input_is_not_modified(self, log):
        before = log.copy()
        add_related_tasks(log, seed=1)
        pd.testing.assert_frame_equal(log, before)
        assert list(log.columns) == list(CLICK_LOG_COLUMNS)

    def test_a_subset_of_tasks_draws_the_same_values(self, log, tasks):
        only = add_related_tasks(log, seed=9, tasks=["opposed"])
        assert list(only.columns[-2:]) == ["opposed", "true_opposed"]
        pd.testing.assert_series_equal(only["true_opposed"], tasks["true_opposed"])
        pd.testing.assert_series_equal(only["opposed"], tasks["opposed"])

    def test_keeps_the_index(self, log):
        part = log.iloc[100:600]
        added = add_related_tasks(part, seed=2)
        pd.testing.assert_index_equal(added.index, part.index)
        assert added[TRUE_COLUMNS].notna().all().all()


class TestDeterminism:
    def test_same_seed_same_frame(self, log, tasks):
        pd.testing.assert_frame_equal(add_related_tasks(log, seed=9), tasks)

    def test_other_seed_other_frame(self, log, tasks):
        other = add_related_tasks(log, seed=10)
        for column in TRUE_COLUMNS:
            assert not np.allclose(other[column], tasks[column])

    def test_an_id_keeps_its_latent(self, log):
        # Without noise, the independent task depends on the ids only.
        df = add_related_tasks(log, seed=3, noise_std=0.0, tasks=["independent"])
        per_pair = df.groupby(["user_id", "item_id"])["true_independent"].nunique()
        assert (per_pair == 1).all()


class TestDesignedRelations:
    def test_rank_correlations_with_true_ctr(self, tasks):
        assert _rank_corr(tasks, "true_related") > 0.7
        assert abs(_rank_corr(tasks, "true_independent")) < 0.05
        assert _rank_corr(tasks, "true_opposed") < -0.7

    def test_related_and_opposed_mirror_each_other(self, tasks):
        related = _rank_corr(tasks, "true_related")
        assert _rank_corr(tasks, "true_opposed") == pytest.approx(-related, abs=0.03)

    def test_labels_follow_their_relation(self, tasks):
        # The label of each task carries the relation of its probability.
        assert tasks["click"].corr(tasks["related"]) > 0.02
        assert abs(tasks["click"].corr(tasks["independent"])) < 0.015
        assert tasks["click"].corr(tasks["opposed"]) < -0.02

    def test_strength_sets_the_relation(self, log):
        correlations = []
        for strength in (0.0, 0.5, 1.0, 2.0):
            df = add_related_tasks(log, seed=9, strength=strength)
            correlations.append(_rank_corr(df, "true_related"))
            assert abs(_rank_corr(df, "true_independent")) < 0.05
        assert abs(correlations[0]) < 0.02  # noise only
        assert all(a < b for a, b in zip(correlations, correlations[1:]))


class TestRates:
    def test_base_rate(self, tasks):
        for task in RELATED_TASKS:
            assert tasks[f"true_{task}"].mean() == pytest.approx(0.1, abs=1e-6)
            # 50k Bernoulli(~0.1) draws: SE of the mean ~0.0013.
            assert tasks[task].mean() == pytest.approx(0.1, abs=0.006)

    def test_other_base_rate(self, log):
        df = add_related_tasks(log, seed=9, base_rate=0.03)
        for task in RELATED_TASKS:
            assert df[f"true_{task}"].mean() == pytest.approx(0.03, abs=1e-6)

    def test_labels_are_bernoulli_of_the_probabilities(self, tasks):
        for task in RELATED_TASKS:
            probability = tasks[f"true_{task}"]
            decile = pd.qcut(probability, 10, labels=False)
            observed = tasks.groupby(decile)[task].mean()
            expected = probability.groupby(decile).mean()
            # 5k rows per decile: SE <= sqrt(0.25 / 5000) ~ 0.007.
            np.testing.assert_allclose(observed, expected, atol=0.03)
            assert set(tasks[task].unique()) == {0, 1}
            assert probability.between(0.0, 1.0, inclusive="neither").all()


class TestArguments:
    @pytest.mark.parametrize(
        "kwargs, message",
        [
            ({"seed": -1}, "`seed` must be an int >= 0. Received: `seed=-1`"),
            ({"seed": None}, "`seed` must be an int >= 0. Received: `seed=None`"),
            (
                {"strength": -1.0},
                "`strength` must be a finite number >= 0. Received: `strength=-1.0`",
            ),
            (
                {"noise_std": float("nan")},
                "`noise_std` must be a finite number >= 0. Received: `noise_std=nan`",
            ),
            (
                {"base_rate": 1.0},
                "`base_rate` must be in (0, 1). Received: `base_rate=1.0`",
            ),
            (
                {"tasks": ["related", "like"]},
                "`tasks` must be distinct names from ('related', 'independent', "
                "'opposed'), at least one. Received: `tasks=('related', 'like')`",
            ),
            ({"tasks": []}, "Received: `tasks=()`"),
        ],
    )
    def test_bad_arguments(self, log, kwargs, message):
        arguments = {"frame": log.head(100), "seed": 1, **kwargs}
        with pytest.raises(ValueError, match=re.escape(message)):
            add_related_tasks(**arguments)

    def test_missing_column(self, log):
        message = "`frame` must have the columns ['user_id', 'item_id', 'true_ctr']. "
        message += "Received: a frame without ['true_ctr']"
        with pytest.raises(ValueError, match=re.escape(message)):
            add_related_tasks(log.head(10).drop(columns="true_ctr"), seed=1)

    def test_existing_columns_are_not_overwritten(self, tasks):
        message = "`frame` already has the columns ['related', 'true_related']"
        with pytest.raises(ValueError, match=re.escape(message)):
            add_related_tasks(tasks.head(10), seed=1, tasks=["related"])

    def test_true_ctr_in_the_open_interval(self, log):
        frame = log.head(10).assign(true_ctr=1.0)
        with pytest.raises(ValueError, match="must be strictly between 0 and 1"):
            add_related_tasks(frame, seed=1)

    def test_empty_frame(self, log):
        with pytest.raises(ValueError, match="at least one row. Received: 0 rows"):
            add_related_tasks(log.head(0), seed=1)
