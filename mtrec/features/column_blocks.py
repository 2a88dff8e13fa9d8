"""Copies between per-feature columns and the gathered ``(batch, F, d)`` blocks."""

import tensorflow as tf


def stack_columns(ids: list[tf.Tensor]) -> tf.Tensor:
    """``tf.stack(ids, axis=1)``: ``F`` id vectors ``(batch,)`` as ``(batch, F)``.

    Stacked as rows and transposed: stacking on axis 1 copies one element
    at a time (census's 31 columns of 1024 ids: 1.11x faster per call, range
    0.99-1.24 over rounds, in ``benchmarks/step_copies.py``).

    Example:

    >>> stack_columns([tf.constant([1, 2]), tf.constant([3, 4])]).numpy().tolist()
    [[1, 3], [2, 4]]
    """
    return tf.transpose(tf.stack(ids, axis=0))


def split_runs(blocks: dict, runs: list) -> list[tf.Tensor]:
    """``(batch, (stop - start) * d)`` for each ``[key, start, stop]`` run.

    ``blocks[key]`` is ``(batch, F, d)``. The runs of one block partition its
    columns in order, so each block is cut by one ``tf.split`` of its flat
    ``(batch, F * d)`` view: the backward pass is one concat, where a strided
    slice per run would write a zero-filled block per run (quadratic in the
    number of runs).

    Example:

    >>> block = tf.reshape(tf.range(6), (1, 3, 2))
    >>> [t.numpy().tolist() for t in split_runs({8: block}, [[8, 0, 1], [8, 1, 3]])]
    [[[0, 1]], [[2, 3, 4, 5]]]
    """
    cuts: dict = {}
    for key, start, stop in runs:
        cuts.setdefault(key, []).append(stop - start)
    split = {}
    for key, sizes in cuts.items():
        block = blocks[key]
        flat = tf.reshape(block, [-1, block.shape[1] * block.shape[2]])
        if len(sizes) == 1:
            split[key] = [flat]
        else:
            split[key] = tf.split(flat, [n * block.shape[2] for n in sizes], axis=1)
    return [split[key].pop(0) for key, _, _ in runs]
