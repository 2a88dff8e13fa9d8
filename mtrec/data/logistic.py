"""The logistic function, its inverse, and intercepts solved for a target mean.

Shared by the synthetic generators, which draw labels from known probabilities
``sigma(b + s)`` and solve the intercept ``b`` for a target base rate.
"""

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``sigma(x) = 1 / (1 + exp(-x))``, element-wise.

    Example:

    >>> sigmoid(np.array([0.0])).tolist()
    [0.5]
    """
    return 1.0 / (1.0 + np.exp(-x))


def logit(p: float) -> float:
    """``ln(p / (1 - p))``, the inverse of :func:`sigmoid`, for ``0 < p < 1``.

    Example:

    >>> round(logit(0.5), 6)
    0.0
    """
    return float(np.log(p) - np.log1p(-p))


def solve_intercept(
    scores: np.ndarray, target: float, weights: np.ndarray | None = None
) -> float:
    """Solves ``sum_j w_j sigma(b + s_j) / sum_j w_j = target`` for ``b``.

    The left side increases with ``b``; bisection (60 halvings) on a bracket
    found by doubling.

    Args:
      scores: the scores ``s_j`` without intercept.
      target: the wanted weighted mean probability, in ``(0, 1)``.
      weights: ``w_j``; default equal weights.

    Returns:
      The intercept ``b``.

    Example:

    >>> b = solve_intercept(np.array([-1.0, 1.0]), 0.5)
    >>> abs(b) < 1e-9
    True
    """

    def mean(b: float) -> float:
        return float(np.average(sigmoid(b + scores), weights=weights))

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
