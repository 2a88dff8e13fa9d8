"""Tests of TAG's task grouping on matrices whose optimum is known."""

import itertools
import json
import re

import numpy as np
import pytest

from mtrec.affinity import MAX_TASKS
from mtrec.affinity import GroupingResult
from mtrec.affinity import choose_groups


def _matrix(names: str, pairs: dict[str, float], default: float = 0.0) -> dict:
    """``{i: {j: Z(i->j)}}`` over one-letter tasks; ``pairs["ab"] = Z(a->b)``."""
    return {i: {j: pairs.get(i + j, default) for j in names if j != i} for i in names}


def _brute_force(z: np.ndarray, serving: list[int], max_groups: int) -> float:
    """The objective maximised over every set of <= max_groups groups."""
    n = len(z)
    groups = [
        g for size in range(1, n + 1) for g in itertools.combinations(range(n), size)
    ]

    def score(j, group):
        mates = [i for i in group if i != j]
        return z[mates, j].mean() if mates else 0.0

    best = -np.inf
    for k in range(1, max_groups + 1):
        for chosen in itertools.combinations(groups, k):
            per_task = [[score(j, g) for g in chosen if j in g] for j in serving]
            if all(per_task):
                best = max(best, sum(max(s) for s in per_task))
    return best


# Two clusters: {a, b} and {c, d} help each other, nothing crosses.
CLUSTERS = _matrix(
    "abcd",
    {"ab": 0.5, "ba": 0.4, "cd": 0.3, "dc": 0.6},
    default=-0.1,
)


class TestKnownOptima:
    def test_two_clear_clusters(self):
        result = choose_groups(CLUSTERS, max_groups=2)
        assert result.groups == (("a", "b"), ("c", "d"))
        assert result.assignment == {
            "a": ("a", "b"),
            "b": ("a", "b"),
            "c": ("c", "d"),
            "d": ("c", "d"),
        }
        assert result.scores == pytest.approx({"a": 0.4, "b": 0.5, "c": 0.6, "d": 0.3})
        assert result.total == pytest.approx(1.8)

    def test_more_groups_than_needed_change_nothing(self):
        # The fewest groups win a tie: no duplicates, no useless extra groups.
        assert choose_groups(CLUSTERS, max_groups=4) == choose_groups(
            CLUSTERS, max_groups=2
        )

    def test_one_group_holds_every_serving_task(self):
        result = choose_groups(CLUSTERS, max_groups=1)
        assert result.groups == (("a", "b", "c", "d"),)
        # a receives 0.4 from b and -0.1 from c and d: mean 0.2 / 3.
        assert result.scores["a"] == pytest.approx(0.2 / 3)
        assert result.total == pytest.approx((0.2 + 0.3 + 0.4 + 0.1) / 3)

    def test_an_opposed_task_sits_alone(self):
        pairs = {"ab": 0.3, "ba": 0.3, "ac": 0.2, "ca": 0.2, "bc": 0.2, "cb": 0.2}
        affinity = _matrix("abcx", pairs, default=-0.4)
        result = choose_groups(affinity, max_groups=2)
        assert result.groups == (("a", "b", "c"), ("x",))
        assert result.scores["x"] == 0.0
        assert result.total == pytest.approx(0.25 + 0.25 + 0.2)

    def test_the_notebook_convention_forbids_singletons(self):
        # With TAG's notebook score for a group of one, x joins the task that
        # hurts it least rather than sitting alone.
        pairs = {"ab": 0.3, "ba": 0.3, "xa": 0.1, "ax": -0.1}
        affinity = _matrix("abx", pairs, default=-0.4)
        result = choose_groups(affinity, max_groups=2, singleton_score=-1e6)
        assert result.groups == (("a", "b"), ("a", "x"))
        assert result.assignment["x"] == ("a", "x")
        assert result.assignment["a"] == ("a", "b")
        assert result.scores["x"] == pytest.approx(-0.1)

    def test_overlapping_groups(self):
        # b helps both a and c, which hurt each other: b serves in two groups.
        pairs = {"ba": 0.5, "bc": 0.5, "ab": 0.1, "ac": -0.5, "ca": -0.5}
        affinity = _matrix("abc", pairs)
        result = choose_groups(affinity, max_groups=2)
        assert result.groups == (("a", "b"), ("b", "c"))
        assert result.scores == pytest.approx({"a": 0.5, "b": 0.1, "c": 0.5})

    def test_serving_tasks_subset_uses_helpers(self):
        # Only a is served; h helps it, x hurts it. h joins as a helper.
        pairs = {"ha": 0.4, "xa": -0.3, "ah": 0.1}
        affinity = _matrix("ahx", pairs)
        result = choose_groups(affinity, serving_tasks=["a"], max_groups=1)
        assert result.groups == (("a", "h"),)
        assert result.assignment == {"a": ("a", "h")}
        assert result.scores == pytest.approx({"a": 0.4})

    def test_unserved_tasks_earn_nothing(self):
        result = choose_groups(CLUSTERS, serving_tasks=["d", "a"], max_groups=2)
        assert set(result.scores) == {"a", "d"}
        assert result.groups == (("a", "b"), ("c", "d"))
        assert result.total == pytest.approx(0.4 + 0.3)

    def test_all_ties_give_one_group(self):
        result = choose_groups(np.zeros((3, 3)), tasks=["a", "b", "c"], max_groups=3)
        assert result.groups == (("a", "b", "c"),)
        assert result.total == 0.0

    def test_array_and_mapping_agree(self):
        names = list(CLUSTERS)
        z = np.array(
            [[np.nan if i == j else CLUSTERS[i][j] for j in names] for i in names]
        )
        assert choose_groups(z, tasks=names, max_groups=2) == choose_groups(
            CLUSTERS, max_groups=2
        )

    def test_the_diagonal_is_not_used(self):
        with_diagonal = {i: {**row, i: 100.0} for i, row in CLUSTERS.items()}
        assert choose_groups(with_diagonal, max_groups=2) == choose_groups(
            CLUSTERS, max_groups=2
        )


