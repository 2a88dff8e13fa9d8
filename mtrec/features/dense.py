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
    transformed value is bucketised instead and the bucket index embedded;
    with ``keep_value`` as well, the input is both: ``[E(bucket(t(x))), z]``,
    width ``embedding_dim + 1``. A bucket embedding learns any shape of the
    feature's effect (a threshold such as a capital gain that only high
    incomes report) and the value keeps the order within a bucket
    (Gorishniy et al., "On Embeddings for Numerical Features in Tabular Deep
    Learning", NeurIPS 2022).

    Attributes:
      name: column name and model input name.
      log1p: apply the signed log1p first (heavy-tailed counts, prices).
      normalization: ``"zscore"`` or ``"none"``.
      boundaries: explicit bucket boundaries (on the transformed scale).
      num_buckets: fit at most ``num_buckets`` quantile buckets on the train
        split; a value that holds ``1 / num_buckets`` of the rows or more
        (e.g. the zeros of a count) is a bucket of its own
        (:func:`mtrec.features.quantile_boundaries`).
      keep_value: with buckets, feed the (z-scored) value beside the bucket
        embedding. Default ``False``: the embedding alone.
      embedding_dim: width of the bucket embedding. Default 8.
      fill_value: value used for a missing cell; ``None`` (default) makes a
        missing value an error.
    """

    name: str
    log1p: bool = False
    normalization: str = "zscore"
    boundaries: tuple | None = None
    num_buckets: int | None = None
    keep_value: bool = False
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
        if not isinstance(self.keep_value, bool):
            raise ValueError(
                f"Feature {self.name!r}: `keep_value` must be a boolean. "
                f"Received: `keep_value={self.keep_value!r}`"
            )
        if self.keep_value and not self.bucketized:
            raise ValueError(
                f"Feature {self.name!r}: `keep_value` keeps the value beside the "
                "bucket embedding; give `boundaries` or `num_buckets` with it. "
                f"Received: `keep_value=True` without buckets."
            )
        check_positive(self, "embedding_dim")
        if self.fill_value is not None and not math.isfinite(float(self.fill_value)):
            raise ValueError(
                f"Feature {self.name!r}: `fill_value` must be finite. "
                f"Received: `fill_value={self.fill_value!r}`"
            )

    @property
    def bucketized(self) -> bool:
        return self.boundaries is not None or self.num_buckets is not None

    @property
    def has_value(self) -> bool:
        """Whether the model input holds the (z-scored) value."""
        return self.keep_value or not self.bucketized

    def to_dict(self) -> dict:
        return spec_to_dict(self)
