"""Which tasks should share a model: TAG's grouping of tasks by their affinities.

Given the inter-task affinities ``Z(i->j) = 1 - L_j(after a lookahead step on
task i) / L_j(before)`` (how much a step on task ``i`` helps task ``j``), a set
of serving tasks ``S`` and at most ``K`` groups, :func:`choose_groups` picks the
groups ``G_1..G_k`` (``k <= K``; sets of tasks that may overlap) that maximise
the paper's objective::

    score(j, G) = 1 / (|G| - 1) * sum_{i in G, i != j} Z(i->j)    if |G| > 1
    score(j, G) = singleton_score  (0 by default)                  if G == {j}
    total       = sum_{j in S} max_{G_m containing j} score(j, G_m)

subject to every serving task being in at least one group. Tasks outside ``S``
may join a group as helpers: they add affinity onto their group mates but earn
no score themselves.

The search is exact. A chosen set of groups gives each serving task its best
group, so the serving tasks fall into at most ``K`` classes (the tasks whose best
group is the same); conversely, a partition of ``S`` into classes ``C`` with the
best group ``G ⊇ C`` of each class is a feasible choice. Hence ::

    optimum = max over partitions of S into <= K classes of sum_C w(C),
    w(C)    = max_{G ⊇ C} sum_{j in C} score(j, G),

where ``w`` is tabulated for every subset of ``S`` (one matrix product) and the
partitions are enumerated once each (a task joins an open class or opens a new
one) by branch and bound with the bound ``w(C ∪ {j}) <= w(C) + w({j})``.
Exponential in the number of tasks: up to ``MAX_TASKS`` tasks (the paper's
higher-order approximations for more tasks are out of scope).
"""

import dataclasses
import logging
import math
from collections.abc import Mapping
from collections.abc import Sequence

import numpy as np

logger = logging.getLogger(__name__)

MAX_TASKS = 12
"""The most tasks :func:`choose_groups` searches exactly (``2^12`` groups)."""

# Totals closer than this are ties (then the fewer groups win).
_TIE_TOLERANCE = 1e-12
# Subsets of the serving tasks scored per matrix product (bounds the memory).
_CLASS_CHUNK = 512


@dataclasses.dataclass(frozen=True)
class GroupingResult:
    """The groups chosen by :func:`choose_groups`.

    Attributes:
      groups: the chosen groups, each a tuple of task names in the input order,
        sorted by their members' positions in that order.
      assignment: each serving task's best group (one of ``groups``).
      scores: each serving task's score in its best group, the mean affinity it
        receives from its group mates (``singleton_score`` when alone).
      total: the objective, the sum of ``scores``.
    """

    groups: tuple[tuple[str, ...], ...]
    assignment: dict[str, tuple[str, ...]]
    scores: dict[str, float]
    total: float

    def to_dict(self) -> dict:
        """A JSON-ready copy: groups and assignments as lists."""
        return {
            "groups": [list(group) for group in self.groups],
            "assignment": {task: list(g) for task, g in self.assignment.items()},
            "scores": dict(self.scores),
            "total": self.total,
        }


