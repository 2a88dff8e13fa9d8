"""Specification of a dense numeric feature."""

import dataclasses
import math

from mtrec.features._spec_utils import check_name
from mtrec.features._spec_utils import check_positive
from mtrec.features._spec_utils import spec_to_dict

NORMALIZATIONS = ("zscore", "none")


@dataclasses.dataclass(frozen=True)
class DenseFeature:
    """A real number, transformed in the graph.

    ``t(x) = sign(x) log(1 + |x|)`` if ``log1p`` else ``x``; then either
    ``(t(x) - mean) / std`` with train-split statistics (``zscore``, default),
    or ``t(x)`` unchanged (``none``). With ``boundaries`` or ``num_buckets`` the
    transformed value is bucketised instead and the bucket index embedded.

    Attributes:
      name: column name and model input name.
      log1p: apply the signed log1p first (heavy-tailed counts, prices).
      normalization: ``"zscore"`` or ``"none"``.
      boundaries: explicit bucket boundaries (on the transformed scale).
      num_buckets: fit ``num_buckets`` quantile buckets on the train split.
      embedding_dim: width of the bucket embedding. Default 8.
      fill_value: value used for a missing cell; ``None`` (default) makes a
        missing value an error.
    """

    name: str
    log1p: bool = False
    normalization: str = "zscore"
    boundaries: tuple | None = None
    num_buckets: int | None = None
    embedding_dim: int = 8
    fill_value: float | None = None

    kind = "dense"

    def __post_init__(self):
        check_name(self)
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(
                f"Feature {self.name!r}: `normalization` must be one of "
                f"{NORMALIZATIONS}. Received: `normalization={self.normalization!r}`"
            )
        if self.boundaries is not None and self.num_buckets is not None:
            raise ValueError(
                f"Feature {self.name!r}: give either `boundaries` or `num_buckets`."
            )
        if self.boundaries is not None:
            bounds = tuple(float(b) for b in self.boundaries)
            if not bounds or any(b2 <= b1 for b1, b2 in zip(bounds, bounds[1:])):
                raise ValueError(
                    f"Feature {self.name!r}: `boundaries` must be a non-empty, "
                    "strictly increasing list. "
                    f"Received: `boundaries={list(self.boundaries)}`"
                )
            object.__setattr__(self, "boundaries", bounds)
        if self.num_buckets is not None:
            check_positive(self, "num_buckets", minimum=2)
        check_positive(self, "embedding_dim")
        if self.fill_value is not None and not math.isfinite(float(self.fill_value)):
            raise ValueError(
                f"Feature {self.name!r}: `fill_value` must be finite. "
                f"Received: `fill_value={self.fill_value!r}`"
            )

    @property
    def bucketized(self) -> bool:
        return self.boundaries is not None or self.num_buckets is not None

    def to_dict(self) -> dict:
        return spec_to_dict(self)
