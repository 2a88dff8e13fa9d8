"""Calibration: whether predicted probabilities match observed rates."""

import numpy as np


def calibration_ratio(labels, probabilities) -> float | None:
    """``mean(p) / mean(y)``: 1 is calibrated on average, > 1 over-predicts.

    ``None`` when there is no row or no positive label.
    """
    labels = np.asarray(labels, dtype=np.float64)
    p = np.asarray(probabilities, dtype=np.float64)
    if labels.size == 0 or labels.mean() == 0:
        return None
    return float(p.mean() / labels.mean())


def _binned_inputs(labels, probabilities, num_bins) -> tuple[np.ndarray, np.ndarray]:
    if int(num_bins) < 1:
        raise ValueError(f"`num_bins` must be >= 1. Received: `num_bins={num_bins}`")
    labels = np.asarray(labels, dtype=np.float64).reshape(-1)
    return labels, np.asarray(probabilities, dtype=np.float64).reshape(-1)


def expected_calibration_error(
    labels, probabilities, num_bins: int = 10
) -> float | None:
    """Expected calibration error over equal-width probability bins.

    ``ECE = Σ_b (n_b / n) · |mean(p | b) - mean(y | b)|`` over the bins
    ``[0, 1/B), [1/B, 2/B), ..., [(B-1)/B, 1]`` (the last one closed), empty
    bins skipped. ``None`` when there is no row.

    Args:
      labels: 0/1 labels.
      probabilities: predicted probabilities in ``[0, 1]``.
      num_bins: ``B``. Default 10.

    References:
      Naeini, Cooper & Hauskrecht, "Obtaining Well Calibrated Probabilities
      Using Bayesian Binning", AAAI 2015; Guo et al., "On Calibration of
      Modern Neural Networks", ICML 2017.
    """
    labels, p = _binned_inputs(labels, probabilities, num_bins)
    if labels.size == 0:
        return None
    bins = np.minimum((p * num_bins).astype(np.int64), num_bins - 1)
    bins = np.clip(bins, 0, num_bins - 1)
    counts = np.bincount(bins, minlength=num_bins)
    sum_p = np.bincount(bins, weights=p, minlength=num_bins)
    sum_y = np.bincount(bins, weights=labels, minlength=num_bins)
    used = counts > 0
    gaps = np.abs(sum_p[used] - sum_y[used]) / counts[used]
    return float(np.sum(counts[used] / labels.size * gaps))


def reliability_curve(labels, probabilities, num_bins: int = 10) -> dict | None:
    """Mean prediction against the label rate in equal-count bins.

    Rows are sorted by prediction and cut into ``num_bins`` bins of (nearly)
    equal size, so a click model whose predictions all lie below 0.1 still
    gets ``num_bins`` points (equal-width bins would put every row in the
    first). A calibrated model's points lie on the diagonal. ``None`` when
    there is no row.

    Returns:
      ``{"mean_prediction": [...], "label_rate": [...], "rows": [...]}``, one
      entry per non-empty bin, by increasing prediction.

    Example:

    >>> curve = reliability_curve([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9], num_bins=2)
    >>> [round(v, 2) for v in curve["mean_prediction"]], curve["label_rate"]
    ([0.15, 0.8], [0.0, 1.0])
    """
    labels, p = _binned_inputs(labels, probabilities, num_bins)
    if labels.size == 0:
        return None
    order = np.argsort(p, kind="stable")
    curve = {"mean_prediction": [], "label_rate": [], "rows": []}
    for part in np.array_split(order, min(int(num_bins), labels.size)):
        curve["mean_prediction"].append(float(p[part].mean()))
        curve["label_rate"].append(float(labels[part].mean()))
        curve["rows"].append(int(part.size))
    return curve
