"""Mean and variance over chunks, numerically stable (Chan et al.).

The textbook ``E[x^2] - E[x]^2`` cancels catastrophically when the mean is
large against the spread: for Unix timestamps (``x ~ 1.7e9``, spread ~10)
``E[x^2] ~ 2.9e18`` and float64 keeps only ~16 digits, so the difference is
rounding noise. Each chunk's mean and sum of squared deviations ``M2`` are
exact enough (two passes over an in-memory chunk); chunks are merged with

    n = n_a + n_b,  d = mean_b - mean_a,
    mean = mean_a + d * n_b / n,
    M2 = M2_a + M2_b + d^2 * n_a * n_b / n

(T. F. Chan, G. H. Golub, R. J. LeVeque, "Updating Formulae and a Pairwise
Algorithm for Computing Sample Variances", 1979; Welford's update is the
one-row case).
"""

import dataclasses
import math

import numpy as np


@dataclasses.dataclass
class RunningMoments:
    """Count, mean and ``M2`` (sum of squared deviations) of the values seen.

    Example:

    >>> moments = RunningMoments()
    >>> moments.add(np.array([1.7e9 + 1.0, 1.7e9 + 3.0]))
    >>> moments.add(np.array([1.7e9 + 5.0]))
    >>> moments.count, moments.mean - 1.7e9, moments.std
    (3, 3.0, 1.632993161855452)
    """

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, values: np.ndarray) -> None:
        """Merges a chunk of values (float64 recommended)."""
        values = np.asarray(values, dtype=np.float64).ravel()
        n_b = values.size
        if n_b == 0:
            return
        mean_b = float(values.mean())
        m2_b = float(np.square(values - mean_b).sum())
        n_a, n = self.count, self.count + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / n
        self.m2 += m2_b + delta * delta * n_a * n_b / n
        self.count = n

    @property
    def variance(self) -> float:
        """Population variance (``M2 / n``); 0 before any value."""
        return self.m2 / self.count if self.count else 0.0

    @property
    def std(self) -> float:
        """Population standard deviation."""
        return math.sqrt(self.variance)
