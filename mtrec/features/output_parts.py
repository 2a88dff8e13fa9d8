"""The parts of a FeatureEmbedding's output, their order and width, as runs."""

from mtrec.features.dense import DenseFeature
from mtrec.features.feature_set import FeatureSet
from mtrec.features.multi_valued import MultiValuedFeature

#: ``FeatureEmbedding(output_order=...)`` values.
OUTPUT_ORDERS = ("grouped", "features")
#: The key of the dense block among the gathered blocks (theirs are widths
#: or feature names).
DENSE_BLOCK = ("dense",)


def output_width(feature_set: FeatureSet) -> int:
    """The output's columns: per feature its embedding (bucketised dense:
    its bucket embedding), its value (a dense feature with one) and its
    ``query_match`` count (a multi-valued feature with one).

    Example:

    >>> output_width(FeatureSet.from_dicts([
    ...     {"name": "city", "kind": "categorical", "embedding_dim": 4},
    ...     {"name": "age", "kind": "dense", "boundaries": [18.0],
    ...      "keep_value": True, "embedding_dim": 2}]))
    7
    """
    dim = 0
    for spec in feature_set:
        if isinstance(spec, DenseFeature):
            dim += spec.embedding_dim * spec.bucketized + spec.has_value
        else:
            dim += spec.embedding_dim + int(getattr(spec, "query_match", False))
    return dim


def output_parts(
    feature_set: FeatureSet, gathered: dict[int, list[str]], output_order: str
) -> list[tuple]:
    """The output's parts in order (``output_order``): ``(spec, part)``
    with ``part`` ``"embedding"`` (a gathered row: a categorical or
    bucketised dense feature), ``"value"`` (a dense feature's value) or
    ``"pooled"`` (a multi-valued feature). ``gathered``: width -> the
    features of its gather (``TableLayout.gathered``), whose rows come first
    when ``"grouped"``.

    Example:

    >>> features = FeatureSet.from_dicts([
    ...     {"name": "price", "kind": "dense"},
    ...     {"name": "city", "kind": "categorical", "embedding_dim": 4}])
    >>> [(s.name, p) for s, p in output_parts(features, {4: ["city"]}, "grouped")]
    [('city', 'embedding'), ('price', 'value')]
    """

    def own_parts(spec, with_rows: bool) -> list[tuple]:
        # with_rows: the gathered rows are listed here, not up front.
        if isinstance(spec, MultiValuedFeature):
            return [(spec, "pooled")]
        if not isinstance(spec, DenseFeature):
            return [(spec, "embedding")] if with_rows else []
        return [(spec, "embedding")] * (with_rows and spec.bucketized) + [
            (spec, "value")
        ] * spec.has_value

    if output_order == "features":
        return [part for spec in feature_set for part in own_parts(spec, True)]
    gathered_names = [n for names in gathered.values() for n in names]
    rest = [part for spec in feature_set for part in own_parts(spec, False)]
    return [(feature_set[name], "embedding") for name in gathered_names] + rest


def output_runs(parts: list[tuple], where: dict, values: dict) -> list:
    """The output as runs of block columns: consecutive columns of one block
    become one run ``[key, start, stop]`` (cut by
    :func:`~mtrec.features.column_blocks.split_runs`); a ``"pooled"`` part
    is its spec, in its place.

    Args:
      parts: :func:`output_parts`.
      where: feature name -> ``(block key, column)`` of its gathered row.
      values: feature name -> ``(block key, column)`` of its dense value.

    Example:

    >>> features = FeatureSet.from_dicts([
    ...     {"name": "city", "embedding_dim": 4}, {"name": "shop", "embedding_dim": 4},
    ...     {"name": "tags", "kind": "multi_valued"}])
    >>> parts = output_parts(features, {4: ["city", "shop"]}, "features")
    >>> runs = output_runs(parts, {"city": (4, 0), "shop": (4, 1)}, {})
    >>> runs[0], runs[1].name
    ([4, 0, 2], 'tags')
    """
    runs: list = []
    for spec, part in parts:
        if part == "pooled":
            runs.append(spec)
            continue
        key, column = (values if part == "value" else where)[spec.name]
        last = runs[-1] if runs else None
        if isinstance(last, list) and last[0] == key and last[2] == column:
            last[2] = column + 1
        else:
            runs.append([key, column, column + 1])
    return runs
