"""How far a click log's clicked rows are from all its impressions.

ESMM's claim (sample selection bias of a CVR model trained on clicked rows)
needs a log whose clicked rows are a biased sample; this measures how biased
(``generate_click_log(selection_bias=...)`` sets the strength).
"""

import numpy as np
import pandas as pd

from mtrec.metrics import auc

SELECTION_BIAS_FEATURES: tuple[str, ...] = (
    "position",
    "log_item_price",
    "log1p_user_activity",
    "item_hist_ctr",
)
"""The features compared by :func:`selection_bias_report` (logs of skewed ones)."""


def selection_bias_report(frame: pd.DataFrame) -> dict:
    """Measures how far a log's clicked rows are from all its impressions.

    A CVR model trained on clicked rows and served on all impressions sees a
    sample selected by the click. The report says how strongly that selection
    bears on conversion (from the true probabilities of the synthetic log) and
    how it shifts the features a model sees:

    * ``true_cvr_lift = E[true_cvr | click] / E[true_cvr]`` and
      ``true_cvr_gap = E[true_cvr | click] - E[true_cvr]`` (1 and 0 when the
      click says nothing about conversion propensity);
    * ``true_cvr_click_auc``: the AUC of ``true_cvr`` for predicting ``click``
      over all rows (0.5 when unrelated);
    * ``ctr_cvr_spearman``: the rank correlation of ``true_ctr`` and
      ``true_cvr`` over all rows;
    * ``smd[f] = (mean_f(clicked) - mean_f(all)) / std_f(all)``, the
      standardized mean difference of each of ``SELECTION_BIAS_FEATURES``
      (``log_item_price = ln item_price``, ``log1p_user_activity =
      ln(1 + user_activity)``), and ``max_abs_smd`` (> 0.1 is a notable shift
      by the usual rule of thumb).

    Args:
      frame: a click log with the columns of :func:`generate_click_log` (at
        least ``click``, ``true_ctr``, ``true_cvr`` and the features), with
        clicked and unclicked rows.

    Returns:
      A dict with ``rows``, ``clicked_rows``, ``click_rate``,
      ``mean_true_cvr_all``, ``mean_true_cvr_clicked``, ``true_cvr_lift``,
      ``true_cvr_gap``, ``true_cvr_click_auc``, ``ctr_cvr_spearman``, ``smd``
      (a dict by feature) and ``max_abs_smd``; plain Python numbers.

    Raises:
      ValueError: a column is missing, or every row has the same ``click``.

    Example:

    >>> from mtrec.data import generate_click_log
    >>> sizes = dict(num_users=300, num_items=1_000, num_categories=10)
    >>> plain = selection_bias_report(generate_click_log(20_000, seed=1, **sizes))
    >>> biased = selection_bias_report(
    ...     generate_click_log(20_000, seed=1, selection_bias=1.5, **sizes)
    ... )
    >>> biased["true_cvr_lift"] > plain["true_cvr_lift"]
    True
    >>> sorted(plain["smd"])
    ['item_hist_ctr', 'log1p_user_activity', 'log_item_price', 'position']

    References:
      Ma et al. "Entire Space Multi-Task Model: An Effective Approach for
      Estimating Post-Click Conversion Rate". SIGIR 2018 (sample selection
      bias); Austin. "Balance diagnostics for comparing the distribution of
      baseline covariates between treatment groups in propensity-score matched
      samples". Statistics in Medicine 2009 (the standardized mean difference).
    """
    needed = ["click", "true_ctr", "true_cvr", "position", "item_price"]
    needed += ["user_activity", "item_hist_ctr"]
    missing = [column for column in needed if column not in frame.columns]
    if missing:
        raise ValueError(
            f"`frame` must have the columns {needed}. Received: a frame without "
            f"{missing}"
        )
    clicked = frame["click"].to_numpy() == 1
    if clicked.all() or not clicked.any():
        raise ValueError(
            "`frame` must have clicked and unclicked rows. Received: "
            f"{int(clicked.sum())} clicks in {len(frame)} rows"
        )
    true_cvr = frame["true_cvr"].to_numpy(dtype=np.float64)
    features = {
        "position": frame["position"].to_numpy(dtype=np.float64),
        "log_item_price": np.log(frame["item_price"].to_numpy(dtype=np.float64)),
        "log1p_user_activity": np.log1p(frame["user_activity"].to_numpy(float)),
        "item_hist_ctr": frame["item_hist_ctr"].to_numpy(dtype=np.float64),
    }
    smd = {}
    for name, values in features.items():
        std = values.std()
        gap = values[clicked].mean() - values.mean()
        smd[name] = float(gap / std) if std > 0 else 0.0
    mean_all, mean_clicked = float(true_cvr.mean()), float(true_cvr[clicked].mean())
    return {
        "rows": len(frame),
        "clicked_rows": int(clicked.sum()),
        "click_rate": float(clicked.mean()),
        "mean_true_cvr_all": mean_all,
        "mean_true_cvr_clicked": mean_clicked,
        "true_cvr_lift": mean_clicked / mean_all,
        "true_cvr_gap": mean_clicked - mean_all,
        "true_cvr_click_auc": auc(clicked.astype(np.int64), true_cvr),
        "ctr_cvr_spearman": float(
            frame["true_ctr"].rank().corr(frame["true_cvr"].rank())
        ),
        "smd": smd,
        "max_abs_smd": max(abs(value) for value in smd.values()),
    }
