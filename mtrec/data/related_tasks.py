"""Extra tasks with designed relations to click, for truth tests of affinity.

:func:`add_related_tasks` adds to a click log (from
:func:`~mtrec.data.generate_click_log`) binary tasks whose relation to the click
is known by construction, each with its true probability::

    l = logit(true_ctr)                            # the click's interest
    logit p_related     = b_r + strength * l + e_r
    logit p_independent = b_i + strength * std(l) * (v_u + w_i) / sqrt(2) + e_i
    logit p_opposed     = b_o - strength * l + e_o
    label_t ~ Bernoulli(p_t)

``related`` is driven by the same interest as the click, ``opposed`` by its
opposite (what makes a click likelier makes it less likely), and
``independent`` by a latent of its own, ``v_u ~ N(0, 1)`` per user id and
``w_i ~ N(0, 1)`` per item id (learnable from the ids, unrelated to the click),
scaled to the spread of the click's interest so that the three tasks are about
equally learnable. ``e_t ~ N(0, noise_std^2)`` is independent noise per row and
task, and the intercepts ``b_t`` are solved so that the mean of ``p_t`` over the
frame is ``base_rate``. The tasks are defined on every impression (like the
click, unlike the conversion). A multi-task model should find the click and
``related`` helping each other, ``independent`` neutral and ``opposed``
conflicting.
"""

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from mtrec.checks import check_int
from mtrec.data.logistic import sigmoid
from mtrec.data.logistic import solve_intercept

logger = logging.getLogger(__name__)

RELATED_TASKS: tuple[str, ...] = ("related", "independent", "opposed")
"""The tasks :func:`add_related_tasks` can add; ``true_<task>`` is each one's
probability."""

_NEEDED_COLUMNS = ("user_id", "item_id", "true_ctr")


def add_related_tasks(
    frame: pd.DataFrame,
    seed: int,
    *,
    strength: float = 1.0,
    noise_std: float = 0.5,
    base_rate: float = 0.1,
    tasks: Sequence[str] = RELATED_TASKS,
) -> pd.DataFrame:
    """Returns a copy of a click log with tasks of designed relation to click.

    The equations are in the module docstring. For each task ``t`` in
    ``tasks`` the copy gains the int64 label column ``t`` and the float64
    column ``true_t`` (its probability), in that order, after the log's
    columns, which are left as they were. The same frame and arguments always
    give the same result.

    Args:
      frame: a click log with ``user_id``, ``item_id`` and ``true_ctr``
        (strictly between 0 and 1), and none of the columns to add.
      seed: seed of the latents, the noise and the labels (an integer >= 0).
      strength: ``strength >= 0``, the weight of each task's driver (the
        click's interest, its opposite, or the independent latent). Default 1;
        0 leaves only noise.
      noise_std: ``noise_std >= 0``, the std of the per-row logit noise.
        Default 0.5.
      base_rate: the mean of every ``true_<task>`` over the frame, in (0, 1).
        Default 0.1.
      tasks: which of ``RELATED_TASKS`` to add. Default all three.

    Returns:
      A new DataFrame: ``frame``'s columns, then ``t`` and ``true_t`` per task.

    Raises:
      ValueError: if a column is missing or already present, or an argument is
        out of range.

    Example:

    >>> from mtrec.data import generate_click_log
    >>> log = generate_click_log(5_000, seed=3, num_users=200, num_items=800)
    >>> df = add_related_tasks(log, seed=3)
    >>> list(df.columns[-6:])
    ['related', 'true_related', 'independent', 'true_independent', 'opposed', \
'true_opposed']
    >>> round(float(df["true_related"].mean()), 6)
    0.1
    >>> columns = ["true_ctr", "true_related", "true_independent", "true_opposed"]
    >>> rank_corr = df[columns].corr(method="spearman")["true_ctr"]
    >>> rank_corr.round(1).tolist()
    [1.0, 0.9, 0.0, -0.9]

    References:
      The affinity these tasks test: Fifty et al. "Efficiently Identifying Task
      Groupings for Multi-Task Learning". NeurIPS 2021.
    """
    tasks = _check_arguments(frame, seed, strength, noise_std, base_rate, tasks)
    user_seq, item_seq, row_seq = np.random.SeedSequence(seed).spawn(3)
    interest = _logit(frame["true_ctr"].to_numpy(dtype=np.float64))
    latent = _id_latent(frame["user_id"], np.random.default_rng(user_seq))
    latent += _id_latent(frame["item_id"], np.random.default_rng(item_seq))
    drivers = {
        "related": strength * interest,
        "independent": strength * interest.std() * latent / np.sqrt(2.0),
        "opposed": -strength * interest,
    }
    rng = np.random.default_rng(row_seq)
    columns = {}
    for task in RELATED_TASKS:  # a fixed order of draws, whatever `tasks` holds
        score = drivers[task] + rng.normal(0.0, noise_std, len(frame))
        uniform = rng.random(len(frame))
        if task in tasks:
            probability = sigmoid(solve_intercept(score, base_rate) + score)
            columns[task] = (uniform < probability).astype(np.int64)
            columns[f"true_{task}"] = probability
    ordered = {f"{p}{t}": columns[f"{p}{t}"] for t in tasks for p in ("", "true_")}
    result = pd.concat(
        [frame, pd.DataFrame(ordered, index=frame.index)], axis=1, copy=True
    )
    logger.info(
        "Added related tasks %s (seed=%d, strength=%g): label rates %s",
        list(tasks),
        seed,
        strength,
        {t: round(float(columns[t].mean()), 4) for t in tasks},
    )
    return result


