"""Feature inputs' dtypes: checked when traced; integer ids kept ``int32``
or cast to ``int64``."""

import tensorflow as tf

from mtrec.features.column_blocks import stack_columns
from mtrec.features.dense import DenseFeature
from mtrec.features.multi_valued import MultiValuedFeature


def check_input_dtype(spec, raw) -> None:
    """Raises ``ValueError`` if ``raw``'s dtype cannot be ``spec``'s input.

    What each kind of feature takes:

    - a dense feature: numbers (any float or integer dtype, read as float);
    - a categorical feature of ``dtype="int64"``: integer ids, e.g. ``int32``
      or ``int64``: an ``int32`` id embeds, hashes and is range-checked
      exactly as the same ``int64`` id (:func:`stack_ids`, :func:`as_int64`).
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

    Raises:
      ValueError: naming the feature, what it takes and the dtype received.

    Example:

    >>> from mtrec.features import CategoricalFeature
    >>> age = CategoricalFeature("age", dtype="int64", num_ids=5)
    >>> check_input_dtype(age, tf.constant([1, 2], tf.int32))
    >>> try:
    ...     check_input_dtype(age, tf.constant([1.5]))
    ... except ValueError as err:
    ...     print(err)
    Input feature 'age' (categorical, `dtype='int64'`) takes integer ids
    (e.g. int32 or int64). Received: a tensor of dtype float32.
    """
    dtype = tf.as_dtype(raw.dtype)
    if isinstance(spec, DenseFeature):
        kind, takes = "dense", "numbers (a float or integer dtype)"
        ok = dtype.is_floating or dtype.is_integer
    elif isinstance(spec, MultiValuedFeature):  # before: it is categorical too
        kind, takes = "multi-valued", "strings (its tokens joined)"
        ok = dtype == tf.string
    elif spec.dtype == "int64":
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


def as_int64(ids):
    """Integer ``ids`` of another dtype cast to ``int64``; ``int64`` ids and
    strings (a string feature's values) as they are.

    Example:

    >>> as_int64(tf.constant([1], tf.int32)).dtype.name
    'int64'
    >>> as_int64(tf.constant(["a"])).dtype.name
    'string'
    """
    if ids.dtype == tf.int64 or not ids.dtype.is_integer:
        return ids
    return tf.cast(ids, tf.int64)


def stack_ids(ids: list, features_first: bool = False):
    """``F`` integer id vectors ``(batch,)`` as one ``(batch, F)`` matrix
    (``features_first``: ``(F, batch)``, the rows stacked without a transpose),
    ``int32`` if every vector is, ``int64`` otherwise.

    ``int32`` ids (in-memory columns, as a data frame or DeepCTR's arrays
    hold them) stay ``int32`` through the range check, the table offsets and
    the gather, which all take them (:func:`ids_in_range`,
    ``FeatureEmbedding``): a cast of the matrix to ``int64`` cost census PLE's
    prediction about 3% (TensorFlow profiler, one core), and a cast per
    column 3 to 7% before that. Ids of other or several dtypes are cast to
    ``int64`` first.

    Example:

    >>> m = stack_ids([tf.constant([1, 2], tf.int32), tf.constant([3, 4], tf.int32)])
    >>> m.dtype.name, m.numpy().tolist()
    ('int32', [[1, 3], [2, 4]])
    >>> m = stack_ids([tf.constant([1, 2], tf.int32), tf.constant([3, 4], tf.int64)])
    >>> m.dtype.name, m.numpy().tolist()
    ('int64', [[1, 3], [2, 4]])
    >>> stack_ids([tf.constant([1, 2]), tf.constant([3, 4])], True).numpy().tolist()
    [[1, 2], [3, 4]]
    """
    if {t.dtype for t in ids} not in ({tf.int32}, {tf.int64}):
        ids = [as_int64(t) for t in ids]
    return tf.stack(ids, axis=0) if features_first else stack_columns(ids)
