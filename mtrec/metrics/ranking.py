"""Offline ranking metrics on numpy arrays (scikit-learn for AUC and log loss)."""

import numpy as np
from sklearn.metrics import log_loss
from sklearn.metrics import roc_auc_score


def auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC AUC, or ``None`` when only one class is present."""
    labels = np.asarray(labels)
    if labels.size == 0 or np.unique(labels).size < 2:
        return None
    return float(roc_auc_score(labels, scores))


def logloss(labels: np.ndarray, probabilities: np.ndarray) -> float | None:
    """Mean binary cross-entropy, probabilities clipped to [1e-7, 1 - 1e-7]."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return None
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-7, 1 - 1e-7)
    return float(log_loss(labels, p, labels=[0, 1]))


def binary_report(labels: np.ndarray, probabilities: np.ndarray) -> dict:
    """AUC, log loss, counts, label and prediction means (calibration ratio)."""
    labels = np.asarray(labels, dtype=np.float64)
    p = np.asarray(probabilities, dtype=np.float64)
    mean_label = float(labels.mean()) if labels.size else None
    mean_pred = float(p.mean()) if p.size else None
    return {
        "auc": auc(labels, p),
        "logloss": logloss(labels, p),
        "rows": int(labels.size),
        "positives": int(labels.sum()),
        "label_mean": mean_label,
        "prediction_mean": mean_pred,
        "calibration": (mean_pred / mean_label) if mean_label else None,
    }


def regression_report(labels: np.ndarray, predictions: np.ndarray) -> dict:
    labels = np.asarray(labels, dtype=np.float64)
    err = np.asarray(predictions, dtype=np.float64) - labels
    return {
        "rmse": float(np.sqrt(np.mean(err**2))) if err.size else None,
        "mae": float(np.mean(np.abs(err))) if err.size else None,
        "rows": int(labels.size),
    }
