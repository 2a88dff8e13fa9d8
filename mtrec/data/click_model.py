"""The coefficients of the synthetic click log's hidden model, and its vocabularies.

The equations they enter are in :mod:`mtrec.data.synthetic`'s docstring.
"""

import dataclasses

from mtrec.checks import check_int

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


def _check_per_device(name: str, value: tuple) -> None:
    if len(value) != len(DEVICES):
        raise ValueError(
            f"`{name}` must have one value per device {DEVICES}. "
            f"Received: `{name}={value!r}`"
        )


@dataclasses.dataclass(frozen=True)
class ClickModel:
    """The coefficients of the hidden click and conversion model.

    The equations are in :mod:`mtrec.data.synthetic`'s docstring; each field
    below names its symbol.
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
        check_int("calibration_rows", self.calibration_rows, 1)
        check_int("num_themes", self.num_themes, 1)
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
