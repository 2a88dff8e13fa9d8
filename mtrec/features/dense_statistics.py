"""What the train split says about one dense feature: its moments, its range
and a uniform sample for quantile buckets, gathered chunk by chunk."""

import logging

import numpy as np

from mtrec.features.dense import DenseFeature
from mtrec.features.moments import RunningMoments
from mtrec.features.quantile_boundaries import quantile_boundaries
from mtrec.features.transforms import signed_log1p

logger = logging.getLogger(__name__)

#: Values kept for quantile bucket boundaries (a uniform sample of the split).
QUANTILE_SAMPLE_SIZE = 200_000


class DenseStatistics:
    """Mean, standard deviation, range and bucket boundaries of a dense
    feature's transformed value ``t(x)`` (after the signed ``log1p`` if the
    feature has it), over every chunk given to :meth:`add`.

    The quantile boundaries (``num_buckets``, :func:`quantile_boundaries`: a
    point mass gets a bucket of its own) come from a uniform sample of at
    most :data:`QUANTILE_SAMPLE_SIZE` values: each value gets a random key
    from ``rng`` and the smallest keys are kept (a bottom-k sample, the same
    for any chunking of the split).

    Args:
      spec: the feature.
      rng: the random keys' generator (shared by the features of one pass,
        drawn in their order, so a pass is reproducible from its seed).

    Example:

    >>> stats = DenseStatistics(DenseFeature("price", log1p=True), None)
    >>> stats.add(np.array([0.0, np.e - 1.0]))
    >>> {k: round(v, 3) for k, v in stats.result().items() if v is not None}
    {'mean': 0.5, 'std': 0.5, 'min': 0.0, 'max': 1.0}
    """

    def __init__(self, spec: DenseFeature, rng: np.random.Generator | None):
        self.spec = spec
        self.rng = rng
        self.moments = RunningMoments()
        self.low, self.high = np.inf, -np.inf
        self.sample = np.empty(0)
        self.keys = np.empty(0)

    def add(self, values) -> None:
        """Takes in a chunk of the feature's raw values."""
        x = np.asarray(values, dtype=np.float64)
        if self.spec.log1p:
            x = signed_log1p(x)
        self.moments.add(x)
        if x.size:
            self.low, self.high = min(self.low, x.min()), max(self.high, x.max())
        if self.spec.num_buckets:
            self.sample = np.concatenate([self.sample, x])
            self.keys = np.concatenate([self.keys, self.rng.random(x.size)])
            if self.sample.size > QUANTILE_SAMPLE_SIZE:
                keep = np.argpartition(self.keys, QUANTILE_SAMPLE_SIZE)
                keep = keep[:QUANTILE_SAMPLE_SIZE]
                self.sample, self.keys = self.sample[keep], self.keys[keep]

    def result(self) -> dict:
        """``{"mean", "std", "boundaries", "min", "max"}`` on the transformed
        scale; a constant feature gets ``std`` 1 (and a warning); the
        boundaries are the feature's own, its quantiles, or ``None``."""
        std = self.moments.std
        if std < 1e-12:
            logger.warning(
                "dense feature %r is constant on the train split", self.spec.name
            )
            std = 1.0
        boundaries = None
        if self.spec.boundaries is not None:
            boundaries = list(self.spec.boundaries)
        elif self.spec.num_buckets:
            boundaries = quantile_boundaries(self.sample, self.spec.num_buckets)
        return {
            "mean": float(self.moments.mean),
            "std": std,
            "boundaries": boundaries,
            # The training range (after log1p): serving clips to it.
            "min": float(self.low),
            "max": float(self.high),
        }
