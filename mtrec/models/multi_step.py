"""``Model.fit`` and ``Model.predict`` with several batches per graph call.

Keras runs one graph call per batch and returns to Python after each. With the
small ranking models of this package a batch's ops take about a millisecond,
and the per-call round trip (the iterator, the call, the logs and outputs)
costs about as much again. Keras can run ``k`` batches inside one call
(``compile(steps_per_execution=k)``), but then per-batch callbacks see only
every ``k``-th batch, so the setting is the user's to choose. This module uses
``k`` where no one can tell the difference:

- ``fit`` when no callback has per-batch hooks (Keras' progress bar aside,
  which then refreshes every ``k`` batches) and Keras knows where each epoch
  of the training and validation data ends (a known number of batches, or an
  endless dataset with ``steps_per_epoch``): the same optimizer steps in the
  same order, the same epoch logs;
- ``predict`` when Keras knows the number of batches: the same predictions
  (its batch hooks, rarely used, see every ``k``-th batch).

"Knows in advance": arrays, tensors, a ``tf.data.Dataset`` of known finite
cardinality. A dataset of unknown length would end inside a call, and Keras
would drop that call's outputs and logs. Everything else (generators,
``Sequence``, datasets of unknown length, a model compiled with its own
``steps_per_execution``, parameter-server training) goes through Keras
unchanged.

How: the model's steps-per-execution variable is set to ``k`` for the duration
of the call, and the multi-step functions are cached beside Keras' one-step
ones (:class:`StepFunctionCache`), so neither is traced twice.

Measured: ``benchmarks/deepctr_comparison.py`` (its inference ratio at equal
settings separates this default from the graph's own speed).
"""

import inspect
import logging
from collections.abc import Callable
from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from mtrec.models.plain_trace import PlainFirst

logger = logging.getLogger(__name__)

#: Batches per graph call of ``fit`` and ``predict`` unless the model is told
#: otherwise. Each call costs a few milliseconds on top of its batches (the
#: iterator, the loop's setup, the outputs and logs): on the census models of
#: ``benchmarks/steps_per_call.py`` (one core, 49 batches per pass) 64 against
#: 16 measured ``fit`` 1.04-1.06x and ``predict`` 1.07-1.14x faster (median
#: speed-up per model, two runs), 128 about as fast as 64. A progress bar then
#: refreshes every 64 batches.
DEFAULT_STEPS_PER_CALL = 64

_FUNCTIONS = {
    "fit": ("train_function", "test_function"),
    "predict": ("predict_function",),
}
_BATCH_HOOKS = (
    "on_batch_begin",
    "on_batch_end",
    "on_train_batch_begin",
    "on_train_batch_end",
)


class StepFunctionCache:
    """The multi-step Keras functions and the traced steps, kept out of
    Keras' tracking (a plain object: a traced function on a tracked attribute
    would be exported)."""

    def __init__(self):
        self.functions: dict[str, object] = {}
        self.steps: dict[str, Callable] = {}

    def clear(self) -> None:
        self.functions = {}
        self.steps = {}

    def traced(self, model: tf.keras.Model, kind: str, step: Callable) -> Callable:
        """``step`` (a train, test or predict step) as a ``tf.function``
        traced without AutoGraph (:class:`PlainFirst`), kept per cache
        lifetime; as it is when ``model.run_eagerly`` or under a distribution
        strategy (whose synchronisation points, the gradient all-reduce,
        cannot sit in a nested ``tf.function``).

        Keras' multi-step functions call the step at two call sites (before
        their loop and inside it) and would trace it at each; as a function
        of its own it is traced once and called twice (TensorFlow inlines
        the call: the same kernels run). ``benchmarks/
        deepctr_comparison.py``, census MMoE, one core: the first-epoch
        overhead went 5.96 -> 4.81 s, the steady epochs unchanged.
        """
        if model.run_eagerly or tf.distribute.has_strategy():
            return step
        if kind not in self.steps:
            self.steps[kind] = PlainFirst(step, kind)
        return self.steps[kind]


