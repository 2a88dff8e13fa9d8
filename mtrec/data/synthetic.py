"""A synthetic click log whose true click and conversion probabilities are known.

Every impression is drawn from a hidden model, and the log carries the model's
probabilities next to the sampled labels (``true_ctr``, ``true_cvr``,
``true_ctcvr``), so a trained ranker can be compared with the oracle: the AUC of
``true_ctr`` against ``click`` is the best AUC any model can reach on the log.

The world (users, items, categories, interaction tables) depends only on the seed
and on ``num_users``, ``num_items`` and ``num_categories``; ``num_rows`` only
decides how many impressions are drawn from it. So 10k and 1M rows generated with
the same seed come from the same hidden model.

Hidden model (``sigma(z) = 1 / (1 + exp(-z))``; ``u`` user, ``i`` item,
``c = cat(i)`` its category; the symbols are fields of :class:`ClickModel`)::

    logit_ctr = b_ctr
              - pos_bias * ln(position)                          # position bias
              + D[device] + A[device] * cos(2 pi (hour - H[device]) / 24)
              + K_ctr[c]                                         # category appeal
              + recent_bonus * 1[c in recent_categories]         # seen interest
              + preferred_bonus * 1[c in preferred(u)]           # hidden interest
              + theme_bonus * 1[theme(c) == theme(u)]            # (off by default)
              + T_ctr[age(u), c] + G_ctr[gender(u), c]           # user x category
              + q_i                                              # item quality
              + activity_ctr * z_act(u) + e_u                    # user propensity
              - price_ctr * (ln price_i - mu[c]) / price_sigma   # cheap for its kind
              + selection_bias * a_i                 # shared appeal (off by default)
    logit_cvr = b_cvr
              - price_cvr * ln(price_i / price_median) / price_scale
              + K_cvr[c] + T_cvr[age(u), c]
              + quality_cvr * q_i + f_i
              + recent_bonus_cvr * 1[c in recent_categories]
              + activity_cvr * z_act(u) + device_cvr[device] + e'_u
              + selection_bias * a_i                 # shared appeal (off by default)
    true_ctr = sigma(logit_ctr),  true_cvr = sigma(logit_cvr)
    true_ctcvr = true_ctr * true_cvr
    click ~ Bernoulli(true_ctr)
    conversion ~ Bernoulli(true_cvr) if click == 1 else 0

where ``z_act(u)`` is the standardised ``ln(1 + user_activity)``;
``K_ctr[c] ~ N(0, category_std^2)`` and ``K_cvr[c] ~ N(0, category_cvr_std^2)``;
the user x category tables are rank one plus a little noise,
``T_ctr[a, c] = s_a v_c + N(0, table_noise_std^2)``,
``G_ctr[g, c] = r_g w_c + N(0, table_noise_std^2)`` and
``T_cvr[a, c] = cvr_table_share T_ctr[a, c] + s_a v'_c + N(0, table_noise_std^2)``
with ordinal scores ``s_a`` (-1.5 for 18-24 to 1.5 for 65+, 0 for unknown) and
``r_g`` (+1 f, -1 m, 0 u) and per-category slopes ``v_c ~ N(0,
age_category_std^2)``, ``w_c ~ N(0, gender_category_std^2)``,
``v'_c ~ N(0, cvr_table_std^2)``; the hidden item quality is
``q_i ~ N(0, quality_std^2)``; the idiosyncratic effects are
``e_u ~ N(0, user_std^2)``, ``e'_u ~ N(0, user_cvr_std^2)`` and
``f_i ~ N(0, item_cvr_std^2)``. ``preferred(u)`` holds 1-3 categories of one
theme (``num_themes`` blocks of consecutive category numbers); each of a row's
0-5 ``recent_categories`` tokens is one of them with probability
``recent_from_preferred``, otherwise uniform (tokens may repeat). The
observable ``item_hist_ctr`` of item ``i`` is ``Beta(kappa_i m_i, kappa_i (1 -
m_i))`` with ``m_i = sigma(logit(ctr_target) + q_i)``; ``kappa_i`` (a pseudo
impression count) grows with the item's popularity, so tail items have noisier
estimates. The intercepts ``b_ctr`` and ``b_cvr`` are solved, on
``calibration_rows`` impressions drawn from the same world, so that
``E[true_ctr] = ctr_target`` and ``E[true_cvr | click] = cvr_target``.

Most of the signal lives in observable, low- or moderate-cardinality structure
that an embedding + MLP model learns from ~1M rows (position, device, hour,
category, price, ``item_hist_ctr``, ``user_activity``); the interactions
(device x hour, category x recent categories, age/gender x category, price x
category) are real but moderate, and the hidden per-id effects (``e_u``, ``e'_u``,
``f_i``, the preferred-category bonus and the noise of ``item_hist_ctr``) are
small, so such a model can get within about 0.01 of the oracle CTR AUC.

Selection bias. A CVR model trained on clicked rows only (the naive baseline of
ESMM, Ma et al., SIGIR 2018) scores all impressions at serving time. By default
the clicked rows differ little from all impressions in what drives conversion;
``generate_click_log(..., selection_bias=s)`` adds a hidden item appeal
``a_i ~ N(0, 1)`` with weight ``s`` to both logits, so the items that get
clicked are the items that convert, and the clicked rows over-represent them:
the higher ``s``, the more the clicked sample's conversion propensity and item
mix differ from the impression space. ``a_i`` is visible to a model only
through the item id (``item_hist_ctr`` is built from ``q_i`` alone), so a CVR
model learns it for an item from that item's clicks, while a model trained on
all impressions also sees it in the item's click-through rate.
``a_i`` is drawn from its own random stream and the term is skipped at
``s = 0``, so the default log is bit for bit what it was without the option.
:func:`selection_bias_report` measures how far the clicked rows are from all
impressions.
"""

