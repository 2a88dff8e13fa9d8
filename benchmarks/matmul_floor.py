"""The matmul floor of a model: how fast it could run if its matmuls were all
it did, at the speed this core gives the model's largest matmul.

A census model of the DeepCTR comparison is a few dense layers over 255
inputs: MMoE's experts and gates read them in one ``(1024, 255) x (255, 272)``
matmul, which holds 98% of its multiply-adds. Once the rest of the step is
small, no library can run the model faster than its matmuls; this module
measures that bound, in the worker process, right after the worker's own
timings (same pinned core, same moment's load):

- ``flops_per_example``: ``2 * prod(shape)`` summed over the model's kernels
  (trainable variables of rank 2 or more outside the feature layer; a
  stacked experts kernel ``(E, in, out)`` counts its ``E`` matmuls): each is
  applied once per example;
- ``gemm``: the largest matmul, ``(batch, d_in) x (d_in, d_out)``: of the
  kernels grouped by input width, the group with the most multiply-adds
  (the experts and gates reading the features share one matmul in mtrec),
  timed as a single matmul of ``steps_per_call * batch`` rows: the most favourable form
  of that product (no call overhead, one GEMM), best of ``passes``;
- ``inference_examples_per_second``: the GEMM's FLOP/s over
  ``flops_per_example``; ``train_examples_per_second``: over three times
  that (a dense layer's backward pass is two matmuls of the forward's size:
  ``dX`` and ``dW``).

Both are upper bounds: they leave out every other op (gathers, activations,
the loss, the optimizer) and run all matmuls at the largest one's speed.
"""

import time

#: Passes of the timed GEMM; the fastest counts (the least disturbed by load).
PASSES = 5


def model_kernels(model) -> list[tuple[int, ...]]:
    """Shapes of ``model``'s kernels: trainable variables of rank >= 2 that
    are not its feature layer's (embedding tables)."""
    tables = {v.ref() for v in model.feature_layer.trainable_variables}
    return [
        tuple(int(d) for d in v.shape)
        for v in model.trainable_variables
        if v.shape.rank >= 2 and v.ref() not in tables
    ]


def flops_per_example(kernels: list[tuple[int, ...]]) -> int:
    """``2 * prod(shape)`` summed: multiply-adds of one example, times two.

    >>> flops_per_example([(8, 255, 32), (255, 8), (32, 16), (16, 1)])
    135696
    """
    total = 0
    for shape in kernels:
        size = 1
        for d in shape:
            size *= d
        total += 2 * size
    return total


def largest_matmul(kernels: list[tuple[int, ...]]) -> tuple[int, int]:
    """``(d_in, d_out)``: of the kernels grouped by input width (a stacked
    ``(E, in, out)`` gives ``E * out`` outputs), the group with the most
    multiply-adds ``d_in * d_out`` (in mtrec the experts and gates that read
    the same input are one matmul).

    >>> largest_matmul([(8, 255, 32), (255, 8), (255, 8), (32, 16), (16, 1)])
    (255, 272)
    """
    if not kernels:
        raise ValueError("`kernels` must be non-empty. Received: `kernels=[]`")
    outputs: dict[int, int] = {}
    for shape in kernels:
        stacked = shape[0] if len(shape) == 3 else 1
        outputs[shape[-2]] = outputs.get(shape[-2], 0) + stacked * shape[-1]
    return max(outputs.items(), key=lambda item: item[0] * item[1])


def gemm_flops_per_second(tf, rows: int, d_in: int, d_out: int) -> float:
    """FLOP/s of one ``(rows, d_in) x (d_in, d_out)`` float32 matmul on the
    current threads, the fastest of :data:`PASSES` after one warm-up."""
    a = tf.random.uniform((rows, d_in))
    b = tf.random.uniform((d_in, d_out))
    product = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)[:1]))
    product(a, b)  # traces; the first product is not timed
    best = float("inf")
    for _ in range(PASSES):
        begun = time.perf_counter()
        product(a, b).numpy()
        best = min(best, time.perf_counter() - begun)
    return 2.0 * rows * d_in * d_out / best


def matmul_floor(tf, model, batch: int, steps_per_call: int) -> dict:
    """The model's matmul floor (module docstring), measured now.

    Args:
      tf: the TensorFlow module the worker imported.
      model: the built mtrec model.
      batch: rows per batch.
      steps_per_call: batches the timed GEMM stands for (its rows are
        ``batch * steps_per_call``).
    """
    kernels = model_kernels(model)
    flops = flops_per_example(kernels)
    d_in, d_out = largest_matmul(kernels)
    rate = gemm_flops_per_second(tf, batch * steps_per_call, d_in, d_out)
    return {
        "flops_per_example": flops,
        "gemm": [batch, d_in, d_out],
        "gemm_gflops": round(rate / 1e9, 2),
        "inference_examples_per_second": round(rate / flops, 1),
        "train_examples_per_second": round(rate / (3 * flops), 1),
    }
