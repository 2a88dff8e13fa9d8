"""Functions traced as plain Python, with AutoGraph only where that fails:
a step (:class:`PlainFirst`), a function of a batch traced once for any
batch size (:class:`BatchFunction`), a signature to save
(:func:`plain_first_function`).

AutoGraph rewrites the source of every function and layer a traced function
calls (Keras converts a subclassed layer's ``call`` whenever AutoGraph is
on). mtrec's layers need none of it: their branches are on Python values,
and the data-dependent ones are ``tf.cond``/``tf.where`` already. The
first conversion of a model in a process rewrites every function it calls
(census MMoE: 32); later traces reuse the rewrite but still run through
AutoGraph's call wrappers.

A layer of the user's (a custom backbone) may use Python control flow on
tensors or ``len`` of a batch, which only AutoGraph can trace: its plain
trace raises (``OperatorNotAllowedInGraphError``, ``TypeError``, ...), and
the function is then traced, and from then on called, with AutoGraph, as
Keras would. Any error of the plain trace does so: an error that is not
AutoGraph's to mend is raised again by that trace, as it was before. An
error of TensorFlow's ops (``tf.errors.OpError``: bad data in a function
called eagerly, say) is not a tracing error and is raised as it is, the
function not run again.
"""

import logging
from collections.abc import Callable

import tensorflow as tf

logger = logging.getLogger(__name__)


class PlainFirst:
    """``step`` as a ``tf.function`` traced as plain Python, with AutoGraph
    only if that fails (see the module docstring).

    Tracing the training step as plain Python took the first epoch's
    overhead (first epoch minus a steady one; ``benchmarks/
    deepctr_comparison.py``, census, one core) from 4.8 / 5.9 / 4.3 s to
    2.8 / 3.8 / 2.8 s (MMoE / PLE / ESMM); the kernels, and so the steady
    epochs and the results, are the same.

    Args:
      step: the step function.
      kind: what it is, for the log (``"train"``, ``"test"``, ``"predict"``).
      input_signature: as ``tf.function`` takes it; default none (traced per
        input signature, relaxed to unknown dimensions where calls differ).
      jit_compile: keyword only, as ``tf.function`` takes it: ``True``
        compiles the step with XLA (``mtrec.models.compiled_predict``).

    Attributes:
      autograph: whether the step is now traced with AutoGraph.

    Example:

    >>> def branching(x):
    ...     if tf.reduce_sum(x) > 0:  # a tensor as a Python bool: AutoGraph's
    ...         return x
    ...     return -x
    >>> step = PlainFirst(branching, "example")
    >>> step(tf.constant([-2.0])).numpy().tolist(), step.autograph
    ([2.0], True)
    >>> plain = PlainFirst(tf.abs, "example")
    >>> spec = tf.TensorSpec([None], tf.float32)
    >>> plain.concrete_function(spec)(tf.constant([-1.0])).numpy().tolist()
    [1.0]
    >>> plain.autograph
    False
    """

    def __init__(
        self,
        step: Callable,
        kind: str = "model",
        input_signature=None,
        *,
        jit_compile: bool | None = None,
    ):
        self.kind = kind
        options = {
            "input_signature": input_signature,
            "reduce_retracing": True,
            "jit_compile": jit_compile,
        }
        self._plain = tf.function(step, autograph=False, **options)
        self._converted = tf.function(step, **options)
        self.autograph = False

    @property
    def function(self) -> tf.types.experimental.GenericFunction:
        """The ``tf.function`` now in use: plain, or with AutoGraph."""
        return self._converted if self.autograph else self._plain

    @property
    def tracing_count(self) -> int:
        """Traces of the step so far, plain and with AutoGraph."""
        return sum(
            function.experimental_get_tracing_count()
            for function in (self._plain, self._converted)
        )

    def __call__(self, *args):
        return self._first_that_traces("__call__", args)

    def concrete_function(self, *args) -> tf.types.experimental.ConcreteFunction:
        """The step traced for ``args`` (tensors or ``tf.TensorSpec``\\ s, a
        batch dimension of ``None`` for any batch size), as a call would."""
        return self._first_that_traces("get_concrete_function", args)

    def _first_that_traces(self, method: str, args: tuple):
        if not self.autograph:
            try:
                return getattr(self._plain, method)(*args)
            except tf.errors.OpError:
                raise
            except Exception as error:  # noqa: BLE001 (AutoGraph's trace decides)
                logger.info(
                    "The %s function needs AutoGraph (%s); tracing it with "
                    "AutoGraph, which takes longer.",
                    self.kind,
                    str(error).splitlines()[0],
                )
                self.autograph = True
        return getattr(self._converted, method)(*args)


class BatchFunction:
    """``function(batch)`` of a dict of tensors, traced once per structure
    (names, dtypes and inner shapes) for any batch size, as plain Python
    first (:class:`PlainFirst`); a batch with ragged or
    sparse columns goes to the ``tf.function`` as it is.

    Args:
      function: ``{name: (batch, ...)} -> anything``.
      kind: what it is, for the log.

    Example:

    >>> total = BatchFunction(lambda b: tf.reduce_sum(b["x"], axis=1), "example")
    >>> [total({"x": tf.ones([n, 2])}).numpy().tolist() for n in (3, 1)]
    [[2.0, 2.0, 2.0], [2.0]]
    >>> total.tracing_count
    1
    """

    def __init__(self, function, kind: str):
        self._function = PlainFirst(function, kind)
        self._traced: dict = {}

    @property
    def tracing_count(self) -> int:
        """Traces so far, plain and with AutoGraph."""
        return self._function.tracing_count

    @property
    def autograph(self) -> bool:
        """Whether the function needed AutoGraph."""
        return self._function.autograph

    def __call__(self, batch: dict):
        if not all(isinstance(x, tf.Tensor) for x in batch.values()):
            # Ragged or sparse columns: traced per shape, as tf.function does.
            return self._function(batch)
        key = tuple((name, x.dtype, tuple(x.shape[1:])) for name, x in batch.items())
        traced = self._traced.get(key)
        if traced is None:
            spec = {
                name: tf.TensorSpec([None, *x.shape[1:]], x.dtype)
                for name, x in batch.items()
            }
            traced = self._traced[key] = self._function.concrete_function(spec)
        return traced(batch)


def plain_first_function(
    function: Callable, input_signature: list, kind: str
) -> tf.types.experimental.GenericFunction:
    """``tf.function(function, input_signature)``, traced now as plain Python
    and with AutoGraph only if that fails (see the module docstring).

    For a signature to save (``tf.saved_model.save``): the returned function
    holds its one trace.

    Args:
      function: the Python function.
      input_signature: its ``tf.TensorSpec``\\ s, as ``tf.function`` takes them.
      kind: what it is, for the log.

    Example:

    >>> double = plain_first_function(
    ...     lambda x: 2 * x, [tf.TensorSpec([None], tf.float32)], "example"
    ... )
    >>> double(tf.constant([1.0, 2.0])).numpy().tolist()
    [2.0, 4.0]
    >>> double.experimental_get_tracing_count()
    1
    """
    first = PlainFirst(function, kind, input_signature)
    first.concrete_function()
    return first.function
