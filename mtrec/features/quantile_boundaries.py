"""Bucket boundaries of about equal mass that keep a point mass in a bucket
of its own."""

import numpy as np


def quantile_boundaries(sample, num_buckets: int) -> list[float]:
    """Boundaries of at most ``num_buckets`` buckets of a dense feature's
    sample: each value that holds at least ``1 / num_buckets`` of the sample
    (a point mass: the zeros of a count or an amount, the mode of an integer)
    is a bucket of its own, and the other values are cut at their quantiles.

    With ``m`` point masses ``a_1 < … < a_m`` and the remaining values ``r``:

        boundaries = {(a_j⁻ + a_j) / 2, (a_j + a_j⁺) / 2 : j ≤ m}
                     ∪ {Q_r(k / (n - m)) : 0 < k < n - m}

    where ``a_j⁻`` and ``a_j⁺`` are the nearest distinct values of the sample
    below and above ``a_j`` (a side with none gets no boundary), ``Q_r`` is
    ``r``'s quantile function and ``n = num_buckets``; a quantile inside a
    point mass's bucket is dropped. A point mass is bounded
    by midpoints, not by itself, so a value computed in float32 in the graph
    falls in the same bucket as its float64 twin here. Without point masses
    this is plain quantile cutting, ``Q(k / n)``. Plain quantiles put a
    feature that is zero in 96% of the rows (census-income's
    ``capital_gains``) in two buckets whatever ``n``: every quantile up to
    0.96 is the zero.

    Reference: the quantile (equal-frequency) bucketing of Gorishniy et al.,
    "On Embeddings for Numerical Features in Tabular Deep Learning",
    NeurIPS 2022, with point masses given their own buckets.

    Args:
      sample: the values (transformed, e.g. after ``log1p``), any shape.
      num_buckets: ``n >= 2``, the most buckets.

    Returns:
      The sorted, distinct boundaries: at most ``n - 1``; the value itself
      for a constant sample (as plain quantiles give), none for an empty one.

    Example:

    >>> quantile_boundaries([0, 0, 0, 0, 0, 0, 1, 2, 3, 4], 4)
    [0.5, 2.0, 3.0]
    >>> quantile_boundaries([1, 2, 3, 4, 5], 2)
    [3.0]
    """
    if int(num_buckets) != num_buckets or num_buckets < 2:
        raise ValueError(
            "`num_buckets` must be an integer >= 2. "
            f"Received: `num_buckets={num_buckets!r}`"
        )
    values, counts = np.unique(np.asarray(sample, dtype=np.float64), return_counts=True)
    if values.size < 2:  # a constant: one boundary at it, as plain quantiles
        return [float(v) for v in values]
    masses = np.flatnonzero(counts * num_buckets >= counts.sum())
    # A point mass's bucket: from the midpoint below it to the one above.
    midpoints = np.concatenate([[-np.inf], (values[:-1] + values[1:]) / 2, [np.inf]])
    low, high = midpoints[masses], midpoints[masses + 1]
    bounds = {float(b) for b in np.concatenate([low, high]) if np.isfinite(b)}
    rest = np.ones(values.size, bool)
    rest[masses] = False
    left = num_buckets - masses.size
    if rest.any() and left >= 2:
        cut = np.quantile(
            np.repeat(values[rest], counts[rest]), np.linspace(0.0, 1.0, left + 1)[1:-1]
        )
        inside = ((cut[:, None] > low) & (cut[:, None] < high)).any(axis=1)
        bounds |= {float(b) for b in cut[~inside]}  # none inside a mass's bucket
    return sorted(bounds)