def choose_groups(
    affinity: Mapping[str, Mapping[str, float]] | np.ndarray | Sequence,
    serving_tasks: Sequence[str] | None = None,
    *,
    max_groups: int,
    tasks: Sequence[str] | None = None,
    singleton_score: float = 0.0,
) -> GroupingResult:
    """Chooses at most ``max_groups`` task groups maximising TAG's objective.

    The objective and the search are in the module docstring: each serving task
    ``j`` scores the mean affinity ``Z(i->j)`` it receives from the other
    members of its best group, and the total of these scores is maximised
    exactly. The diagonal ``Z(j->j)`` is not used. Ties go to the fewest groups,
    then to the first choice of a fixed search order (smaller groups and tasks
    earlier in the input first), so equal inputs give equal results.

    Args:
      affinity: ``{i: {j: Z(i->j)}}`` (the outer key is the task stepped on,
        the inner the task helped; the diagonal may be absent), or a square
        array with ``affinity[i, j] = Z(i->j)`` and the names in ``tasks``.
      serving_tasks: the tasks that must be served (each in at least one
        group) and whose scores count. Default: every task.
      max_groups: the most groups to choose, >= 1.
      tasks: the task names of an array ``affinity``, in its order; not used
        with a mapping (its keys name the tasks).
      singleton_score: the score of a task alone in a group. Default 0: a task
        trained alone receives no transfer, so a task that every other task
        hurts is best kept alone. TAG's selection notebook uses ``-1e6``
        (a group of one only when nothing else covers the task).

    Returns:
      A :class:`GroupingResult`.

    Raises:
      ValueError: ``affinity`` is not square, has a missing or non-finite
        off-diagonal entry, or has more than ``MAX_TASKS`` tasks; ``tasks``
        does not name its rows; a serving task is unknown or repeated;
        ``max_groups`` < 1.

    Example:

    >>> affinity = {
    ...     "click": {"like": 0.3, "share": 0.2, "skip": -0.2},
    ...     "like": {"click": 0.4, "share": 0.1, "skip": -0.1},
    ...     "share": {"click": 0.2, "like": 0.2, "skip": -0.3},
    ...     "skip": {"click": -0.2, "like": -0.1, "share": -0.2},
    ... }
    >>> result = choose_groups(affinity, max_groups=2)
    >>> result.groups
    (('click', 'like', 'share'), ('skip',))
    >>> round(result.scores["click"], 3), round(result.total, 3)
    (0.3, 0.7)

    References:
      Fifty, Amid, Zhao, Yu, Anil, Finn. "Efficiently Identifying Task Groupings
      for Multi-Task Learning". NeurIPS 2021 (arXiv:2109.04617), the network
      selection step; its code, google-research
      ``tag/network_selection/TAG_network_selection.ipynb`` (the per-group score
      divides by ``|G| - 1``, a task counts its best chosen group, a group of
      one scores ``-1e6``).
    """
    names, z = _affinity_matrix(affinity, tasks)
    serving = _serving_indices(names, serving_tasks)
    if isinstance(max_groups, bool) or not isinstance(max_groups, int | np.integer):
        raise ValueError(
            f"`max_groups` must be an integer. Received: `max_groups={max_groups!r}`"
        )
    if max_groups < 1:
        raise ValueError(
            f"`max_groups` must be >= 1. Received: `max_groups={max_groups}`"
        )
    if not math.isfinite(singleton_score):
        raise ValueError(
            "`singleton_score` must be finite. "
            f"Received: `singleton_score={singleton_score!r}`"
        )
    members, scores = _group_scores(z, serving, singleton_score)
    weights, best_group = _class_table(members, scores, serving)
    classes = _best_partition(weights, len(serving), int(max_groups))
    chosen = sorted({tuple(np.flatnonzero(members[best_group[c]])) for c in classes})
    return _result(names, z, serving, chosen, singleton_score)


def _affinity_matrix(affinity, tasks) -> tuple[list[str], np.ndarray]:
    """Validates ``affinity`` into task names and a matrix ``z[i, j] = Z(i->j)``
    with a zero diagonal."""
    if isinstance(affinity, Mapping):
        if tasks is not None:
            raise ValueError(
                "`tasks` names the rows of an array `affinity`; a mapping names "
                f"its tasks by its keys. Received: `tasks={tasks!r}`"
            )
        names, z = _mapping_matrix(affinity)
    else:
        names, z = _array_matrix(affinity, tasks)
    if not 1 <= len(names) <= MAX_TASKS:
        raise ValueError(
            f"`affinity` must have 1 to {MAX_TASKS} tasks (the search is exact "
            f"and exponential). Received: {len(names)} tasks"
        )
    np.fill_diagonal(z, 0.0)
    return names, z


def _mapping_matrix(affinity: Mapping) -> tuple[list[str], np.ndarray]:
    names = list(affinity)
    z = np.zeros((len(names), len(names)))
    for i, source in enumerate(names):
        row = affinity[source]
        if not isinstance(row, Mapping):
            raise ValueError(
                f"`affinity[{source!r}]` must be a mapping of task to "
                f"affinity. Received: `affinity[{source!r}]={row!r}`"
            )
        unknown = sorted(map(str, set(row) - set(names)))
        if unknown:
            raise ValueError(
                f"`affinity` must be square: `affinity[{source!r}]` names "
                f"tasks that have no row. Received: unknown tasks {unknown}"
            )
        for j, target in enumerate(names):
            if j == i:
                continue
            if target not in row:
                raise ValueError(
                    "`affinity` must be square: an entry for every pair of "
                    f"tasks. Received: no `affinity[{source!r}][{target!r}]`"
                )
            z[i, j] = _number(row[target], f"affinity[{source!r}][{target!r}]")
    return names, z


def _array_matrix(affinity, tasks) -> tuple[list[str], np.ndarray]:
    try:
        z = np.array(affinity, dtype=np.float64)
    except (TypeError, ValueError):
        z = np.empty(0)
    if z.ndim != 2 or z.shape[0] != z.shape[1]:
        raise ValueError(
            "`affinity` must be a square matrix of numbers or a mapping of "
            f"mappings. Received: `affinity={affinity!r}`"
        )
    if tasks is None or len(tasks) != len(z) or len(set(tasks)) != len(tasks):
        raise ValueError(
            f"`tasks` must be {len(z)} distinct names, one per row of "
            f"`affinity`. Received: `tasks={tasks!r}`"
        )
    names = list(tasks)
    bad = ~np.isfinite(z) & ~np.eye(len(z), dtype=bool)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        _number(z[i, j], f"affinity[{names[i]!r}][{names[j]!r}]")
    return names, z


