"""Where each logical embedding table's rows sit: one variable per width."""

import dataclasses

from mtrec.features.dense import DenseFeature
from mtrec.features.feature_set import FeatureSet
from mtrec.features.multi_valued import MultiValuedFeature


@dataclasses.dataclass(frozen=True)
class RowSpace:
    """One logical embedding table: ``rows`` x ``dim``, from row ``offset`` of
    its width's fused table (0 when unfused)."""

    rows: int
    dim: int
    offset: int


@dataclasses.dataclass
class TableLayout:
    """The logical tables of a :class:`FeatureEmbedding` and its gathers.

    ``spaces``: table name -> :class:`RowSpace`, in the order added.
    ``widths``: embedding width ``d`` -> the rows of the fused table ``W_d``
    (the sum of its spaces' rows). ``gathered``: width -> the single-valued
    features read by that width's one gather, in feature order.

    Plain (untracked) bookkeeping: a Keras layer would try to checkpoint
    dicts held directly as its attributes.

    Example:

    >>> layout = TableLayout(fused=True)
    >>> layout.add("city", rows=5, dim=4)
    >>> layout.add("shop", rows=3, dim=4)
    >>> layout.spaces["shop"], layout.widths
    (RowSpace(rows=3, dim=4, offset=5), {4: 8})
    """

    fused: bool = True
    spaces: dict[str, RowSpace] = dataclasses.field(default_factory=dict)
    widths: dict[int, int] = dataclasses.field(default_factory=dict)
    gathered: dict[int, list[str]] = dataclasses.field(default_factory=dict)

    def add(self, name: str, rows: int, dim: int) -> None:
        """Appends table ``name`` to the fused table of width ``dim``."""
        offset = self.widths.get(dim, 0) if self.fused else 0
        self.spaces[name] = RowSpace(rows=rows, dim=dim, offset=offset)
        self.widths[dim] = self.widths.get(dim, 0) + rows


def gathered_features(feature_set: FeatureSet) -> dict[int, list[str]]:
    """Width -> the features read by that width's one gather, in feature order:
    the single-valued categorical features and the bucketised dense ones.

    Example:

    >>> features = FeatureSet.from_dicts([
    ...     {"name": "city", "kind": "categorical", "embedding_dim": 4},
    ...     {"name": "price", "kind": "dense"},
    ...     {"name": "age", "kind": "dense", "boundaries": [18.0], "embedding_dim": 4}])
    >>> gathered_features(features)
    {4: ['city', 'age']}
    """
    gathered: dict[int, list[str]] = {}
    for spec in feature_set:
        if isinstance(spec, MultiValuedFeature):
            continue
        if isinstance(spec, DenseFeature) and not spec.bucketized:
            continue
        gathered.setdefault(spec.embedding_dim, []).append(spec.name)
    return gathered
