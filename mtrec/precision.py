"""Compute precision of mtrec models: ``float32`` or ``mixed_bfloat16``.

Keras' mixed precision (``tf.keras.mixed_precision``): under the
``mixed_bfloat16`` policy a layer keeps its variables in float32 and computes
in bfloat16, so matrix products run at bfloat16 speed (AMX or AVX512-BF16 on
recent x86 CPUs) while the optimizer updates float32 weights. mtrec's layers
honour the policy they were built under:

- ``FeatureEmbedding`` gathers the float32 tables in the compute dtype and
  hands the backbone one ``(batch, d)`` tensor of it (dense features too);
- backbones, cross layers and towers compute in it;
- each tower's logit is cast to float32 before the sigmoid, so outputs,
  losses, loss weightings (always float32 layers), metrics and the exported
  serving signature stay float32: bfloat16 has 8 bits of mantissa, too few
  for a loss or a calibrated probability.

bfloat16 has float32's exponent range, so no loss scaling is needed. On a CPU
without bfloat16 instructions it is usually slower than float32, and where
embeddings and small layers dominate the step it gains little and can cost
AUC: measure before switching (``benchmarks/precision.py`` on the main job,
``benchmarks/deepctr_comparison.py --mtrec-precision`` on census-income).

Example:

>>> import mtrec
>>> from mtrec.precision import precision_scope
>>> with precision_scope("mixed_bfloat16"):
...     layer = mtrec.MLP([4])
>>> layer.compute_dtype, layer.variable_dtype
('bfloat16', 'float32')
"""

import contextlib
from collections.abc import Iterator

import tensorflow as tf

#: The precisions mtrec models are built and tested under.
PRECISIONS = ("float32", "mixed_bfloat16")


def check_precision(precision: str) -> str:
    """``precision`` if it is one of ``PRECISIONS``; else ``ValueError``.

    Example:

    >>> check_precision("mixed_bfloat16")
    'mixed_bfloat16'
    """
    if precision not in PRECISIONS:
        raise ValueError(
            f"`precision` must be one of {list(PRECISIONS)}. "
            f"Received: `precision={precision!r}`"
        )
    return precision


@contextlib.contextmanager
def precision_scope(precision: str) -> Iterator[None]:
    """Layers constructed inside get the dtype policy ``precision``.

    Sets Keras' global dtype policy for the block and restores the previous
    one after it, also on error. A layer keeps the policy it was constructed
    under (it is part of its ``get_config``), so build the whole model
    inside the block; calling or training it afterwards needs no scope.

    Args:
      precision: one of ``PRECISIONS``.

    Raises:
      ValueError: an unknown ``precision``.
    """
    check_precision(precision)
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy(precision)
    try:
        yield
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)
