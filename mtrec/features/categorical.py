"""Specification of a single-valued categorical feature."""

import dataclasses

from mtrec.features._spec_utils import check_name
from mtrec.features._spec_utils import check_positive
from mtrec.features._spec_utils import spec_to_dict

_DTYPES = ("string", "int64")


@dataclasses.dataclass(frozen=True)
class CategoricalFeature:
    """A categorical id embedded through a vocabulary or a hash.

    With a vocabulary, id ``v`` maps to ``num_oov_buckets + rank(v)``; ids
    outside the vocabulary (and the empty string, a missing value) hash into
    one of ``num_oov_buckets`` out-of-vocabulary rows. With ``hash_bins`` the
    id maps to ``farmhash64(v) mod hash_bins`` and no vocabulary is needed.
    With ``num_ids`` the raw value already is the row: an int64 id in
    ``[0, num_ids)`` encoded upstream, embedded without any lookup (no
    vocabulary, no OOV row); an id outside the range is an error, raised
    when preprocessing is fitted and by the model (``tf.debugging``), never
    clipped. In YAML::

        - {name: age_bucket, dtype: int64, num_ids: 50}

    Attributes:
      name: column name in the click log and input name of the model.
      dtype: ``"string"`` (default) or ``"int64"``: the raw value type, as
        files and the serving signatures hold it. The model takes an
        ``"int64"`` feature's ids as any integer tensor (an in-memory
        ``int32`` column too), cast to ``int64`` in its graph; a tensor of
        another kind is refused (``mtrec.features.input_dtypes``).
      embedding_dim: width of the embedding. Default 16.
      vocabulary: the vocabulary, given inline (most frequent first).
      vocabulary_file: a text file with one token per line.
      min_count: when the vocabulary is fitted on the train split, the
        minimum number of occurrences a token needs. Default 1.
      max_vocabulary_size: keep at most this many most frequent tokens.
      num_oov_buckets: out-of-vocabulary rows. Default 1.
      hash_bins: hash into this many bins instead of using a vocabulary.
      num_ids: the raw values are already ids ``0 .. num_ids - 1`` (dtype
        ``int64``): no vocabulary, no lookup, no OOV bucket. Excludes
        ``vocabulary``, ``vocabulary_file``, ``hash_bins`` and the vocabulary
        fitting options (``min_count``, ``max_vocabulary_size``,
        ``num_oov_buckets``).
      table: name of the embedding table; features naming the same table share
        its vocabulary and its embedding. Default: the feature's own name.
    """

    name: str
    dtype: str = "string"
    embedding_dim: int = 16
    vocabulary: tuple | None = None
    vocabulary_file: str | None = None
    min_count: int = 1
    max_vocabulary_size: int | None = None
    num_oov_buckets: int = 1
    hash_bins: int | None = None
    table: str | None = None
    num_ids: int | None = None

    kind = "categorical"

    def __post_init__(self):
        check_name(self)
        if self.dtype not in _DTYPES:
            raise ValueError(
                f"Feature {self.name!r}: `dtype` must be one of {_DTYPES}. "
                f"Received: `dtype={self.dtype!r}`"
            )
        check_positive(self, "embedding_dim")
        check_positive(self, "min_count")
        check_positive(self, "num_oov_buckets")
        if self.max_vocabulary_size is not None:
            check_positive(self, "max_vocabulary_size")
        if self.hash_bins is not None:
            check_positive(self, "hash_bins")
            if self.vocabulary is not None or self.vocabulary_file is not None:
                raise ValueError(
                    f"Feature {self.name!r}: give either `hash_bins` or a vocabulary, "
                    "not both."
                )
        if self.num_ids is not None:
            self._check_encoded()
        if self.vocabulary is not None and self.vocabulary_file is not None:
            raise ValueError(
                f"Feature {self.name!r}: give either `vocabulary` or "
                "`vocabulary_file`, not both."
            )
        if self.vocabulary is not None:
            object.__setattr__(self, "vocabulary", tuple(self.vocabulary))
            if not self.vocabulary:
                raise ValueError(
                    f"Feature {self.name!r}: `vocabulary` must not be empty."
                )

    def _check_encoded(self) -> None:
        check_positive(self, "num_ids")
        if self.dtype != "int64":
            raise ValueError(
                f"Feature {self.name!r}: `num_ids` declares encoded integer ids, "
                f"so `dtype` must be 'int64'. Received: `dtype={self.dtype!r}`"
            )
        given = [
            f"`{attr}={getattr(self, attr)!r}`"
            for attr, default in (
                ("vocabulary", None),
                ("vocabulary_file", None),
                ("hash_bins", None),
                ("min_count", 1),
                ("max_vocabulary_size", None),
                ("num_oov_buckets", 1),
            )
            if getattr(self, attr) != default
        ]
        if given:
            raise ValueError(
                f"Feature {self.name!r}: `num_ids` (encoded ids, no lookup) excludes "
                "vocabularies, hashing and out-of-vocabulary buckets. Received: "
                + ", ".join(given)
            )

    @property
    def table_name(self) -> str:
        """The embedding table this feature reads."""
        return self.table or self.name

    @property
    def uses_vocabulary(self) -> bool:
        return self.hash_bins is None and self.num_ids is None

    @property
    def encoded(self) -> bool:
        """Whether the raw values are already ids in ``[0, num_ids)``."""
        return self.num_ids is not None

    @property
    def table_key(self) -> tuple:
        """Everything features sharing a table must agree on."""
        return (
            self.dtype,
            self.embedding_dim,
            self.vocabulary,
            self.vocabulary_file,
            self.min_count,
            self.max_vocabulary_size,
            self.num_oov_buckets,
            self.hash_bins,
            self.num_ids,
        )

    def to_dict(self) -> dict:
        return spec_to_dict(self)