def _check_arguments(frame, seed, strength, noise_std, base_rate, tasks):
    """Validates the arguments of :func:`add_related_tasks`; returns ``tasks``."""
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"`frame` must be a DataFrame. Received: `frame={frame!r}`")
    missing = [c for c in _NEEDED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"`frame` must have the columns {list(_NEEDED_COLUMNS)}. Received: a "
            f"frame without {missing}"
        )
    if len(frame) == 0:
        raise ValueError("`frame` must have at least one row. Received: 0 rows")
    check_int("seed", seed, 0)
    for name, value in (("strength", strength), ("noise_std", noise_std)):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not (0.0 <= value < np.inf)
        ):
            raise ValueError(
                f"`{name}` must be a finite number >= 0. Received: `{name}={value!r}`"
            )
    if (
        isinstance(base_rate, bool)
        or not isinstance(base_rate, int | float)
        or not (0.0 < base_rate < 1.0)
    ):
        raise ValueError(
            f"`base_rate` must be in (0, 1). Received: `base_rate={base_rate!r}`"
        )
    tasks = (tasks,) if isinstance(tasks, str) else tuple(tasks)
    if not tasks or len(set(tasks)) < len(tasks) or set(tasks) - set(RELATED_TASKS):
        raise ValueError(
            f"`tasks` must be distinct names from {RELATED_TASKS}, at least one. "
            f"Received: `tasks={tasks!r}`"
        )
    present = [c for t in tasks for c in (t, f"true_{t}") if c in frame.columns]
    if present:
        raise ValueError(
            f"`frame` already has the columns {present}; the tasks would overwrite "
            f"them. Received: columns {list(frame.columns)}"
        )
    true_ctr = frame["true_ctr"].to_numpy(dtype=np.float64)
    if not ((true_ctr > 0.0) & (true_ctr < 1.0)).all():
        raise ValueError(
            "`frame['true_ctr']` must be strictly between 0 and 1. Received: "
            f"values in [{true_ctr.min()!r}, {true_ctr.max()!r}]"
        )
    return tasks


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def _id_latent(ids: pd.Series, rng: np.random.Generator) -> np.ndarray:
    """``N(0, 1)`` per distinct id, the same for an id wherever it appears.

    One draw per id ``0..max(ids)`` for non-negative integer ids (so an id keeps
    its latent across frames of the same world); per distinct value otherwise.
    """
    values = ids.to_numpy()
    if values.dtype.kind in "iu" and len(values) and values.min() >= 0:
        return rng.standard_normal(int(values.max()) + 1)[values]
    codes, uniques = pd.factorize(ids, sort=True)
    return rng.standard_normal(len(uniques))[codes]
