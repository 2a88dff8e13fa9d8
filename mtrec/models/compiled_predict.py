"""``predict`` through an XLA-compiled forward pass, the input checks kept.

XLA (``jit_compile``) fuses the many small element-wise ops of a mixture's
gates and mixing into a few kernels. On one CPU core the census PLE predicted
1.25–1.44× and ESMM 1.13–1.16× faster once compiled (MMoE 1.02–1.03×; two
runs of ``benchmarks/compiled_predict.py``), but the first pass compiles
(2.25 s instead of 0.88 s for PLE, 1.02 s instead of 0.56 s for MMoE: a
large scoring job gains, a few small predicts lose), so it is an option of
the model, ``predict_jit_compile``, off by default.

To compile less, each batch is padded with zero rows up to the next power of
two (:func:`padded_batch_size`) and the padding cut from the outputs: a pass
with a fixed batch size compiles once, its short last batch included, and
any batch sizes compile at most once per power of two, as TF Serving's
``allowed_batch_sizes`` bound its compiled shapes. The compiled function is
traced as plain Python (``mtrec.models.plain_trace.PlainFirst``): with
AutoGraph's first rewrite of the model's code, the census PLE's first
compiled pass had taken 4.31 s against DeepCTR's 2.29 s
(``benchmarks/deepctr_comparison.py``); traced plain, 2.27 s against 2.90 s.

XLA drops the feature layer's input checks (``Assert`` does not compile, and
an out-of-range gather index is clamped, a silent wrong score), so the
compiled step runs them before the compiled part, with the errors an
uncompiled model raises: ``FeatureEmbedding.input_checks``.
"""

import tensorflow as tf

from mtrec.checks import check_bool
from mtrec.models.multi_step import StepFunctionCache
from mtrec.models.plain_trace import PlainFirst

_FORWARD = "predict_forward"


def check_predict_jit_compile(value, feature_layer) -> bool:
    """Validated ``predict_jit_compile``: a bool; ``True`` needs a feature
    layer XLA can compile (``jit_compatible``) that can check its inputs
    apart (``input_checks``).

    Raises:
      ValueError: not a bool, or ``True`` with another feature layer.
    """
    value = check_bool("predict_jit_compile", value)
    compatible = getattr(feature_layer, "jit_compatible", False)
    if value and not (compatible and hasattr(feature_layer, "input_checks")):
        raise ValueError(
            "`predict_jit_compile=True` needs a feature layer XLA can compile: "
            "a FeatureEmbedding whose categorical features are single-valued "
            "encoded ids (`num_ids`), without vocabulary or hash lookups "
            "(`jit_compatible`). Received: a "
            f"{type(feature_layer).__name__} with `jit_compatible={compatible}`"
        )
    return value


class CompiledForward:
    """``x -> model(x, training=False)``, the model compiled by XLA, after the
    raw inputs' checks (run outside it, as control dependencies of the
    compiled call), with the errors an uncompiled model raises.

    ``x`` is restricted to the model's features before XLA sees it (labels
    and other columns in the dict are dropped; a missing feature gets the
    layer's ``Missing input feature`` error). The batch is padded to a power
    of two (:func:`pad_batch`) and the outputs cut back to its rows, so XLA
    compiles once per power of two; the compiled function (``compiled``, a
    :class:`mtrec.models.plain_trace.PlainFirst`: traced as plain Python,
    with AutoGraph only for a model that needs it) lives as long as this
    object.

    Args:
      model: a model whose feature layer XLA can compile
        (``check_predict_jit_compile``).

    Example:

    >>> features = mtrec.FeatureEmbedding(
    ...     [{"name": "age", "dtype": "int64", "num_ids": 5, "embedding_dim": 2}]
    ... )
    >>> model = mtrec.MultiTaskRanker(
    ...     features,
    ...     mtrec.SharedBottom(["ctr"], units=[4]),
    ...     [mtrec.Task("ctr", "click")],
    ... )
    >>> forward = CompiledForward(model)
    >>> batch = {"age": tf.constant([1, 4]), "click": tf.constant([0.0, 1.0])}
    >>> forward(batch)["ctr"].shape  # the label column never reaches XLA
    TensorShape([2, 1])
    """

    def __init__(self, model):
        self.model = model
        # Traced as plain Python (AutoGraph only for a model that needs it):
        # AutoGraph's first rewrite of the model's code was most of a
        # process's first compiled call (see the module docstring).
        self.compiled = PlainFirst(
            lambda inputs: model(inputs, training=False),
            "compiled predict",
            jit_compile=True,
        )

    def __call__(self, x):
        features = self.model.feature_layer
        # Only the features go to XLA; a missing one is left for input_checks
        # to name, as the uncompiled layer does.
        x = {name: x[name] for name in features.feature_set.names if name in x}
        checks = features.input_checks(x)
        with tf.control_dependencies(checks):
            rows, padded = pad_batch(x)
            outputs = self.compiled(padded)
        return tf.nest.map_structure(lambda y: y[:rows], outputs)


