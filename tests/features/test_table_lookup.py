"""int64_pairs: the sparse one-hot's indices of the dense-gradient gather."""

import numpy as np
import pytest
import tensorflow as tf

from mtrec.features import int64_pairs

# Bit patterns that are special as float64 (the pairs pass through float64
# bitcasts): zero and small ids (denormals), negative zero, infinity, a
# signalling and a quiet NaN, the extremes.
SPECIAL = [
    0,
    1,
    7,
    -(2**63),
    0x7FF0000000000000,
    0x7FF0000000000001,
    0x7FF8000000000001,
    -1,
    2**63 - 1,
]


@pytest.mark.parametrize("size", [0, 1, 9, 31744, 100_003])
@pytest.mark.parametrize("mode", ["eager", "graph"])
def test_int64_pairs_equals_stack_on_axis_1(size, mode):
    rng = np.random.default_rng(size)
    first = rng.integers(-(2**63), 2**63 - 1, size, dtype=np.int64)
    second = rng.integers(0, 50, size, dtype=np.int64)
    first[: size // 2] = np.arange(size // 2)  # row numbers, as in the gradient
    special = np.array(SPECIAL, np.int64)[:size]
    first[: len(special)] = special
    second[: len(special)] = special[::-1]
    fn = int64_pairs if mode == "eager" else tf.function(int64_pairs)
    got = fn(tf.constant(first), tf.constant(second))
    assert got.dtype == tf.int64
    assert got.shape == (size, 2)
    np.testing.assert_array_equal(got.numpy(), np.stack([first, second], axis=1))


def test_int64_pairs_of_an_unknown_length_has_a_known_width():
    fn = tf.function(
        int64_pairs,
        input_signature=[tf.TensorSpec([None], tf.int64)] * 2,
    )
    graph = fn.get_concrete_function().graph
    assert graph.outputs[0].shape.as_list() == [None, 2]