def check_steps_per_call(name: str, value) -> int:
    """``value`` if it is an int >= 1, else a ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"`{name}` must be an int >= 1. Received: `{name}={value!r}`")
    return int(value)


def known_batch_count(x) -> bool:
    """Whether Keras knows how many batches ``x`` yields before it runs.

    Arrays, tensors and dicts/lists/tuples of them: yes. A
    ``tf.data.Dataset``: when its cardinality is known and finite. Anything
    else (generators, ``Sequence``, iterators): no. ``steps`` arguments do not
    make a dataset of unknown length safe: one shorter than ``steps`` would
    end inside a call.

    >>> known_batch_count(tf.data.Dataset.range(10).batch(4))
    True
    >>> known_batch_count(tf.data.Dataset.range(10).filter(lambda i: i > 2))
    False
    """
    if isinstance(x, tf.data.Dataset):
        return int(x.cardinality()) >= 0
    if isinstance(x, Mapping):
        return bool(x) and all(_is_array(v) for v in x.values())
    if isinstance(x, list | tuple):
        return bool(x) and all(_is_array(v) for v in x)
    return _is_array(x)


def _is_array(value) -> bool:
    return isinstance(value, np.ndarray | tf.Tensor)


def needs_every_batch(callback: tf.keras.callbacks.Callback) -> bool:
    """Whether ``callback`` has a training batch hook of its own: a method
    overridden or a function set (``LambdaCallback``). Keras' progress bar
    aside: it only displays, every ``k`` batches then.

    Keras marks the hooks of its ``Callback`` base as defaults, and asks the
    same question to decide whether to call batch hooks at all; a hook
    without the mark counts as the callback's own.
    """
    if isinstance(callback, tf.keras.callbacks.ProgbarLogger):
        return False
    return any(
        not getattr(getattr(callback, hook, None), "_is_default", False)
        for hook in _BATCH_HOOKS
    )


def fit_in_runs(
    model: tf.keras.Model,
    fit: Callable,
    steps_per_call: int,
    cache: StepFunctionCache,
    *args,
    **kwargs,
):
    """``fit(*args, **kwargs)`` (Keras' ``Model.fit`` bound to ``model``) with
    ``steps_per_call`` batches per graph call where that cannot be observed
    (see the module docstring); otherwise ``fit`` unchanged."""
    bound = inspect.signature(fit).bind_partial(*args, **kwargs).arguments
    callbacks = bound.get("callbacks") or []
    validation = bound.get("validation_data")
    safe = (
        _known_epochs(bound.get("x"), bound.get("steps_per_epoch"))
        and (
            validation is None
            or _known_epochs(validation, bound.get("validation_steps"))
        )
        and not any(needs_every_batch(c) for c in callbacks)
    )
    return _in_runs(model, "fit", safe, fit, steps_per_call, cache, args, kwargs)


def predict_in_runs(
    model: tf.keras.Model,
    predict: Callable,
    steps_per_call: int,
    cache: StepFunctionCache,
    x,
    *args,
    **kwargs,
):
    """``predict(x, *args, **kwargs)`` (Keras' ``Model.predict`` bound to
    ``model``) with ``steps_per_call`` batches per graph call where Keras knows
    the number of batches; otherwise ``predict`` unchanged."""
    return _in_runs(
        model,
        "predict",
        known_batch_count(x),
        predict,
        steps_per_call,
        cache,
        (x, *args),
        kwargs,
    )


def _known_epochs(data, steps) -> bool:
    """Whether Keras knows where each epoch of ``data`` ends: a known number
    of batches, or an endless dataset cut into epochs of ``steps``."""
    if isinstance(data, tuple):  # validation (x, y) or (x, y, sample_weight)
        return all(v is None or known_batch_count(v) for v in data)
    if steps is not None and isinstance(data, tf.data.Dataset):
        if int(data.cardinality()) == int(tf.data.INFINITE_CARDINALITY):
            return True
    return known_batch_count(data)


def _in_runs(model, kind, safe, run, steps_per_call, cache, args, kwargs):
    strategy = model.distribute_strategy
    if isinstance(strategy, tf.distribute.experimental.ParameterServerStrategy):
        safe = False
    if steps_per_call == 1 or not safe:
        return run(*args, **kwargs)
    if model._steps_per_execution is None:  # noqa: SLF001  (an uncompiled model)
        model._configure_steps_per_execution(1)  # noqa: SLF001
    variable = model._steps_per_execution  # noqa: SLF001  (Keras' only handle)
    if int(variable.numpy()) != 1:  # the user chose steps_per_execution
        return run(*args, **kwargs)
    names = _FUNCTIONS[kind]
    one_step = {name: getattr(model, name) for name in names}
    for name in names:
        setattr(model, name, cache.functions.get(name))
    variable.assign(steps_per_call)
    try:
        return run(*args, **kwargs)
    finally:
        variable.assign(1)
        for name in names:
            cache.functions[name] = getattr(model, name)
            setattr(model, name, one_step[name])
