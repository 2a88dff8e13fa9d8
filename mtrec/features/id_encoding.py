"""Raw categorical values encoded to table rows ahead of training.

A single-valued categorical feature with a vocabulary or hash lookup costs the
model one lookup per step. :class:`IdEncoder` does the same lookups once, on
the input side (``train.encode_ids`` runs it over the prepared train shards),
and stores each feature's rows under :func:`row_ids_key`. Given such a column,
:class:`~mtrec.features.FeatureEmbedding` skips the lookup and embeds the
rows as they are (range-checked); given the raw column, it looks it up as
before. The model's variables and serving graph are the same either way, so
a model trained on encoded rows is exported and served on raw values.
"""

import hashlib
import json
import pathlib
from collections.abc import Mapping

import tensorflow as tf

from mtrec.features.feature_set import FeatureSet
from mtrec.features.input_lookups import table_lookups
from mtrec.features.multi_valued import MultiValuedFeature

#: Suffix of the column that holds a feature's encoded table rows.
ROW_IDS_SUFFIX = "__row_ids"


def row_ids_key(name: str) -> str:
    """The column holding feature ``name``'s table rows (``<name>__row_ids``).

    Example:

    >>> row_ids_key("city")
    'city__row_ids'
    """
    return f"{name}{ROW_IDS_SUFFIX}"


def encodable_features(feature_set: FeatureSet) -> list[str]:
    """The features :class:`IdEncoder` encodes, in input order.

    Single-valued categorical features with a vocabulary or hash lookup,
    except one that is a multi-valued feature's ``query`` (its raw value is
    compared with the tokens, so it must stay raw). Encoded ids
    (``num_ids``) need no lookup; multi-valued features keep their tokens.

    Example:

    >>> encodable_features(FeatureSet.from_dicts([
    ...     {"name": "city", "kind": "categorical"},
    ...     {"name": "age", "dtype": "int64", "num_ids": 5},
    ...     {"name": "tags", "kind": "multi_valued"},
    ...     {"name": "price", "kind": "dense"},
    ... ]))
    ['city']
    """
    queries = {
        spec.query
        for spec in feature_set.categorical
        if isinstance(spec, MultiValuedFeature) and spec.query is not None
    }
    return [
        spec.name
        for spec in feature_set.categorical
        if not spec.encoded
        and not isinstance(spec, MultiValuedFeature)
        and spec.name not in queries
    ]


def check_row_ids_keys(feature_set: FeatureSet, columns) -> None:
    """Raises if a feature or column already uses a :func:`row_ids_key` name."""
    for name in encodable_features(feature_set):
        key = row_ids_key(name)
        if key in feature_set.names or key in columns:
            raise ValueError(
                f"Cannot encode feature {name!r}: the column {key!r} it would be "
                "stored in is already an input; rename one of them."
            )


class IdEncoder:
    """Maps the raw values of the encodable features to their table rows.

    ``encoder(columns)`` returns ``columns`` with each encodable feature's raw
    column ``f`` replaced by ``row_ids_key(f)``: int64 rows of ``f``'s table,
    exactly as the model's lookup computes them (the same
    ``StringLookup`` / ``IntegerLookup`` / ``Hashing`` built from the same
    vocabularies). Other columns pass through; a column already named like an
    encoded one is refused (:func:`check_row_ids_keys`). Runs in graph mode,
    e.g. in a ``tf.data`` map.

    Args:
      feature_set: the model's features.
      vocabularies: ``{table: tokens or vocabulary file}``, as the model gets
        them (``Prepared.vocabulary_files``).

    Attributes:
      names: the encoded features (:func:`encodable_features`).
      fingerprint: hex SHA-256 of the encoded features' specifications and
        their tables' vocabularies: equal fingerprints encode alike.

    Example:

    >>> features = FeatureSet.from_dicts([{"name": "city", "kind": "categorical"}])
    >>> encoder = IdEncoder(features, {"city": ["paris", "rome"]})
    >>> out = encoder({"city": tf.constant(["rome", "oslo"]), "click": [1, 0]})
    >>> sorted(out), out["city__row_ids"].numpy().tolist()
    (['city__row_ids', 'click'], [2, 0])
    """

    def __init__(self, feature_set: FeatureSet, vocabularies: Mapping):
        self.names = tuple(encodable_features(feature_set))
        check_row_ids_keys(feature_set, ())
        self._feature_set = feature_set
        lookups, _ = table_lookups(feature_set, dict(vocabularies))
        self._lookups = {
            name: lookups[feature_set[name].table_name] for name in self.names
        }
        self.fingerprint = _fingerprint(feature_set, self.names, vocabularies)

    def __call__(self, columns: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        check_row_ids_keys(self._feature_set, columns)
        out = {}
        for key, values in columns.items():
            if key in self._lookups:
                out[row_ids_key(key)] = tf.cast(self._lookups[key](values), tf.int64)
            else:
                out[key] = values
        return out


def _fingerprint(feature_set: FeatureSet, names, vocabularies: Mapping) -> str:
    specs = {s["name"]: s for s in feature_set.to_dicts()}
    digest = hashlib.sha256()
    digest.update(json.dumps([specs[n] for n in names], sort_keys=True).encode())
    for table in sorted({feature_set[n].table_name for n in names}):
        tokens = vocabularies.get(table)
        if isinstance(tokens, str | pathlib.Path):
            content = pathlib.Path(tokens).read_bytes()
        else:
            content = json.dumps(tokens, default=str).encode()
        digest.update(table.encode() + b"\0" + hashlib.sha256(content).digest())
    return digest.hexdigest()
