"""The features of a model, declared once: inputs, columns and tables follow."""

import dataclasses
import os
from collections.abc import Iterator
from collections.abc import Sequence

import tensorflow as tf
import yaml

from mtrec.data.schema import ColumnSchema
from mtrec.features.categorical import CategoricalFeature
from mtrec.features.dense import DenseFeature
from mtrec.features.multi_valued import MultiValuedFeature

FeatureSpec = CategoricalFeature | MultiValuedFeature | DenseFeature

#: Spec class for each ``kind`` accepted in YAML.
FEATURE_KINDS: dict[str, type] = {
    "categorical": CategoricalFeature,
    "multi_valued": MultiValuedFeature,
    "dense": DenseFeature,
}


class FeatureSet:
    """An ordered, validated collection of feature specs.

    Declaring a feature once defines the model input (name and dtype), the
    click-log column the reader validates, and the embedding table it uses.

    Args:
      features: the specs, in input order. Names must be unique; features
        sharing a ``table`` must agree on its dtype, width and vocabulary.

    Example:

    >>> fs = FeatureSet.from_dicts([
    ...     {"name": "item_id", "kind": "categorical", "dtype": "int64"},
    ...     {"name": "price", "kind": "dense", "log1p": True},
    ... ])
    >>> fs.names
    ['item_id', 'price']
    """

    def __init__(self, features: Sequence[FeatureSpec]):
        features = list(features)
        if not features:
            raise ValueError("A FeatureSet needs at least one feature. Received: []")
        seen: dict[str, FeatureSpec] = {}
        for spec in features:
            if spec.name in seen:
                raise ValueError(f"Feature name {spec.name!r} is declared twice.")
            seen[spec.name] = spec
        self._features = features
        self._by_name = seen
        self._tables = self._group_tables()
        self._check_queries()

    def _group_tables(self) -> dict[str, list[CategoricalFeature]]:
        tables: dict[str, list[CategoricalFeature]] = {}
        for spec in self.categorical:
            members = tables.setdefault(spec.table_name, [])
            if members and members[0].table_key != spec.table_key:
                first = members[0]
                raise ValueError(
                    f"Features {first.name!r} and {spec.name!r} share the embedding "
                    f"table {spec.table_name!r} but disagree on its dtype, "
                    "embedding_dim, vocabulary or hashing; shared tables need "
                    "identical settings."
                )
            members.append(spec)
        return tables

    def _check_queries(self) -> None:
        for spec in self._features:
            query = getattr(spec, "query", None)
            if query is None:
                continue
            target = self._by_name.get(query)
            if (
                not isinstance(target, CategoricalFeature)
                or isinstance(target, MultiValuedFeature)
                or (
                    spec.pooling == "attention"
                    and target.embedding_dim != spec.embedding_dim
                )
                or (spec.query_match and target.dtype != spec.dtype)
            ):
                raise ValueError(
                    f"Feature {spec.name!r}: the attention `query` {query!r} must be "
                    "a single-valued categorical feature of this FeatureSet with "
                    f"the same dtype ({spec.dtype!r}) for `query_match` and the "
                    f"same embedding_dim ({spec.embedding_dim}) for attention "
                    "pooling. Received: "
                    + (
                        "no such feature"
                        if target is None
                        else f"a {target.kind} feature"
                        + (
                            f" of dtype {target.dtype!r} with embedding_dim "
                            f"{target.embedding_dim}"
                            if isinstance(target, CategoricalFeature)
                            else ""
                        )
                    )
                )

    @classmethod
    def from_dicts(
        cls, entries: Sequence[dict], source: str = "features"
    ) -> "FeatureSet":
        """Builds a FeatureSet from YAML-style dicts with a ``kind`` key."""
        if not isinstance(entries, (list, tuple)):
            raise ValueError(
                f"{source}: expected a list of features, got {type(entries).__name__}"
            )
        specs = []
        for i, entry in enumerate(entries):
            where = f"{source}, feature #{i + 1}"
            if not isinstance(entry, dict) or "name" not in entry:
                raise ValueError(
                    f"{where}: each feature needs a `name`. Received: {entry!r}"
                )
            entry = dict(entry)
            kind = entry.pop("kind", "categorical")
            where = f"{source}, feature {entry['name']!r}"
            if kind not in FEATURE_KINDS:
                raise ValueError(
                    f"{where}: unknown kind {kind!r};"
                    f" expected one of {sorted(FEATURE_KINDS)}"
                )
            spec_cls = FEATURE_KINDS[kind]
            valid = {f.name for f in dataclasses.fields(spec_cls)}
            unknown = sorted(set(entry) - valid)
            if unknown:
                raise ValueError(
                    f"{where}: unknown field(s) {unknown} for kind {kind!r}; "
                    f"valid fields: {sorted(valid)}"
                )
            try:
                specs.append(spec_cls(**entry))
            except (TypeError, ValueError) as err:
                # The spec's own message already starts "Feature 'name': ".
                reason = str(err).removeprefix(f"Feature {entry['name']!r}: ")
                raise ValueError(f"{where}: {reason}") from err
        try:
            return cls(specs)
        except ValueError as err:  # e.g. a name declared twice
            raise ValueError(f"{source}: {err}") from err

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> "FeatureSet":
        """Reads a YAML file holding a list of features (or ``{features: [...]}``)."""
        with open(path) as f:
            loaded = yaml.safe_load(f)
        if isinstance(loaded, dict) and "features" in loaded:
            loaded = loaded["features"]
        return cls.from_dicts(loaded, source=str(path))

    def to_dicts(self) -> list[dict]:
        return [spec.to_dict() for spec in self._features]

    def __iter__(self) -> Iterator[FeatureSpec]:
        return iter(self._features)

    def __len__(self) -> int:
        return len(self._features)

    def __getitem__(self, name: str) -> FeatureSpec:
        return self._by_name[name]

    @property
    def names(self) -> list[str]:
        return [spec.name for spec in self._features]

    @property
    def categorical(self) -> list[CategoricalFeature]:
        """Single- and multi-valued categorical specs, in input order."""
        return [s for s in self._features if isinstance(s, CategoricalFeature)]

    @property
    def dense(self) -> list[DenseFeature]:
        return [s for s in self._features if isinstance(s, DenseFeature)]

    @property
    def uncompilable(self) -> list[str]:
        """Names of the features XLA (``jit_compile``) cannot compile, in
        input order: categorical features that need a vocabulary or hash
        lookup (not ``num_ids``) and multi-valued ones (string splitting).
        Dense features and single-valued encoded ids compile.

        Example:

        >>> FeatureSet.from_dicts([
        ...     {"name": "age", "dtype": "int64", "num_ids": 5},
        ...     {"name": "city", "kind": "categorical"},
        ...     {"name": "price", "kind": "dense"},
        ... ]).uncompilable
        ['city']
        """
        return [
            spec.name
            for spec in self.categorical
            if not spec.encoded or isinstance(spec, MultiValuedFeature)
        ]

    @property
    def tables(self) -> dict[str, list[CategoricalFeature]]:
        """Embedding table name -> the features reading it."""
        return {name: list(members) for name, members in self._tables.items()}

    def input_dtype(self, name: str) -> tf.DType:
        """Dtype of the raw model input for a feature."""
        spec = self._by_name[name]
        if isinstance(spec, DenseFeature):
            return tf.float32
        if isinstance(spec, MultiValuedFeature) or spec.dtype == "string":
            return tf.string
        return tf.int64

    def input_signature(self) -> dict[str, tf.TensorSpec]:
        """``{name: TensorSpec([None], dtype, name)}``: the raw serving inputs."""
        return {
            name: tf.TensorSpec([None], self.input_dtype(name), name=name)
            for name in self.names
        }

    def column_schema(
        self,
        label_columns: Sequence[str] = (),
        regression_label_columns: Sequence[str] = (),
        passthrough_columns: dict[str, str] | None = None,
        label_requires: dict[str, str] | None = None,
        on_label_violation: str = "error",
    ) -> ColumnSchema:
        """The reader contract: these features plus the given labels."""
        passthrough = {
            k: v
            for k, v in (passthrough_columns or {}).items()
            if k not in self._by_name
        }
        return ColumnSchema(
            string_columns=tuple(
                s.name
                for s in self.categorical
                if self.input_dtype(s.name) == tf.string
            ),
            int_columns=tuple(
                s.name for s in self.categorical if self.input_dtype(s.name) == tf.int64
            ),
            float_columns={s.name: s.fill_value for s in self.dense},
            label_columns=tuple(dict.fromkeys(label_columns)),
            regression_label_columns=tuple(dict.fromkeys(regression_label_columns)),
            passthrough_columns=passthrough,
            label_requires=dict(label_requires or {}),
            on_label_violation=on_label_violation,
        )
