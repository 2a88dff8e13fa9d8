"""Fitting vocabularies and dense statistics on the train split."""

import collections
import dataclasses
import json
import logging
import os
import pathlib
import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

from mtrec.features.dense_statistics import DenseStatistics
from mtrec.features.feature_set import FeatureSet
from mtrec.features.multi_valued import MultiValuedFeature
from mtrec.features.tokens import token_array
from mtrec.features.vocabulary_fit import vocabulary_tokens
from mtrec.progress import progress

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class PreprocessingState:
    """What preprocessing learns from the train split.

    Attributes:
      vocabularies: table name -> tokens, most frequent first (only tables that
        use a vocabulary).
      dense: feature name -> ``{"mean", "std", "boundaries", "min", "max"}`` on the
        transformed scale.
    """

    vocabularies: dict[str, list] = dataclasses.field(default_factory=dict)
    dense: dict[str, dict] = dataclasses.field(default_factory=dict)

    def save(self, directory: str | os.PathLike) -> dict[str, str]:
        """Writes ``vocab/<table>.txt`` and ``dense_stats.json``.

        Returns:
          Table name -> absolute path of its vocabulary file.
        """
        directory = pathlib.Path(directory)
        (directory / "vocab").mkdir(parents=True, exist_ok=True)
        files = {}
        for table, tokens in self.vocabularies.items():
            path = (directory / "vocab" / f"{_safe_filename(table)}.txt").resolve()
            path.write_text("".join(f"{t}\n" for t in tokens), encoding="utf-8")
            files[table] = str(path)
        with open(directory / "dense_stats.json", "w") as f:
            json.dump(self.dense, f, indent=2, sort_keys=True)
        with open(directory / "vocab" / "index.json", "w") as f:
            json.dump({t: pathlib.Path(p).name for t, p in files.items()}, f, indent=2)
        return files

    @staticmethod
    def vocabulary_files(directory: str | os.PathLike) -> dict[str, str]:
        """Table name -> absolute path of the vocabulary files ``save`` wrote."""
        vocab = pathlib.Path(directory).resolve() / "vocab"
        with open(vocab / "index.json") as f:
            return {table: str(vocab / name) for table, name in json.load(f).items()}

    @classmethod
    def load(
        cls, directory: str | os.PathLike, feature_set: FeatureSet
    ) -> "PreprocessingState":
        directory = pathlib.Path(directory)
        with open(directory / "vocab" / "index.json") as f:
            index = json.load(f)
        vocabularies = {}
        for table, filename in index.items():
            dtype = feature_set.tables[table][0].dtype
            lines = (
                (directory / "vocab" / filename)
                .read_text(encoding="utf-8")
                .splitlines()
            )
            vocabularies[table] = [int(t) for t in lines] if dtype == "int64" else lines
        with open(directory / "dense_stats.json") as f:
            dense = json.load(f)
        return cls(vocabularies=vocabularies, dense=dense)


def _safe_filename(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _tokens(values: np.ndarray, spec) -> pd.Series:
    if isinstance(spec, MultiValuedFeature):
        # The model's own tokeniser: fitted tokens are the served tokens.
        return pd.Series(
            token_array(values, spec.separator, spec.max_length, spec.dtype)
        )
    series = pd.Series(values, dtype=object)
    if spec.dtype == "string":
        series = series[series != ""]
    return series


def _check_encoded_ids(spec, values: np.ndarray, first_row: int) -> None:
    """Raises on the first id outside ``[0, num_ids)`` of an encoded feature."""
    ids = _tokens(values, spec)
    ids = pd.to_numeric(ids, errors="raise").astype("int64")
    outside = ids[(ids < 0) | (ids >= spec.num_ids)]
    if len(outside):
        raise ValueError(
            f"Feature {spec.name!r}: encoded id {int(outside.iloc[0])} at row "
            f"{first_row + int(outside.index[0]) + 1} of the train split is outside "
            f"[0, {spec.num_ids}) (`num_ids={spec.num_ids}`); encode it upstream or "
            "raise `num_ids`."
        )


def fit_preprocessing(
    feature_set: FeatureSet, chunks: Iterable[dict[str, np.ndarray]], seed: int
) -> PreprocessingState:
    """One streaming pass over the train split: vocabularies and dense statistics.

    Vocabularies are fitted for every table without a given vocabulary
    (``min_count`` and ``max_vocabulary_size`` applied, most frequent first,
    ties by token); given vocabularies (inline or file) are read as they are.
    Encoded ids (``num_ids``) need no vocabulary; every value is checked to
    lie in ``[0, num_ids)`` and the first one outside is an error naming the
    feature, the value and its row (counting from 1) in the train split.
    Dense features get the mean and standard deviation of the transformed value
    and, with ``num_buckets``, quantile boundaries from a uniform sample.

    Args:
      feature_set: the features.
      chunks: column dicts as yielded by ``mtrec.data.reader.iter_chunks``.
      seed: seed of the quantile sample.

    Returns:
      The fitted ``PreprocessingState``.
    """
    rng = np.random.default_rng(seed)
    to_fit = {
        table: members
        for table, members in feature_set.tables.items()
        if members[0].uses_vocabulary
        and members[0].vocabulary is None
        and members[0].vocabulary_file is None
    }
    counts: dict[str, collections.Counter] = {t: collections.Counter() for t in to_fit}
    dense = {spec.name: DenseStatistics(spec, rng) for spec in feature_set.dense}
    encoded = [spec for spec in feature_set.categorical if spec.encoded]
    rows = 0
    for chunk in progress(chunks, "fitting vocabularies and statistics", unit="chunk"):
        first_row = rows
        rows += len(next(iter(chunk.values()))) if chunk else 0
        for spec in encoded:
            _check_encoded_ids(spec, chunk[spec.name], first_row)
        for table, members in to_fit.items():
            for spec in members:
                counts[table].update(
                    _tokens(chunk[spec.name], spec).value_counts().to_dict()
                )
        for name, statistics in dense.items():
            statistics.add(chunk[name])
    if rows == 0:
        raise ValueError("Cannot fit preprocessing: the train split has no rows.")
    return PreprocessingState(
        vocabularies={
            table: vocabulary_tokens(table, members[0], counts.get(table))
            for table, members in feature_set.tables.items()
            if members[0].uses_vocabulary
        },
        dense={name: statistics.result() for name, statistics in dense.items()},
    )
