"""One tokeniser for multi-valued features, for fitting and for serving.

A multi-valued cell such as ``"c3| c7||c3"`` becomes its tokens: split on the
feature's ``separator``, each token stripped of ASCII whitespace, empty tokens
dropped (an empty cell, repeated or trailing separators), then the first
``max_length`` tokens kept, then (``dtype: int64``) parsed as integers.
Vocabulary fitting (numpy, :mod:`mtrec.features.preprocessing`) and the model
(:class:`mtrec.features.FeatureEmbedding`, in the graph and in the exported
SavedModel) both call :func:`split_tokens`, so the tokens a vocabulary was
fitted on are the tokens serving looks up.
"""

import numpy as np
import tensorflow as tf


def split_tokens(
    raw: tf.Tensor, separator: str, max_length: int | None, dtype: str
) -> tf.RaggedTensor:
    """Tokens of a batch of multi-valued cells.

    Args:
      raw: ``(batch,)`` string cells.
      separator: the token delimiter (non-empty).
      max_length: keep the first ``max_length`` non-empty tokens (None: all).
      dtype: ``"string"`` or ``"int64"`` (tokens parsed as base-10 integers).

    Returns:
      ``(batch, None)`` ragged tokens of ``dtype``.

    Raises:
      tf.errors.InvalidArgumentError: an ``int64`` token that is not an integer.

    Example:

    >>> cells = tf.constant(["a| b||a", "", " |c"])
    >>> split_tokens(cells, "|", None, "string").to_list()
    [[b'a', b'b', b'a'], [], [b'c']]
    >>> split_tokens(cells, "|", 2, "string").to_list()
    [[b'a', b'b'], [], [b'c']]
    """
    tokens = tf.strings.split(raw, sep=separator)
    tokens = tf.ragged.map_flat_values(tf.strings.strip, tokens)
    tokens = tf.ragged.boolean_mask(tokens, tf.strings.length(tokens) > 0)
    if max_length is not None:
        tokens = tokens[:, :max_length]
    if dtype == "int64":
        tokens = tf.ragged.map_flat_values(
            tf.strings.to_number, tokens, out_type=tf.int64
        )
    return tokens


def token_array(
    values: np.ndarray, separator: str, max_length: int | None, dtype: str
) -> np.ndarray:
    """The flat tokens of ``values`` (numpy cells) by :func:`split_tokens`.

    Missing cells (``None``, NaN) have no tokens. Strings come back as
    ``str``, integers as ``int64``.

    Raises:
      ValueError: an ``int64`` token that is not an integer, naming it.

    Example:

    >>> token_array(np.array(["7|8", None, "8"], dtype=object), "|", None, "int64")
    array([7, 8, 8])
    """
    cells = [
        "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
        for v in values
    ]
    try:
        flat = split_tokens(
            tf.constant(cells, tf.string), separator, max_length, dtype
        ).flat_values.numpy()
    except tf.errors.InvalidArgumentError as err:
        raise ValueError(f"a token is not an integer: {err.message}") from None
    if dtype == "int64":
        return flat.astype(np.int64)
    return np.array([t.decode("utf-8") for t in flat], dtype=object)