class TestAgainstBruteForce:
    @pytest.mark.parametrize("seed", range(6))
    def test_random_matrices(self, seed):
        rng = np.random.default_rng(seed)
        n = 4 + seed % 2
        z = rng.normal(0.0, 0.3, (n, n))
        names = [f"t{i}" for i in range(n)]
        serving = sorted(rng.choice(n, size=n - seed % 3, replace=False))
        for max_groups in (1, 2, 3):
            result = choose_groups(
                z,
                tasks=names,
                serving_tasks=[names[j] for j in serving],
                max_groups=max_groups,
            )
            assert len(result.groups) <= max_groups
            assert result.total == pytest.approx(_brute_force(z, serving, max_groups))

    def test_deterministic(self):
        z = np.random.default_rng(3).normal(0.0, 0.3, (8, 8))
        names = [f"t{i}" for i in range(8)]
        first = choose_groups(z, tasks=names, max_groups=3)
        assert choose_groups(z.copy(), tasks=list(names), max_groups=3) == first

    def test_the_largest_search_is_quick(self):
        z = np.random.default_rng(0).normal(0.0, 0.3, (10, 10))
        result = choose_groups(z, tasks=[f"t{i}" for i in range(10)], max_groups=3)
        assert len(result.groups) == 3


class TestResult:
    def test_to_dict_is_json(self):
        result = choose_groups(CLUSTERS, max_groups=2)
        data = json.loads(json.dumps(result.to_dict()))
        assert data["groups"] == [["a", "b"], ["c", "d"]]
        assert data["assignment"]["c"] == ["c", "d"]
        assert data["total"] == pytest.approx(result.total)

    def test_is_frozen(self):
        result = choose_groups(CLUSTERS, max_groups=2)
        assert isinstance(result, GroupingResult)
        with pytest.raises(AttributeError):
            result.total = 0.0


class TestArguments:
    @pytest.mark.parametrize(
        "kwargs, message",
        [
            (
                {"affinity": np.zeros((2, 3)), "tasks": ["a", "b"]},
                "`affinity` must be a square matrix of numbers or a mapping of "
                "mappings. Received: `affinity=array([[0., 0., 0.],",
            ),
            (
                {"affinity": {"a": {"b": 0.1}, "b": {"c": 0.2}}},
                "`affinity` must be square: `affinity['b']` names tasks that have "
                "no row. Received: unknown tasks ['c']",
            ),
            (
                {"affinity": {"a": {"b": 0.1}, "b": {}}},
                "`affinity` must be square: an entry for every pair of tasks. "
                "Received: no `affinity['b']['a']`",
            ),
            (
                {"affinity": {"a": {"b": float("nan")}, "b": {"a": 0.1}}},
                "`affinity` must hold finite numbers off the diagonal. "
                "Received: `affinity['a']['b']=nan`",
            ),
            (
                {"affinity": [[0.0, 0.1], [np.inf, 0.0]], "tasks": ["a", "b"]},
                "`affinity` must hold finite numbers off the diagonal. "
                "Received: `affinity['b']['a']=",
            ),
            (
                {"affinity": np.zeros((2, 2)), "tasks": ["a"]},
                "`tasks` must be 2 distinct names, one per row of `affinity`. "
                "Received: `tasks=['a']`",
            ),
            (
                {"affinity": np.zeros((2, 2))},
                "`tasks` must be 2 distinct names, one per row of `affinity`. "
                "Received: `tasks=None`",
            ),
            (
                {"affinity": CLUSTERS, "tasks": ["a", "b", "c", "d"]},
                "`tasks` names the rows of an array `affinity`",
            ),
            (
                {"serving_tasks": ["a", "z"]},
                "`serving_tasks` must be distinct tasks of `affinity` ['a', 'b', "
                "'c', 'd'], at least one. Received: `serving_tasks=['a', 'z']`",
            ),
            ({"serving_tasks": []}, "Received: `serving_tasks=[]`"),
            ({"serving_tasks": ["a", "a"]}, "Received: `serving_tasks=['a', 'a']`"),
            ({"max_groups": 0}, "`max_groups` must be >= 1. Received: `max_groups=0`"),
            (
                {"affinity": [[0.0, "x"], [0.1, 0.0]], "tasks": ["a", "b"]},
                "`affinity` must be a square matrix of numbers or a mapping of "
                "mappings. Received: `affinity=[[0.0, 'x'], [0.1, 0.0]]`",
            ),
            (
                {"max_groups": True},
                "`max_groups` must be an integer. Received: `max_groups=True`",
            ),
            (
                {"singleton_score": float("-inf")},
                "`singleton_score` must be finite. Received: `singleton_score=-inf`",
            ),
            (
                {
                    "affinity": np.zeros((MAX_TASKS + 1, MAX_TASKS + 1)),
                    "tasks": [f"t{i}" for i in range(MAX_TASKS + 1)],
                },
                f"`affinity` must have 1 to {MAX_TASKS} tasks (the search is exact "
                f"and exponential). Received: {MAX_TASKS + 1} tasks",
            ),
        ],
    )
    def test_bad_arguments(self, kwargs, message):
        arguments = {"affinity": CLUSTERS, "max_groups": 2, **kwargs}
        with pytest.raises(ValueError, match=re.escape(message)):
            choose_groups(**arguments)

    def test_max_groups_is_required(self):
        with pytest.raises(TypeError, match="max_groups"):
            choose_groups(CLUSTERS)
