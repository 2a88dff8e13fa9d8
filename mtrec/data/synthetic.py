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

import dataclasses
import logging
import os
import pathlib
import time

import numpy as np
import pandas as pd

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

AGE_BUCKETS: tuple[str, ...] = (
    "18-24",
    "25-34",
    "35-44",
    "45-54",
    "55-64",
    "65+",
    "unknown",
)
GENDERS: tuple[str, ...] = ("f", "m", "u")
DEVICES: tuple[str, ...] = ("ios", "android", "web")
NUM_POSITIONS = 10
MAX_RECENT_CATEGORIES = 5
RECENT_SEPARATOR = "|"

_AGE_PROBS = (0.14, 0.27, 0.22, 0.15, 0.09, 0.05, 0.08)
_GENDER_PROBS = (0.47, 0.43, 0.10)
# Ordinal scores of the age buckets and genders in the user x category tables.
_AGE_SCORES = (-1.5, -0.9, -0.3, 0.3, 0.9, 1.5, 0.0)
_GENDER_SCORES = (1.0, -1.0, 0.0)
_DEVICE_PROBS = (0.35, 0.50, 0.15)
# Number of recent-category tokens 0..5; 0 (an empty string) for ~10% of rows.
_RECENT_COUNT_PROBS = (0.10, 0.15, 0.20, 0.20, 0.17, 0.18)
# Number of preferred categories per user, 1..3.
_PREFERRED_COUNT_PROBS = (0.40, 0.35, 0.25)
_TABLE_FORMATS = ("csv", "parquet")


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"`{name}` must be an integer. Received: `{name}={value!r}`")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}. Received: `{name}={value!r}`")


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


def _check_per_device(name: str, value: tuple) -> None:
    if len(value) != len(DEVICES):
        raise ValueError(
            f"`{name}` must have one value per device {DEVICES}. "
            f"Received: `{name}={value!r}`"
        )


