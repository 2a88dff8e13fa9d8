"""Specification of a multi-valued (sequence) categorical feature."""

import dataclasses

from mtrec.features._spec_utils import check_positive
from mtrec.features.categorical import CategoricalFeature

POOLINGS = ("mean", "sum", "max", "sqrtn", "attention")


@dataclasses.dataclass(frozen=True)
class MultiValuedFeature(CategoricalFeature):
    """A delimiter-separated list of ids, embedded and pooled to one vector.

    The raw value is a string such as ``"c3|c17|c5"``; empty tokens are
    dropped. With token embeddings ``e_1..e_n`` the pooled vector is
    ``sum = Σ e_i``, ``mean = Σ e_i / n``, ``sqrtn = Σ e_i / sqrt(n)`` or
    ``max = max_i e_i`` (element-wise); an empty list gives the zero vector.
    ``attention`` pools by relevance to the embedding ``q`` of another
    (single-valued categorical) feature, the candidate: ``Σ a(q, e_i) e_i``
    with DIN's activation unit ``a`` (see ``mtrec.layers.TargetAttention``).

    Attributes (besides those of ``CategoricalFeature``):
      separator: token delimiter. Default ``"|"``.
      pooling: one of ``mean`` (default), ``sum``, ``max``, ``sqrtn``.
      max_length: keep only the first ``max_length`` tokens.
      query: with ``pooling="attention"``, the name of the categorical feature
        whose embedding is the attention query (same ``embedding_dim``;
        usually one sharing this feature's table, e.g. ``item_category`` for
        ``recent_categories``).
      attention_units: hidden sizes of the attention MLP. Default ``(32,)``.
      query_match: append one more column, the number of tokens equal to the
        raw value of ``query`` (``Σ_i 1[token_i == x_query]``): the exact
        "candidate seen in the history" signal, which an MLP over pooled
        embeddings only approximates. Needs ``query`` (any pooling).
    """

    separator: str = "|"
    pooling: str = "mean"
    max_length: int | None = None
    query: str | None = None
    attention_units: tuple = (32,)
    query_match: bool = False

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
        uses_query = self.pooling == "attention" or self.query_match
        if uses_query != (self.query is not None):
            raise ValueError(
                f"Feature {self.name!r}: `pooling='attention'` and "
                "`query_match=True` need a `query` feature, and `query` is only "
                "used by them. Received: "
                f"`pooling={self.pooling!r}`, `query_match={self.query_match!r}`, "
                f"`query={self.query!r}`"
            )
        units = self.attention_units
        if (
            not isinstance(units, (list, tuple))
            or not units
            or any(
                not isinstance(u, int) or isinstance(u, bool) or u < 1 for u in units
            )
        ):
            raise ValueError(
                f"Feature {self.name!r}: `attention_units` must be a non-empty "
                f"list of positive integers. Received: {self.attention_units!r}"
            )
        object.__setattr__(self, "attention_units", tuple(units))