import logging
import time

import numpy as np
import pandas as pd

from mtrec.checks import check_int
from mtrec.data.click_model import AGE_BUCKETS
from mtrec.data.click_model import DEFAULT_CLICK_MODEL
from mtrec.data.click_model import DEVICES
from mtrec.data.click_model import GENDERS
from mtrec.data.click_model import RECENT_SEPARATOR
from mtrec.data.click_model import ClickModel
from mtrec.data.click_world import ClickWorld
from mtrec.data.logistic import sigmoid
from mtrec.data.logistic import solve_intercept

logger = logging.getLogger(__name__)

CLICK_LOG_COLUMNS: tuple[str, ...] = (
    "user_id",
    "item_id",
    "item_category",
    "user_age",
    "user_gender",
    "device",
    "hour",
    "position",
    "recent_categories",
    "item_price",
    "user_activity",
    "item_hist_ctr",
    "click",
    "conversion",
    "true_ctr",
    "true_cvr",
    "true_ctcvr",
)
"""The columns of :func:`generate_click_log`, in order."""


def _check_selection_bias(value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float | np.integer | np.floating)
        or not 0.0 <= value < np.inf
    ):
        raise ValueError(
            "`selection_bias` must be a finite number >= 0. "
            f"Received: `selection_bias={value!r}`"
        )


def generate_click_log(
    num_rows: int,
    seed: int,
    *,
    num_users: int = 100_000,
    num_items: int = 200_000,
    num_categories: int = 50,
    model: ClickModel | None = None,
    selection_bias: float = 0.0,
) -> pd.DataFrame:
    """Draws a click log with known click and conversion probabilities.

    Users and items follow Zipf-like popularity (``P(rank k) ~ 1 / (k + k0)^a``
    over a random permutation of the ids, so an id is not its popularity rank);
    labels follow the hidden model of the module docstring. The same arguments
    always give the same frame.

    Args:
      num_rows: number of impressions (rows), >= 1.
      seed: seed of every random draw (a non-negative integer).
      num_users: number of user ids ``0..num_users-1``. Default 100,000.
      num_items: number of item ids ``0..num_items-1``. Default 200,000.
      num_categories: number of item categories ``"c0".."c{n-1}"``. Default 50.
      model: the hidden model's coefficients. Default ``DEFAULT_CLICK_MODEL``.
      selection_bias: ``s >= 0``, the weight of the hidden item appeal ``a_i``
        shared by the click and conversion logits (module docstring): the
        strength of the clicked rows' selection bias for CVR. Default 0, the
        log without the term (identical to the log before the option existed).

    Returns:
      A DataFrame with the columns ``CLICK_LOG_COLUMNS``, in that order: int64
      ids, ``hour``, ``position`` and labels; ``str`` categorical columns;
      float64 dense features and true probabilities.

    Raises:
      ValueError: if an argument is out of range.

    Example:

    >>> df = generate_click_log(1_000, seed=7, num_users=100, num_items=500)
    >>> df.shape
    (1000, 17)
    >>> bool((df["conversion"] <= df["click"]).all())
    True
    """
    _check_sizes(num_rows, seed, num_users, num_items, num_categories)
    model = _resolve_model(model)
    _check_selection_bias(selection_bias)

    start = time.perf_counter()
    # The fourth stream (appeal) leaves the first three as they always were.
    streams = np.random.SeedSequence(seed).spawn(4)
    world_seq, calibration_seq, rows_seq, appeal_seq = streams
    world = ClickWorld(
        np.random.default_rng(world_seq), num_users, num_items, num_categories, model
    )
    world.add_appeal(np.random.default_rng(appeal_seq), float(selection_bias))
    b_ctr, b_cvr = _solve_intercepts(world, np.random.default_rng(calibration_seq))

    rng = np.random.default_rng(rows_seq)
    rows = world.impressions(rng, num_rows)
    labels = _sample_labels(rng, rows, b_ctr, b_cvr)
    df = _click_log_frame(world, rows, labels)
    logger.info(
        "Generated %d rows (seed=%d, selection_bias=%g) in %.1fs: CTR %.4f, "
        "CVR|click %.4f, b_ctr=%.3f, b_cvr=%.3f",
        num_rows,
        seed,
        selection_bias,
        time.perf_counter() - start,
        float(labels["click"].mean()),
        float(labels["conversion"].sum() / max(int(labels["click"].sum()), 1)),
        b_ctr,
        b_cvr,
    )
    return df