@dataclasses.dataclass(frozen=True)
class ClickModel:
    """The coefficients of the hidden click and conversion model.

    The equations are in the module docstring; each field below names its symbol.
    The defaults give a mean CTR of 4%, a CVR among clicks of 15%, an oracle CTR
    AUC of about 0.79 and an oracle CVR AUC (clicked rows) of about 0.75.

    Attributes:
      ctr_target: ``E[true_ctr]``; the CTR intercept ``b_ctr`` is solved for it.
      cvr_target: ``E[true_cvr | click]``; ``b_cvr`` is solved for it.
      calibration_rows: impressions drawn (from a separate stream of the same
        seed) to solve the intercepts.
      user_zipf_exponent: ``a`` in ``P(user of popularity rank k) ~ 1 / (k + k0)^a``
        (Zipf-Mandelbrot: Zipf's tail, a flattened head).
      user_zipf_offset: ``k0`` for users; 0 is pure Zipf, where the top user
        alone would take ~10% of the impressions.
      item_zipf_exponent: ``a`` for items.
      item_zipf_offset: ``k0`` for items.
      category_zipf_exponent: the same for the share of items per category.
      personalized_share: share of impressions whose item was retrieved from one
        of the user's preferred categories (the rest are drawn by popularity).
      primary_device_share: share of a user's impressions on their main device.
      recent_from_preferred: probability that a recent-category token is one of
        the user's preferred categories (otherwise it is uniform).
      pos_bias: ``pos_bias`` (the click odds fall as ``position^-pos_bias``).
      position_exponent: impressions per position fall as ``position^-exponent``.
      device_effect: ``D[device]`` for ``DEVICES``.
      device_hour_amplitude: ``A[device]``.
      device_peak_hour: ``H[device]``, the hour at which the device's CTR peaks.
      category_std: std of the category appeal ``K_ctr[c]``.
      num_themes: number of themes; a user's preferred categories share one.
      theme_bonus: hidden CTR bonus when the item is of the user's theme. Off by
        default: an MLP on pooled embeddings learns such matches slowly, and the
        ~10% of rows without recent categories do not show the theme.
      recent_bonus: CTR bonus when the item's category is a recent category.
      preferred_bonus: hidden CTR bonus for the user's preferred categories.
      age_category_std: std of the per-category age slope ``v_c`` of ``T_ctr``.
      gender_category_std: std of the per-category gender slope ``w_c``.
      table_noise_std: std of the full-rank noise in ``T_ctr``, ``G_ctr``,
        ``T_cvr``.
      quality_std: std of the hidden item quality ``q_i``.
      activity_ctr: CTR coefficient of the standardised log activity.
      user_std: std of the idiosyncratic user CTR effect ``e_u``.
      price_ctr: CTR penalty per category-relative log-price std.
      price_median: median item price; also ``price_median`` in ``logit_cvr``.
      category_price_std: std of the category mean log price ``mu[c]``.
      price_sigma: std of an item's log price around its category mean.
      kappa_min: pseudo impression count behind the least popular item's
        ``item_hist_ctr``.
      kappa_max: cap on that count for the most popular items.
      price_cvr: CVR penalty per ``price_scale`` of log price.
      price_scale: log-price scale in ``logit_cvr``.
      quality_cvr: CVR coefficient of the item quality ``q_i``.
      item_cvr_std: std of the idiosyncratic item CVR effect ``f_i``.
      category_cvr_std: std of ``K_cvr[c]``.
      cvr_table_share: share of ``T_ctr`` in ``T_cvr``.
      cvr_table_std: std of the CVR-only age slope ``v'_c`` of ``T_cvr``.
      recent_bonus_cvr: CVR bonus when the item's category is a recent category.
      activity_cvr: CVR coefficient of the standardised log activity.
      device_cvr: ``device_cvr[device]`` for ``DEVICES``.
      user_cvr_std: std of the idiosyncratic user CVR effect ``e'_u``.
    """

    ctr_target: float = 0.04
    cvr_target: float = 0.15
    calibration_rows: int = 100_000
    user_zipf_exponent: float = 1.05
    user_zipf_offset: float = 100.0
    item_zipf_exponent: float = 1.1
    item_zipf_offset: float = 100.0
    category_zipf_exponent: float = 0.6
    personalized_share: float = 0.35
    primary_device_share: float = 0.8
    recent_from_preferred: float = 0.7
    pos_bias: float = 0.65
    position_exponent: float = 0.3
    device_effect: tuple[float, float, float] = (0.1, 0.0, -0.2)
    device_hour_amplitude: tuple[float, float, float] = (0.15, 0.2, 0.25)
    device_peak_hour: tuple[float, float, float] = (21.0, 23.0, 11.0)
    category_std: float = 0.4
    num_themes: int = 5
    theme_bonus: float = 0.0
    recent_bonus: float = 0.5
    preferred_bonus: float = 0.1
    age_category_std: float = 0.15
    gender_category_std: float = 0.1
    table_noise_std: float = 0.02
    quality_std: float = 0.7
    activity_ctr: float = 0.45
    user_std: float = 0.1
    price_ctr: float = 0.15
    price_median: float = 30.0
    category_price_std: float = 0.7
    price_sigma: float = 0.5
    kappa_min: float = 3_000.0
    kappa_max: float = 1_000_000.0
    price_cvr: float = 0.8
    price_scale: float = 1.0
    quality_cvr: float = 0.7
    item_cvr_std: float = 0.1
    category_cvr_std: float = 0.3
    cvr_table_share: float = 0.5
    cvr_table_std: float = 0.25
    recent_bonus_cvr: float = 0.5
    activity_cvr: float = 0.3
    device_cvr: tuple[float, float, float] = (0.15, -0.1, 0.25)
    user_cvr_std: float = 0.1

    def __post_init__(self):
        for name in ("ctr_target", "cvr_target"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(
                    f"`{name}` must be in (0, 1). Received: `{name}={value!r}`"
                )
        for name in ("personalized_share", "primary_device_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(
                    f"`{name}` must be in [0, 1]. Received: `{name}={value!r}`"
                )
        if not 0.0 <= self.recent_from_preferred <= 1.0:
            raise ValueError(
                "`recent_from_preferred` must be in [0, 1]. "
                f"Received: `recent_from_preferred={self.recent_from_preferred!r}`"
            )
        _check_int("calibration_rows", self.calibration_rows, 1)
        _check_int("num_themes", self.num_themes, 1)
        for name in ("device_effect", "device_hour_amplitude", "device_peak_hour"):
            _check_per_device(name, getattr(self, name))
        _check_per_device("device_cvr", self.device_cvr)
        if not 0.0 < self.kappa_min <= self.kappa_max:
            raise ValueError(
                "`kappa_min` must be > 0 and <= `kappa_max`. Received: "
                f"`kappa_min={self.kappa_min!r}`, `kappa_max={self.kappa_max!r}`"
            )
        for name in ("user_zipf_offset", "item_zipf_offset"):
            value = getattr(self, name)
            if not value >= 0.0:
                raise ValueError(f"`{name}` must be >= 0. Received: `{name}={value!r}`")
        for name in ("price_median", "price_scale", "price_sigma"):
            value = getattr(self, name)
            if not value > 0.0:
                raise ValueError(f"`{name}` must be > 0. Received: `{name}={value!r}`")


DEFAULT_CLICK_MODEL = ClickModel()
"""The hidden model used when :func:`generate_click_log` gets no ``model``."""


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
    _check_int("num_rows", num_rows, 1)
    _check_int("seed", seed, 0)
    _check_int("num_users", num_users, 1)
    _check_int("num_items", num_items, 1)
    _check_int("num_categories", num_categories, 1)
    if model is None:
        model = DEFAULT_CLICK_MODEL
    elif not isinstance(model, ClickModel):
        raise ValueError(
            f"`model` must be a ClickModel or None. Received: `model={model!r}`"
        )
    _check_selection_bias(selection_bias)

    start = time.perf_counter()
    # The fourth stream (appeal) leaves the first three as they always were.
    streams = np.random.SeedSequence(seed).spawn(4)
    world_seq, calibration_seq, rows_seq, appeal_seq = streams
    world = _World(
        np.random.default_rng(world_seq), num_users, num_items, num_categories, model
    )
    world.add_appeal(np.random.default_rng(appeal_seq), float(selection_bias))
    calibration = world.impressions(
        np.random.default_rng(calibration_seq), model.calibration_rows
    )
    b_ctr = _solve_intercept(calibration["ctr_score"], model.ctr_target)
    click_weights = _sigmoid(b_ctr + calibration["ctr_score"])
    b_cvr = _solve_intercept(calibration["cvr_score"], model.cvr_target, click_weights)

    rng = np.random.default_rng(rows_seq)
    rows = world.impressions(rng, num_rows)
    true_ctr = _sigmoid(b_ctr + rows["ctr_score"])
    true_cvr = _sigmoid(b_cvr + rows["cvr_score"])
    click = rng.random(num_rows) < true_ctr
    conversion = click & (rng.random(num_rows) < true_cvr)

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
        "click": click.astype(np.int64),
        "conversion": conversion.astype(np.int64),
        "true_ctr": true_ctr,
        "true_cvr": true_cvr,
        "true_ctcvr": true_ctr * true_cvr,
    }
    df = pd.DataFrame(columns, columns=list(CLICK_LOG_COLUMNS))
    logger.info(
        "Generated %d rows (seed=%d, selection_bias=%g) in %.1fs: CTR %.4f, "
        "CVR|click %.4f, b_ctr=%.3f, b_cvr=%.3f",
        num_rows,
        seed,
        selection_bias,
        time.perf_counter() - start,
        float(click.mean()),
        float(conversion.sum() / max(int(click.sum()), 1)),
        b_ctr,
        b_cvr,
    )
    return df


