"""Offline ranking metrics on numpy arrays (scikit-learn for AUC and log loss).

scikit-learn is imported when a metric is first computed, not with this
module: ``mtrec.data``, and through it the feature specs, import these
metrics, and scikit-learn costs about 0.5 s and 60 MB of resident memory that
building, training or serving a model does not need.
"""

import numpy as np

from mtrec.metrics.calibration import calibration_ratio
from mtrec.metrics.calibration import expected_calibration_error
from mtrec.metrics.calibration import reliability_curve
from mtrec.metrics.gauc import group_auc


def auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC AUC, or ``None`` when only one class is present."""
    labels = np.asarray(labels)
    if labels.size == 0 or np.unique(labels).size < 2:
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def missing_class(
    label: str,
    condition: str | None,
    rows: int,
    positives: int,
    rows_name: str = "rows",
) -> str | None:
    """What keeps a binary label from ranking: no rows, or one class only.

    ``None`` when the ``rows`` (where ``condition`` is 1) hold both classes;
    otherwise why ``auc`` is undefined there.

    Example:

    >>> missing_class("conversion", "click", 90, 0)
    "label 'conversion' has no positives in the 90 rows where click=1"
    >>> missing_class("click", None, 0, 0, rows_name="train rows")
    'no train rows'
    >>> missing_class("click", None, 10, 3) is None
    True
    """
    where = f" where {condition}=1" if condition else ""
    if rows == 0:
        return f"no {rows_name}{where}"
    if 0 < positives < rows:
        return None
    kind = "positives" if positives == 0 else "negatives"
    return f"label {label!r} has no {kind} in the {rows} {rows_name}{where}"


def logloss(labels: np.ndarray, probabilities: np.ndarray) -> float | None:
    """Mean binary cross-entropy, probabilities clipped to [1e-7, 1 - 1e-7]."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return None
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-7, 1 - 1e-7)
    from sklearn.metrics import log_loss

    return float(log_loss(labels, p, labels=[0, 1]))


def binary_report(
    labels: np.ndarray, probabilities: np.ndarray, groups: np.ndarray | None = None
) -> dict:
    """AUC, log loss, counts, label and prediction means, calibration.

    ``calibration`` is ``mean(p) / mean(y)``, ``ece`` the expected calibration
    error over 10 equal-width bins. With ``groups`` (e.g. user ids) also the
    group AUC: ``gauc`` (impression-weighted), ``gauc_mean`` (unweighted),
    ``gauc_groups`` (groups with both classes), see ``group_auc``.
    """
    labels = np.asarray(labels, dtype=np.float64)
    p = np.asarray(probabilities, dtype=np.float64)
    mean_label = float(labels.mean()) if labels.size else None
    mean_pred = float(p.mean()) if p.size else None
    report = {
        "auc": auc(labels, p),
        "logloss": logloss(labels, p),
        "rows": int(labels.size),
        "positives": int(labels.sum()),
        "label_mean": mean_label,
        "prediction_mean": mean_pred,
        "calibration": calibration_ratio(labels, p),
        "ece": expected_calibration_error(labels, p, num_bins=10),
        "reliability": reliability_curve(labels, p, num_bins=10),
    }
    if groups is not None:
        report.update(group_auc(labels, p, groups))
    return report


def regression_report(labels: np.ndarray, predictions: np.ndarray) -> dict:
    labels = np.asarray(labels, dtype=np.float64)
    err = np.asarray(predictions, dtype=np.float64) - labels
    return {
        "rmse": float(np.sqrt(np.mean(err**2))) if err.size else None,
        "mae": float(np.mean(np.abs(err))) if err.size else None,
        "rows": int(labels.size),
    }
