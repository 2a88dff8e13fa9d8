"""Which tensor dtypes a feature's raw input may have, checked when traced."""

import tensorflow as tf

from mtrec.features.categorical import CategoricalFeature
from mtrec.features.dense import DenseFeature
from mtrec.features.multi_valued import MultiValuedFeature


def conform_input(spec, raw):
    """``raw`` as the input of ``spec``: checked, integer ids as ``int64``.

    What each kind of feature takes:

    - a dense feature: numbers (any float or integer dtype, read as float);
    - a categorical feature of ``dtype="int64"``: integer ids, e.g. ``int32``
      or ``int64``, cast to ``int64`` in the graph, so an ``int32`` id
      embeds, hashes and is range-checked exactly as the same ``int64`` id.
      An in-memory id column may stay ``int32``, half the memory of
      ``int64``; files and the serving signatures hold ``int64``;
    - a categorical feature of ``dtype="string"`` and every multi-valued
      feature (its tokens joined by the separator): strings.

    Otherwise a float fed to an id would be truncated to an id without a
    word, and a string fed to a number would fail deep inside TensorFlow.
    The check runs in Python when the layer is called or traced, so it costs
    nothing per batch.

    Args:
      spec: the feature's spec (``CategoricalFeature``, ``DenseFeature`` or
        ``MultiValuedFeature``).
      raw: its input tensor (dense or ragged).

    Returns:
      ``raw``, cast to ``int64`` if it holds another integer dtype's ids.

    Raises:
      ValueError: naming the feature, what it takes and the dtype received.

    Example:

    >>> age = CategoricalFeature("age", dtype="int64", num_ids=5)
    >>> conform_input(age, tf.constant([1, 2], tf.int32)).dtype.name
    'int64'
    >>> try:
    ...     conform_input(age, tf.constant([1.5]))
    ... except ValueError as err:
    ...     print(err)
    Input feature 'age' (categorical, `dtype='int64'`) takes integer ids
    (e.g. int32 or int64). Received: a tensor of dtype float32.
    """
    dtype = tf.as_dtype(raw.dtype)
    multi_valued = isinstance(spec, MultiValuedFeature)
    ids = isinstance(spec, CategoricalFeature) and not multi_valued
    ids = ids and spec.dtype == "int64"
    if isinstance(spec, DenseFeature):
        kind, takes = "dense", "numbers (a float or integer dtype)"
        ok = dtype.is_floating or dtype.is_integer
    elif multi_valued:
        kind, takes = "multi-valued", "strings (its tokens joined)"
        ok = dtype == tf.string
    elif ids:
        kind, takes = (
            "categorical, `dtype='int64'`",
            "integer ids (e.g. int32 or int64)",
        )
        ok = dtype.is_integer
    else:
        kind, takes = f"categorical, `dtype={spec.dtype!r}`", "strings"
        ok = dtype == tf.string
    if not ok:
        raise ValueError(
            f"Input feature {spec.name!r} ({kind}) takes {takes}. "
            f"Received: a tensor of dtype {dtype.name}."
        )
    if ids and dtype != tf.int64:
        return tf.cast(raw, tf.int64)
    return raw
