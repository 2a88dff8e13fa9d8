"""A table's vocabulary: given (inline or in a file) or fitted on token counts."""

import collections
import logging
import pathlib

logger = logging.getLogger(__name__)

#: The token each dtype's lookup reserves for missing values; never fitted.
RESERVED_TOKENS = {"string": "[UNK]", "int64": -1}


def vocabulary_tokens(table: str, spec, counts: collections.Counter | None) -> list:
    """The tokens of ``table``, whose first feature is ``spec``.

    A given vocabulary (``vocabulary`` or ``vocabulary_file``) as it is;
    otherwise the tokens of ``counts`` (the train split's) seen at least
    ``min_count`` times, most frequent first (ties by token), at most
    ``max_vocabulary_size``. When no token reaches ``min_count`` the most
    frequent one is kept (a lookup table cannot be empty), with a warning.

    Raises:
      ValueError: no token at all (every value missing in the train split),
        or a string token holding a newline (vocabulary files are one token
        per line).

    >>> from mtrec.features import CategoricalFeature
    >>> spec = CategoricalFeature("city", min_count=2)
    >>> vocabulary_tokens("city", spec, collections.Counter(b=3, a=3, c=1))
    ['a', 'b']
    """
    if spec.vocabulary is not None:
        tokens = list(spec.vocabulary)
    elif spec.vocabulary_file is not None:
        text = pathlib.Path(spec.vocabulary_file).read_text(encoding="utf-8")
        lines = text.splitlines()
        tokens = [int(t) for t in lines] if spec.dtype == "int64" else lines
    else:
        tokens = _fitted_tokens(table, spec, counts)
    if spec.dtype == "string":
        bad = [t for t in tokens if "\n" in t or "\r" in t]
        if bad:
            raise ValueError(
                f"table {table!r}: tokens may not contain newlines: {bad[:3]}"
            )
    if not tokens:
        raise ValueError(
            f"table {table!r}: no tokens to fit a vocabulary on (every value "
            "is missing in the train split); give a vocabulary or use hash_bins."
        )
    return tokens


def _fitted_tokens(table: str, spec, counts: collections.Counter) -> list:
    reserved = RESERVED_TOKENS[spec.dtype]
    ranked = sorted(
        ((tok, n) for tok, n in counts.items() if tok != reserved),
        key=lambda item: (-item[1], str(item[0])),
    )
    tokens = [tok for tok, n in ranked if n >= spec.min_count]
    if not tokens and ranked:
        # Lookup tables cannot be empty: keep the most frequent token,
        # every other id shares the out-of-vocabulary bucket(s).
        tokens = [ranked[0][0]]
        logger.warning(
            "table %r: no token occurs min_count=%d times in the train "
            "split (most frequent: %d); keeping only %r, all other ids "
            "share the OOV bucket. Lower min_count for small data.",
            table,
            spec.min_count,
            ranked[0][1],
            ranked[0][0],
        )
    if spec.max_vocabulary_size is not None:
        tokens = tokens[: spec.max_vocabulary_size]
    logger.info(
        "vocabulary %r: %d of %d distinct tokens kept (min_count=%d)",
        table,
        len(tokens),
        len(counts),
        spec.min_count,
    )
    return tokens
