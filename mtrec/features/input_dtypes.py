"""Feature inputs' dtypes: checked when traced, integer ids cast to int64."""

import tensorflow as tf

from mtrec.features.dense import DenseFeature
from mtrec.features.multi_valued import MultiValuedFeature


def check_input_dtype(spec, raw) -> None:
    """Raises ``ValueError`` if ``raw``'s dtype cannot be ``spec``'s input.

    What each kind of feature takes:

    - a dense feature: numbers (any float or integer dtype, read as float);
    - a categorical feature of ``dtype="int64"``: integer ids, e.g. ``int32``
      or ``int64``; :func:`int64_ids` casts them, so an ``int32`` id embeds,
      hashes and is range-checked exactly as the same ``int64`` id. An
      in-memory id column may stay ``int32``, half the memory of ``int64``;
      files and the serving signatures hold ``int64``;
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
    multi_valued = isinstance(spec, MultiValuedFeature)
    if isinstance(spec, DenseFeature):
        kind, takes = "dense", "numbers (a float or integer dtype)"
        ok = dtype.is_floating or dtype.is_integer
    elif multi_valued:
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


def int64_ids(columns: dict) -> dict:
    """The integer id ``columns`` as ``int64``, one cast for all of a dtype.

    A batch of ``int32`` ids per feature would otherwise cost one cast op
    per feature and step (PLE on census, 31 id columns: 3 to 7% of the
    step); the columns of one dtype and shape ``(batch,)`` are stacked, cast
    once and unstacked (three ops). Others (ragged) are cast one by one.

    Args:
      columns: ``{name: ids}``, each an integer tensor.

    Returns:
      ``{name: ids}`` in the same order, every one ``int64``.

    Example:

    >>> ids = int64_ids({"a": tf.constant([1, 2], tf.int32),
    ...                  "b": tf.constant([3, 4], tf.int64),
    ...                  "c": tf.constant([5, 6], tf.int32)})
    >>> {k: (v.dtype.name, v.numpy().tolist()) for k, v in ids.items()}
    {'a': ('int64', [1, 2]), 'b': ('int64', [3, 4]), 'c': ('int64', [5, 6])}
    """
    out = dict(columns)
    groups: dict = {}
    for name, ids in columns.items():
        if ids.dtype == tf.int64:
            continue
        if isinstance(ids, tf.Tensor) and ids.shape.rank == 1:
            groups.setdefault(ids.dtype, []).append(name)
        else:
            out[name] = tf.cast(ids, tf.int64)
    for names in groups.values():
        if len(names) == 1:
            out[names[0]] = tf.cast(columns[names[0]], tf.int64)
            continue
        stacked = tf.cast(tf.stack([columns[n] for n in names]), tf.int64)
        out.update(zip(names, tf.unstack(stacked, num=len(names)), strict=True))
    return out
