"""benchmarks/matmul_floor.py: the kernels counted, the largest matmul, the rate."""

import sys

import pytest
import tensorflow as tf
from script_runs import BENCHMARKS

import mtrec

sys.path.insert(0, str(BENCHMARKS))

import matmul_floor  # noqa: E402


def test_kernels_leave_out_the_embeddings_and_biases():
    features = mtrec.FeatureEmbedding(
        [
            {
                "name": "c",
                "kind": "categorical",
                "dtype": "int64",
                "num_ids": 5,
                "embedding_dim": 4,
            }
        ]
    )
    model = mtrec.MultiTaskRanker(
        features,
        mtrec.MMoE(["a", "b"], num_experts=3, expert_units=[6]),
        [mtrec.Task("a", "y1"), mtrec.Task("b", "y2")],
        tower_units=[2],
    )
    model({"c": tf.constant([0, 4], tf.int64)})
    kernels = matmul_floor.model_kernels(model)
    # The three experts as one (4, 18) kernel, two gates, two towers.
    assert sorted(kernels) == [(2, 1), (2, 1), (4, 3), (4, 3), (4, 18), (6, 2), (6, 2)]
    assert matmul_floor.flops_per_example(kernels) == 2 * (
        4 * 18 + 2 * 4 * 3 + 2 * (6 * 2 + 2)
    )
    assert matmul_floor.largest_matmul(kernels) == (4, 18 + 2 * 3)


def test_a_stacked_kernel_counts_each_of_its_matmuls():
    assert matmul_floor.flops_per_example([(3, 4, 6)]) == 2 * 3 * 4 * 6
    assert matmul_floor.largest_matmul([(3, 4, 6), (4, 2), (6, 1)]) == (4, 20)
    assert matmul_floor.largest_matmul([(4, 2), (6, 1), (6, 1)]) == (6, 2)
    assert matmul_floor.largest_matmul([(3, 4, 6), (4, 2)]) == (4, 20)


def test_largest_matmul_of_no_kernels_is_an_error():
    with pytest.raises(ValueError, match="`kernels` must be non-empty"):
        matmul_floor.largest_matmul([])


def test_floor_follows_from_the_measured_rate():
    class Fake:
        feature_layer = tf.keras.layers.Layer()
        trainable_variables = [
            tf.Variable(tf.zeros((256, 128))),
            tf.Variable(tf.zeros(8)),
        ]

    floor = matmul_floor.matmul_floor(tf, Fake(), batch=256, steps_per_call=2)
    assert floor["flops_per_example"] == 2 * 256 * 128
    assert floor["gemm"] == [256, 256, 128]
    rate = floor["gemm_gflops"] * 1e9
    assert rate > 0
    assert floor["inference_examples_per_second"] == pytest.approx(
        rate / (2 * 256 * 128), rel=1e-2
    )
    assert floor["train_examples_per_second"] == pytest.approx(
        rate / (3 * 2 * 256 * 128), rel=1e-2
    )