def padded_batch_size(rows):
    """The smallest power of two ``>= rows`` (``1`` for ``rows <= 1``): the
    batch size :class:`CompiledForward` pads a batch of ``rows`` rows to, so
    XLA compiles one shape per power of two.

    Args:
      rows: int32 scalar tensor (or int), ``< 2**30``.

    Returns:
      int32 scalar tensor.

    Example:

    >>> [int(padded_batch_size(n)) for n in (0, 1, 3, 64, 65, 1000)]
    [1, 1, 4, 64, 128, 1024]
    """
    # Exact in integers (a float log2 can round 1024 up to 2048): set every
    # bit below the highest bit of rows - 1, then add one.
    bits = tf.maximum(tf.cast(rows, tf.int32), 1) - 1
    for shift in (1, 2, 4, 8, 16):
        bits = tf.bitwise.bitwise_or(bits, tf.bitwise.right_shift(bits, shift))
    return bits + 1


def pad_batch(x: dict) -> tuple:
    """``(rows, padded)``: the batch's row count (int32 scalar) and ``x``
    with zero rows appended to each tensor up to :func:`padded_batch_size`
    rows. Zero is a valid encoded id and a finite value, and the padded rows
    are scored apart from the real ones (inference mixes no rows), so the
    first ``rows`` outputs are the batch's own.

    Example:

    >>> rows, padded = pad_batch({"id": tf.constant([3, 1, 2])})
    >>> int(rows), padded["id"].numpy().tolist()
    (3, [3, 1, 2, 0])
    """
    rows = tf.shape(next(iter(x.values())), out_type=tf.int32)[0]
    extra = padded_batch_size(rows) - rows

    def pad(value):
        padding = [[0, extra]] + [[0, 0]] * (value.shape.rank - 1)
        return tf.pad(value, padding)

    return rows, {name: pad(value) for name, value in x.items()}


def compiles_prediction(model) -> bool:
    """Whether ``model``'s prediction runs through :class:`CompiledForward`:
    ``predict_jit_compile`` is set and no distribution strategy is involved,
    neither one the model was made under (``model.distribute_strategy``) nor
    one active now. The one rule for ``predict`` (``predict_step``, decided
    when it is traced) and ``mtrec.training.evaluate.Predictor``: a replica
    of a distributed ``predict`` runs uncompiled, so a model made under a
    strategy is scored uncompiled everywhere.

    Example:

    >>> features = mtrec.FeatureEmbedding(
    ...     [{"name": "age", "dtype": "int64", "num_ids": 5, "embedding_dim": 2}]
    ... )
    >>> def ranker():
    ...     return mtrec.MultiTaskRanker(
    ...         features,
    ...         mtrec.SharedBottom(["ctr"], units=[4]),
    ...         [mtrec.Task("ctr", "click")],
    ...         predict_jit_compile=True,
    ...     )
    >>> compiles_prediction(ranker())
    True
    >>> with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
    ...     distributed = ranker()
    >>> compiles_prediction(distributed)
    False
    """
    if not getattr(model, "predict_jit_compile", False):
        return False
    if tf.distribute.has_strategy():
        return False
    return model.distribute_strategy is tf.distribute.get_strategy()


def compiled_predict_step(model, data, cache: StepFunctionCache):
    """``predict_step`` through :class:`CompiledForward` on the inputs of
    ``data`` (``(x, y, w)`` or ``x``). The compiled function is kept in
    ``cache`` (dropped by ``compile``).
    """
    x, _, _ = tf.keras.utils.unpack_x_y_sample_weight(data)
    if _FORWARD not in cache.steps:
        cache.steps[_FORWARD] = CompiledForward(model)
    return cache.steps[_FORWARD](x)
