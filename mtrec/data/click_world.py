"""The users, items, categories and interaction tables of one synthetic seed.

:class:`ClickWorld` draws them once from a seed and a :class:`ClickModel`;
:meth:`ClickWorld.impressions` then draws impressions and their logits without
intercepts. :func:`mtrec.data.generate_click_log` solves the intercepts and
samples the labels. The equations are in :mod:`mtrec.data.synthetic`'s
docstring.
"""

import dataclasses

import numpy as np

from mtrec.data.click_model import AGE_BUCKETS
from mtrec.data.click_model import DEVICES
from mtrec.data.click_model import GENDERS
from mtrec.data.click_model import MAX_RECENT_CATEGORIES
from mtrec.data.click_model import NUM_POSITIONS
from mtrec.data.click_model import ClickModel
from mtrec.data.logistic import logit
from mtrec.data.logistic import sigmoid

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


@dataclasses.dataclass(frozen=True)
class _Shown:
    """One draw's impressions as both scores read them, each an ``(n,)`` array:
    the user with its age bucket and activity z-score (gathered once for both
    scores), the item and its category, the context, and whether the category
    is among the user's recent and preferred ones."""

    user: np.ndarray
    age: np.ndarray
    activity_z: np.ndarray
    item: np.ndarray
    category: np.ndarray
    device: np.ndarray
    hour: np.ndarray
    position: np.ndarray
    in_recent: np.ndarray
    in_preferred: np.ndarray