def _check_sizes(
    num_rows: int, seed: int, num_users: int, num_items: int, num_categories: int
) -> None:
    """Checks the row count, the seed and the world's sizes, in that order."""
    check_int("num_rows", num_rows, 1)
    check_int("seed", seed, 0)
    check_int("num_users", num_users, 1)
    check_int("num_items", num_items, 1)
    check_int("num_categories", num_categories, 1)


def _resolve_model(model: ClickModel | None) -> ClickModel:
    """Returns ``model``, or ``DEFAULT_CLICK_MODEL`` for None."""
    if model is None:
        return DEFAULT_CLICK_MODEL
    if not isinstance(model, ClickModel):
        raise ValueError(
            f"`model` must be a ClickModel or None. Received: `model={model!r}`"
        )
    return model


def _solve_intercepts(
    world: ClickWorld, rng: np.random.Generator
) -> tuple[float, float]:
    """Solves ``b_ctr`` and ``b_cvr`` on ``calibration_rows`` drawn impressions.

    ``E[true_ctr] = ctr_target`` over the impressions and
    ``E[true_cvr | click] = cvr_target`` (the CVR mean weighted by ``true_ctr``).
    """
    model = world.model
    calibration = world.impressions(rng, model.calibration_rows)
    b_ctr = solve_intercept(calibration["ctr_score"], model.ctr_target)
    click_weights = sigmoid(b_ctr + calibration["ctr_score"])
    b_cvr = solve_intercept(calibration["cvr_score"], model.cvr_target, click_weights)
    return b_ctr, b_cvr


def _sample_labels(
    rng: np.random.Generator,
    rows: dict[str, np.ndarray],
    b_ctr: float,
    b_cvr: float,
) -> dict[str, np.ndarray]:
    """The true probabilities of ``rows`` and their sampled click and conversion."""
    num_rows = len(rows["ctr_score"])
    true_ctr = sigmoid(b_ctr + rows["ctr_score"])
    true_cvr = sigmoid(b_cvr + rows["cvr_score"])
    click = rng.random(num_rows) < true_ctr
    conversion = click & (rng.random(num_rows) < true_cvr)
    return {
        "click": click,
        "conversion": conversion,
        "true_ctr": true_ctr,
        "true_cvr": true_cvr,
    }


def _click_log_frame(
    world: ClickWorld, rows: dict[str, np.ndarray], labels: dict[str, np.ndarray]
) -> pd.DataFrame:
    """The log's DataFrame: ids, features, labels and true probabilities."""
    num_categories = world.num_categories
    user = rows["user"]
    item = rows["item"]
    category_names = np.array([f"c{k}" for k in range(num_categories)], dtype=object)
    columns = {
        "user_id": user.astype(np.int64),
        "item_id": item.astype(np.int64),
        "item_category": _strings(category_names[world.item_category[item]]),
        "user_age": _strings(np.array(AGE_BUCKETS, dtype=object)[world.user_age[user]]),
        "user_gender": _strings(
            np.array(GENDERS, dtype=object)[world.user_gender[user]]
        ),
        "device": _strings(np.array(DEVICES, dtype=object)[rows["device"]]),
        "hour": rows["hour"].astype(np.int64),
        "position": rows["position"].astype(np.int64),
        "recent_categories": _strings(
            _join_tokens(rows["recent"], rows["num_recent"], num_categories)
        ),
        "item_price": world.item_price[item],
        "user_activity": world.user_activity[user],
        "item_hist_ctr": world.item_hist_ctr[item],
        "click": labels["click"].astype(np.int64),
        "conversion": labels["conversion"].astype(np.int64),
        "true_ctr": labels["true_ctr"],
        "true_cvr": labels["true_cvr"],
        "true_ctcvr": labels["true_ctr"] * labels["true_cvr"],
    }
    return pd.DataFrame(columns, columns=list(CLICK_LOG_COLUMNS))


def _join_tokens(
    tokens: np.ndarray, counts: np.ndarray, num_categories: int
) -> np.ndarray:
    """Joins the first ``counts[j]`` tokens of each row as ``"c3|c17|c5"``."""
    string_dtype = np.dtypes.StringDType()
    names = np.array([f"c{k}" for k in range(num_categories)], dtype=string_dtype)
    separated = np.array(
        [f"{RECENT_SEPARATOR}c{k}" for k in range(num_categories)], dtype=string_dtype
    )
    empty = np.array("", dtype=string_dtype)
    joined = np.where(counts > 0, names[tokens[:, 0]], empty)
    for k in range(1, tokens.shape[1]):
        joined = np.strings.add(
            joined, np.where(k < counts, separated[tokens[:, k]], empty)
        )
    return joined


def _strings(values: np.ndarray) -> pd.Series:
    return pd.Series(values, dtype="str")