def _number(value, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise ValueError(
            f"`affinity` must hold finite numbers off the diagonal. "
            f"Received: `{where}={value!r}`"
        )
    return number


def _serving_indices(names: list[str], serving_tasks) -> list[int]:
    if serving_tasks is None:
        return list(range(len(names)))
    if isinstance(serving_tasks, str):
        serving_tasks = [serving_tasks]
    serving_tasks = list(serving_tasks)
    unknown = [task for task in serving_tasks if task not in names]
    if unknown or not serving_tasks or len(set(serving_tasks)) < len(serving_tasks):
        raise ValueError(
            f"`serving_tasks` must be distinct tasks of `affinity` {names}, at "
            f"least one. Received: `serving_tasks={serving_tasks!r}`"
        )
    return sorted(names.index(task) for task in serving_tasks)


def _group_scores(z: np.ndarray, serving: list[int], singleton_score: float):
    """Every group holding a serving task: members and scores of its serving tasks.

    Returns ``members`` (groups x tasks, bool), ordered by size and then by
    members (lexicographic in the input order), and ``scores`` (groups x
    serving tasks; 0 where the task is not a member).
    """
    n = len(z)
    subsets = sorted(
        (mask for mask in range(1, 2**n) if any(mask >> j & 1 for j in serving)),
        key=lambda mask: (mask.bit_count(), [j for j in range(n) if mask >> j & 1]),
    )
    members = np.array([[mask >> j & 1 for j in range(n)] for mask in subsets], bool)
    sizes = members.sum(axis=1, keepdims=True)
    received = members.astype(np.float64) @ z
    scores = np.where(sizes > 1, received / np.maximum(sizes - 1, 1), singleton_score)
    scores = np.where(members, scores, 0.0)
    return members, scores[:, serving]


def _class_table(members: np.ndarray, scores: np.ndarray, serving: list[int]):
    """``w(C)`` and its first best group for every subset ``C`` of the serving tasks.

    Subsets are bitmasks over the positions in ``serving`` (index 0 unused).
    """
    m = len(serving)
    group_masks = members[:, serving].astype(np.int64) @ (1 << np.arange(m))
    weights = np.full(2**m, -np.inf)
    best_group = np.zeros(2**m, dtype=np.int64)
    for start in range(1, 2**m, _CLASS_CHUNK):
        classes = np.arange(start, min(start + _CLASS_CHUNK, 2**m))
        indicator = (classes[:, None] >> np.arange(m)[None, :]) & 1
        sums = indicator @ scores.T
        contains = (classes[:, None] & group_masks[None, :]) == classes[:, None]
        sums = np.where(contains, sums, -np.inf)
        best_group[classes] = np.argmax(sums, axis=1)
        weights[classes] = sums[np.arange(len(classes)), best_group[classes]]
    return weights, best_group


def _best_partition(weights: np.ndarray, m: int, max_groups: int) -> list[int]:
    """The partition of ``m`` serving tasks into <= ``max_groups`` classes
    maximising ``sum_C weights[C]``, as class bitmasks (branch and bound)."""
    single = [float(weights[1 << j]) for j in range(m)]
    # optimistic[t]: the most tasks t.. can add (each its best group).
    optimistic = np.concatenate([np.cumsum(single[::-1])[::-1], [0.0]])
    best = {"total": -math.inf, "classes": [], "nodes": 0}

    def search(t: int, classes: list[int], value: float) -> None:
        best["nodes"] += 1
        bound = value + optimistic[t]
        if bound < best["total"] - _TIE_TOLERANCE or (
            bound <= best["total"] + _TIE_TOLERANCE
            and len(classes) >= len(best["classes"])
        ):
            return
        if t == m:
            best["total"], best["classes"] = value, list(classes)
            return
        gains = [weights[c | 1 << t] - weights[c] for c in classes]
        for k in sorted(range(len(classes)), key=lambda k: -gains[k]):
            joined = classes[:k] + [classes[k] | 1 << t] + classes[k + 1 :]
            search(t + 1, joined, value + gains[k])
        if len(classes) < max_groups:
            search(t + 1, classes + [1 << t], value + single[t])

    search(0, [], 0.0)
    logger.debug("Grouping search: %d nodes, total %.6f", best["nodes"], best["total"])
    return best["classes"]


def _result(names, z, serving, chosen, singleton_score) -> GroupingResult:
    """Each serving task's best chosen group (the first on ties) and score."""
    assignment, scores = {}, {}
    for j in serving:
        options = []
        for group in chosen:
            if j in group:
                mates = [i for i in group if i != j]
                score = z[mates, j].mean() if mates else singleton_score
                options.append((float(score), group))
        score, group = max(options, key=lambda option: option[0])
        assignment[names[j]] = tuple(names[i] for i in group)
        scores[names[j]] = score
    return GroupingResult(
        groups=tuple(tuple(names[i] for i in group) for group in chosen),
        assignment=assignment,
        scores=scores,
        total=float(sum(scores.values())),
    )