class ClickWorld:
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

        self._draw_user_attributes(rng, num_users, category_probs)
        self._draw_item_attributes(rng, category_probs, category_log_price)
        self._draw_tables(rng)

    def _draw_user_attributes(
        self, rng: np.random.Generator, num_users: int, category_probs: np.ndarray
    ) -> None:
        """Users: popularity, demographics, activity, effects, preferred categories."""
        model = self.model
        num_categories = self.num_categories
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

    def _draw_item_attributes(
        self,
        rng: np.random.Generator,
        category_probs: np.ndarray,
        category_log_price: np.ndarray,
    ) -> None:
        """Items: popularity, category, quality, price, historical CTR."""
        model = self.model
        num_items = self.num_items
        num_categories = self.num_categories
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
        hist_mean = sigmoid(logit(model.ctr_target) + self.item_quality)
        kappa = model.kappa_min * np.sqrt(item_probs / item_probs.min())
        kappa = np.minimum(kappa, model.kappa_max)
        hist_ctr = rng.beta(kappa * hist_mean, kappa * (1.0 - hist_mean))
        self.item_hist_ctr = np.clip(np.round(hist_ctr, 6), 0.0, 1.0)
        self._build_category_sampler(item_probs)

    def _draw_tables(self, rng: np.random.Generator) -> None:
        """The category, user x category and device x hour effects; the hour and
        position distributions."""
        model = self.model
        num_categories = self.num_categories
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
        user = self.user_by_rank[_draw_rank(rng, self.user_cdf, n)]
        num_preferred = self.user_num_preferred[user]
        preferred = self.user_preferred[user]
        item = self._draw_shown_items(rng, n, preferred, num_preferred)
        category = self.item_category[item]
        device, hour, position = self._draw_context(rng, n, user)
        recent, num_recent = self._draw_recent_categories(
            rng, n, preferred, num_preferred
        )
        in_recent, in_preferred = _interest_matches(
            category, recent, num_recent, preferred, num_preferred
        )
        shown = _Shown(
            user=user,
            age=self.user_age[user],
            activity_z=self.user_activity_z[user],
            item=item,
            category=category,
            device=device,
            hour=hour,
            position=position,
            in_recent=in_recent,
            in_preferred=in_preferred,
        )
        ctr_score = self._ctr_score(shown)
        cvr_score = self._cvr_score(shown)
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

    def _draw_shown_items(
        self,
        rng: np.random.Generator,
        n: int,
        preferred: np.ndarray,
        num_preferred: np.ndarray,
    ) -> np.ndarray:
        """Items: by popularity, or from one of the user's preferred categories."""
        item = self.item_by_rank[_draw_rank(rng, self.item_cdf, n)]
        slot = np.floor(rng.random(n) * num_preferred).astype(np.int64)
        target_category = preferred[np.arange(n), slot]
        personal = (rng.random(n) < self.model.personalized_share) & (
            self.category_has_items[target_category]
        )
        return np.where(personal, self._draw_items(rng, target_category), item)

    def _draw_context(
        self, rng: np.random.Generator, n: int, user: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Context: the device (mostly the user's own), the hour and the position."""
        device = np.where(
            rng.random(n) < self.model.primary_device_share,
            self.user_device[user],
            rng.choice(len(DEVICES), n, p=_DEVICE_PROBS),
        )
        hour = rng.choice(24, n, p=self.hour_probs)
        position = 1 + rng.choice(NUM_POSITIONS, n, p=self.position_probs)
        return device, hour, position

    def _draw_recent_categories(
        self,
        rng: np.random.Generator,
        n: int,
        preferred: np.ndarray,
        num_preferred: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Recently clicked categories (mostly the preferred ones) and their count."""
        num_recent = rng.choice(len(_RECENT_COUNT_PROBS), n, p=_RECENT_COUNT_PROBS)
        shape = (n, MAX_RECENT_CATEGORIES)
        recent_slot = np.floor(rng.random(shape) * num_preferred[:, None])
        recent_preferred = np.take_along_axis(
            preferred, recent_slot.astype(np.int64), axis=1
        )
        recent = np.where(
            rng.random(shape) < self.model.recent_from_preferred,
            recent_preferred,
            rng.integers(0, self.num_categories, shape),
        )
        return recent, num_recent

    def _ctr_score(self, shown: _Shown) -> np.ndarray:
        """``logit_ctr - b_ctr`` without the shared appeal term."""
        model = self.model
        user, item, category = shown.user, shown.item, shown.category
        return (
            -model.pos_bias * np.log(shown.position)
            + self.device_hour_ctr[shown.device, shown.hour]
            + self.category_ctr[category]
            + model.theme_bonus
            * (self.category_theme[category] == self.user_theme[user])
            + model.recent_bonus * shown.in_recent
            + model.preferred_bonus * shown.in_preferred
            + self.age_category_ctr[shown.age, category]
            + self.gender_category_ctr[self.user_gender[user], category]
            + self.item_quality[item]
            + model.activity_ctr * shown.activity_z
            + self.user_ctr_effect[user]
            - model.price_ctr * self.item_relative_log_price[item] / model.price_sigma
        )

    def _cvr_score(self, shown: _Shown) -> np.ndarray:
        """``logit_cvr - b_cvr`` without the shared appeal term."""
        model = self.model
        item, category = shown.item, shown.category
        log_price_z = (
            np.log(self.item_price[item]) - np.log(model.price_median)
        ) / model.price_scale
        return (
            -model.price_cvr * log_price_z
            + model.quality_cvr * self.item_quality[item]
            + self.item_cvr_effect[item]
            + self.category_cvr[category]
            + self.age_category_cvr[shown.age, category]
            + model.recent_bonus_cvr * shown.in_recent
            + model.activity_cvr * shown.activity_z
            + np.asarray(model.device_cvr)[shown.device]
            + self.user_cvr_effect[shown.user]
        )


def _interest_matches(
    category: np.ndarray,
    recent: np.ndarray,
    num_recent: np.ndarray,
    preferred: np.ndarray,
    num_preferred: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Whether each row's category is among its recent and its preferred ones."""
    recent_valid = np.arange(MAX_RECENT_CATEGORIES)[None, :] < num_recent[:, None]
    in_recent = ((recent == category[:, None]) & recent_valid).any(axis=1)
    preferred_valid = np.arange(preferred.shape[1])[None, :] < num_preferred[:, None]
    in_preferred = ((preferred == category[:, None]) & preferred_valid).any(axis=1)
    return in_recent, in_preferred


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
