"""Specification of a multi-valued (sequence) categorical feature."""

import dataclasses

from mtrec.features._spec_utils import check_positive
from mtrec.features.categorical import CategoricalFeature

POOLINGS = ("mean", "sum", "max", "sqrtn")


@dataclasses.dataclass(frozen=True)
class MultiValuedFeature(CategoricalFeature):
    """A delimiter-separated list of ids, embedded and pooled to one vector.

    The raw value is a string such as ``"c3|c17|c5"``; empty tokens are
    dropped. With token embeddings ``e_1..e_n`` the pooled vector is
    ``sum = Σ e_i``, ``mean = Σ e_i / n``, ``sqrtn = Σ e_i / sqrt(n)`` or
    ``max = max_i e_i`` (element-wise); an empty list gives the zero vector.

    Attributes (besides those of ``CategoricalFeature``):
      separator: token delimiter. Default ``"|"``.
      pooling: one of ``mean`` (default), ``sum``, ``max``, ``sqrtn``.
      max_length: keep only the first ``max_length`` tokens.
    """

    separator: str = "|"
    pooling: str = "mean"
    max_length: int | None = None

    kind = "multi_valued"

    def __post_init__(self):
        super().__post_init__()
        if not self.separator:
            raise ValueError(f"Feature {self.name!r}: `separator` must not be empty.")
        if self.pooling not in POOLINGS:
            raise ValueError(
                f"Feature {self.name!r}: `pooling` must be one of {POOLINGS}. "
                f"Received: `pooling={self.pooling!r}`"
            )
        if self.max_length is not None:
            check_positive(self, "max_length")