def write_table(
    df: pd.DataFrame,
    path: str | os.PathLike,
    file_format: str | None = None,
) -> pathlib.Path:
    """Writes a DataFrame as CSV (without the index) or Parquet.

    Args:
      df: the frame to write.
      path: the output file; missing parent directories are created.
      file_format: ``"csv"`` or ``"parquet"``; ``None`` (default) infers it from
        the suffix: ``.csv``, ``.csv.gz`` (gzip-compressed CSV) or ``.parquet``.

    Returns:
      The path written.

    Raises:
      ValueError: for an unknown format or, with ``file_format=None``, a suffix
        that names no format.
    """
    path = pathlib.Path(path)
    if file_format is None:
        name = path.name.lower()
        if name.endswith((".csv", ".csv.gz")):
            file_format = "csv"
        elif name.endswith(".parquet"):
            file_format = "parquet"
        else:
            raise ValueError(
                "Cannot infer the format from the suffix of `path`; use .csv, "
                ".csv.gz or .parquet, or pass `file_format`. "
                f"Received: `path={str(path)!r}`"
            )
    elif file_format not in _TABLE_FORMATS:
        raise ValueError(
            f"`file_format` must be one of {_TABLE_FORMATS} or None. "
            f"Received: `file_format={file_format!r}`"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if file_format == "csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)
    logger.info(
        "Wrote %d rows to %s (%s) in %.1fs",
        len(df),
        path,
        file_format,
        time.perf_counter() - start,
    )
    return path


class _World:
    """The users, items and interaction tables of one seed."""

    def __init__(
        self,
        rng: np.random.Generator,
        num_users: int,
        num_items: int,
        num_categories: int,
        model: ClickModel,
    ):
        self.model = model
        self.num_categories = num_categories
        self.num_items = num_items
        self.selection_bias = 0.0
        self.item_appeal = None

        # Categories: Zipf-like share of items, a mean log price each.
        category_probs = _zipf_probs(num_categories, model.category_zipf_exponent)
        category_probs = category_probs[rng.permutation(num_categories)]
        category_log_price = np.log(model.price_median) + rng.normal(
            0.0, model.category_price_std, num_categories
        )

        # Users.
        self.user_by_rank = rng.permutation(num_users)
        self.user_cdf = _cdf(
            _zipf_probs(num_users, model.user_zipf_exponent, model.user_zipf_offset)
        )
        user_rank = np.empty(num_users, dtype=np.int64)
        user_rank[self.user_by_rank] = np.arange(num_users)
        self.user_age = rng.choice(len(AGE_BUCKETS), num_users, p=_AGE_PROBS)
        self.user_gender = rng.choice(len(GENDERS), num_users, p=_GENDER_PROBS)
        self.user_device = rng.choice(len(DEVICES), num_users, p=_DEVICE_PROBS)
        # Sessions in the last 30 days: heavy-tailed, higher for frequent users.
        log_rank = np.log1p(user_rank)
        popularity_z = -(log_rank - log_rank.mean()) / max(log_rank.std(), 1e-12)
        sessions_mean = np.exp(np.log(6.0) + 0.3 * popularity_z)
        sessions_mean *= rng.lognormal(0.0, 0.9, num_users)
        self.user_activity = np.minimum(rng.poisson(sessions_mean), 500).astype(
            np.float64
        )
        log_activity = np.log1p(self.user_activity)
        self.user_activity_z = (log_activity - log_activity.mean()) / max(
            log_activity.std(), 1e-12
        )
        self.user_ctr_effect = rng.normal(0.0, model.user_std, num_users)
        self.user_cvr_effect = rng.normal(0.0, model.user_cvr_std, num_users)
        # A theme (a block of categories) per user, drawn by the themes' item
        # share, then 1-3 distinct preferred categories inside it (Gumbel top-k).
        num_themes = min(model.num_themes, num_categories)
        self.category_theme = np.arange(num_categories) * num_themes // num_categories
        theme_probs = np.bincount(
            self.category_theme, weights=category_probs, minlength=num_themes
        )
        self.user_theme = rng.choice(num_themes, num_users, p=theme_probs)
        theme_size = np.bincount(self.category_theme, minlength=num_themes)
        max_preferred = min(len(_PREFERRED_COUNT_PROBS), int(theme_size.min()))
        gumbel = rng.gumbel(size=(num_users, num_categories))
        keys = np.log(category_probs) + gumbel
        keys[self.category_theme[None, :] != self.user_theme[:, None]] = -np.inf
        self.user_preferred = np.argsort(-keys, axis=1)[:, :max_preferred]
        num_preferred = 1 + rng.choice(
            len(_PREFERRED_COUNT_PROBS), num_users, p=_PREFERRED_COUNT_PROBS
        )
        self.user_num_preferred = np.minimum(num_preferred, max_preferred)

        # Items.
        self.item_by_rank = rng.permutation(num_items)
        item_probs_by_rank = _zipf_probs(
            num_items, model.item_zipf_exponent, model.item_zipf_offset
        )
        self.item_cdf = _cdf(item_probs_by_rank)
        item_probs = np.empty(num_items)
        item_probs[self.item_by_rank] = item_probs_by_rank
        self.item_category = rng.choice(num_categories, num_items, p=category_probs)
        self.item_quality = rng.normal(0.0, model.quality_std, num_items)
        self.item_cvr_effect = rng.normal(0.0, model.item_cvr_std, num_items)
        log_price = category_log_price[self.item_category] + rng.normal(
            0.0, model.price_sigma, num_items
        )
        self.item_price = np.maximum(np.round(np.exp(log_price), 2), 0.01)
        self.item_relative_log_price = (
            np.log(self.item_price) - category_log_price[self.item_category]
        )
        # Historical CTR: Beta noise around sigma(logit(ctr_target) + q_i),
        # with more pseudo impressions (less noise) for popular items.
        hist_mean = _sigmoid(_logit(model.ctr_target) + self.item_quality)
        kappa = model.kappa_min * np.sqrt(item_probs / item_probs.min())
        kappa = np.minimum(kappa, model.kappa_max)
        hist_ctr = rng.beta(kappa * hist_mean, kappa * (1.0 - hist_mean))
        self.item_hist_ctr = np.clip(np.round(hist_ctr, 6), 0.0, 1.0)
        self._build_category_sampler(item_probs)

        # Interaction tables.
        num_ages = len(AGE_BUCKETS)
        age_score = np.asarray(_AGE_SCORES)[:, None]
        gender_score = np.asarray(_GENDER_SCORES)[:, None]
        self.age_category_ctr = age_score * rng.normal(
            0.0, model.age_category_std, num_categories
        ) + rng.normal(0.0, model.table_noise_std, (num_ages, num_categories))
        self.category_ctr = rng.normal(0.0, model.category_std, num_categories)
        self.category_cvr = rng.normal(0.0, model.category_cvr_std, num_categories)
        self.gender_category_ctr = gender_score * rng.normal(
            0.0, model.gender_category_std, num_categories
        ) + rng.normal(0.0, model.table_noise_std, (len(GENDERS), num_categories))
        self.age_category_cvr = model.cvr_table_share * self.age_category_ctr
        self.age_category_cvr += age_score * rng.normal(
            0.0, model.cvr_table_std, num_categories
        ) + rng.normal(0.0, model.table_noise_std, (num_ages, num_categories))
        hours = np.arange(24)
        amplitude = np.asarray(model.device_hour_amplitude)[:, None]
        peak = np.asarray(model.device_peak_hour)[:, None]
        device_effect = np.asarray(model.device_effect)[:, None]
        cycle = np.cos(2.0 * np.pi * (hours[None, :] - peak) / 24.0)
        self.device_hour_ctr = device_effect + amplitude * cycle
        # Daily traffic cycle: a trough around 4h, a peak around 20h.
        traffic = np.exp(0.9 * np.cos(2.0 * np.pi * (hours - 20) / 24.0))
        traffic += 0.3 * np.exp(-0.5 * ((hours - 12.5) / 1.5) ** 2)
        self.hour_probs = traffic / traffic.sum()
        positions = np.arange(1, NUM_POSITIONS + 1)
        position_weights = positions ** (-model.position_exponent)
        self.position_probs = position_weights / position_weights.sum()

    def add_appeal(self, rng: np.random.Generator, selection_bias: float) -> None:
        """Draws the hidden item appeal ``a_i`` when ``selection_bias > 0``."""
        self.selection_bias = selection_bias
        if selection_bias > 0.0:
            self.item_appeal = rng.standard_normal(self.num_items)

    def _build_category_sampler(self, item_probs: np.ndarray) -> None:
        """Prepares inverse-CDF draws of an item within a given category.

        Items are sorted by category; key ``c + F_c(item)`` (``F_c`` the CDF of
        popularity inside category ``c``) is increasing, so the item drawn from
        category ``c`` with uniform ``r`` is the first key ``> c + r``.
        """
        order = np.argsort(self.item_category, kind="stable")
        sorted_category = self.item_category[order]
        sorted_probs = item_probs[order]
        cumulative = np.cumsum(sorted_probs)
        counts = np.bincount(sorted_category, minlength=self.num_categories)
        ends = np.cumsum(counts)
        starts = ends - counts
        before = np.concatenate([[0.0], cumulative])[starts]
        totals = np.concatenate([[0.0], cumulative])[ends] - before
        safe_totals = np.where(totals > 0, totals, 1.0)
        within = (cumulative - before[sorted_category]) / safe_totals[sorted_category]
        within[ends[counts > 0] - 1] = 1.0
        self._items_by_category = order
        self._category_keys = sorted_category + within
        self.category_has_items = counts > 0

    def _draw_items(self, rng: np.random.Generator, categories: np.ndarray):
        """Draws one item per row from ``categories`` by popularity."""
        target = categories + rng.random(len(categories))
        index = np.searchsorted(self._category_keys, target, side="right")
        index = np.minimum(index, len(self._category_keys) - 1)
        return self._items_by_category[index]

    def impressions(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        """Draws ``n`` impressions and the logits of the model without intercepts."""
        model = self.model
        num_categories = self.num_categories
        user = self.user_by_rank[_draw_rank(rng, self.user_cdf, n)]
        num_preferred = self.user_num_preferred[user]
        preferred = self.user_preferred[user]

        # Items: by popularity, or from one of the user's preferred categories.
        item = self.item_by_rank[_draw_rank(rng, self.item_cdf, n)]
        slot = np.floor(rng.random(n) * num_preferred).astype(np.int64)
        target_category = preferred[np.arange(n), slot]
        personal = (rng.random(n) < model.personalized_share) & (
            self.category_has_items[target_category]
        )
        item = np.where(personal, self._draw_items(rng, target_category), item)
        category = self.item_category[item]

        # Context.
        device = np.where(
            rng.random(n) < model.primary_device_share,
            self.user_device[user],
            rng.choice(len(DEVICES), n, p=_DEVICE_PROBS),
        )
        hour = rng.choice(24, n, p=self.hour_probs)
        position = 1 + rng.choice(NUM_POSITIONS, n, p=self.position_probs)

        # Recently clicked categories: mostly the preferred ones.
        num_recent = rng.choice(len(_RECENT_COUNT_PROBS), n, p=_RECENT_COUNT_PROBS)
        shape = (n, MAX_RECENT_CATEGORIES)
        recent_slot = np.floor(rng.random(shape) * num_preferred[:, None])
        recent_preferred = np.take_along_axis(
            preferred, recent_slot.astype(np.int64), axis=1
        )
        recent = np.where(
            rng.random(shape) < model.recent_from_preferred,
            recent_preferred,
            rng.integers(0, num_categories, shape),
        )
        recent_valid = np.arange(MAX_RECENT_CATEGORIES)[None, :] < num_recent[:, None]
        in_recent = ((recent == category[:, None]) & recent_valid).any(axis=1)
        preferred_valid = (
            np.arange(preferred.shape[1])[None, :] < num_preferred[:, None]
        )
        in_preferred = ((preferred == category[:, None]) & preferred_valid).any(axis=1)

        age = self.user_age[user]
        activity_z = self.user_activity_z[user]
        ctr_score = (
            -model.pos_bias * np.log(position)
            + self.device_hour_ctr[device, hour]
            + self.category_ctr[category]
            + model.theme_bonus
            * (self.category_theme[category] == self.user_theme[user])
            + model.recent_bonus * in_recent
            + model.preferred_bonus * in_preferred
            + self.age_category_ctr[age, category]
            + self.gender_category_ctr[self.user_gender[user], category]
            + self.item_quality[item]
            + model.activity_ctr * activity_z
            + self.user_ctr_effect[user]
            - model.price_ctr * self.item_relative_log_price[item] / model.price_sigma
        )
        log_price_z = (
            np.log(self.item_price[item]) - np.log(model.price_median)
        ) / model.price_scale
        cvr_score = (
            -model.price_cvr * log_price_z
            + model.quality_cvr * self.item_quality[item]
            + self.item_cvr_effect[item]
            + self.category_cvr[category]
            + self.age_category_cvr[age, category]
            + model.recent_bonus_cvr * in_recent
            + model.activity_cvr * activity_z
            + np.asarray(model.device_cvr)[device]
            + self.user_cvr_effect[user]
        )
        if self.item_appeal is not None:
            shared = self.selection_bias * self.item_appeal[item]
            ctr_score = ctr_score + shared
            cvr_score = cvr_score + shared
        return {
            "user": user,
            "item": item,
            "device": device,
            "hour": hour,
            "position": position,
            "recent": recent,
            "num_recent": num_recent,
            "ctr_score": ctr_score,
            "cvr_score": cvr_score,
        }


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p: float) -> float:
    return float(np.log(p) - np.log1p(-p))


def _zipf_probs(n: int, exponent: float, offset: float = 0.0) -> np.ndarray:
    """``p_k ~ 1 / (k + offset)^exponent`` for ranks ``k = 1..n``."""
    weights = (np.arange(1, n + 1, dtype=np.float64) + offset) ** (-exponent)
    return weights / weights.sum()


def _cdf(probs: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(probs)
    cdf[-1] = 1.0
    return cdf


def _draw_rank(rng: np.random.Generator, cdf: np.ndarray, n: int) -> np.ndarray:
    """Inverse-CDF draws of ``n`` ranks ``0..len(cdf)-1``."""
    rank = np.searchsorted(cdf, rng.random(n), side="right")
    return np.minimum(rank, len(cdf) - 1)


def _solve_intercept(
    scores: np.ndarray, target: float, weights: np.ndarray | None = None
) -> float:
    """Solves ``sum_j w_j sigma(b + s_j) / sum_j w_j = target`` for ``b``.

    The left side increases with ``b``; bisection on a bracket found by doubling.
    """

    def mean(b: float) -> float:
        return float(np.average(_sigmoid(b + scores), weights=weights))

    low, high = -1.0, 1.0
    while mean(low) > target:
        low *= 2.0
    while mean(high) < target:
        high *= 2.0
    for _ in range(60):
        middle = 0.5 * (low + high)
        if mean(middle) < target:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


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
