"""Tests of the MLP layer."""

# Keras 2 switch: mtrec must be imported before TensorFlow.
from mtrec.layers import MLP  # isort: split

import numpy as np
import pytest
import tensorflow as tf
from layer_suite import SEEDED_INITIALIZER
from layer_suite import LayerSuite
from layer_suite import assert_pairwise_distinct
from layer_suite import np_dense_stack


class TestMLP(LayerSuite):
    layer_class = MLP
    # Two layers of equal shape (3, 3): a shared seed would make them equal.
    layer_kwargs = {"units": [3, 3]}
    expected_output_shapes = {"output": (4, 3)}
    expected_num_trainable_weights = 4  # (kernel, bias) x 2 layers
    bad_arguments = [
        ({"units": [3, 0]}, "`units` must all be >= 1. Received: `units=[3, 0]`"),
        # Not silently converted: "64" is not [6, 4], 2.7 is not 2.
        ({"units": "64"}, "`units` must be a sequence of ints. Received: `units='64'`"),
        (
            {"units": [2.7]},
            "`units` must be a sequence of ints. Received: `units=[2.7]`",
        ),
        ({"dropout": 1.0}, "`dropout` must be in [0, 1). Received: `dropout=1.0`"),
        ({"l2": -1.0}, "`l2` must be >= 0. Received: `l2=-1.0`"),
    ]

    def distinct_groups(self, layer):
        kernels = [w.numpy().ravel() for w in layer.weights if "kernel" in w.name]
        return {"dense layers": {f"dense_{i}": k for i, k in enumerate(kernels)}}

    def test_matches_numpy(self):
        layer = self.built_layer()
        x = self.inputs().numpy()
        np.testing.assert_allclose(
            layer(x), np_dense_stack(layer.get_weights(), x), atol=1e-6
        )

    @pytest.mark.parametrize(
        "overrides",
        [{}, {"use_bias": False}, {"batch_norm": True}, {"dropout": 0.5}],
    )
    def test_call_is_from_first_linear_of_first_linear(self, overrides):
        tf.keras.utils.set_random_seed(0)
        layer = self.built_layer(**overrides)
        x = self.inputs()
        kernel, bias = layer.first_linear
        assert kernel is layer.weights[0]
        assert (bias is None) == (not layer.use_bias)
        pre = tf.matmul(x, kernel) + (0.0 if bias is None else bias)
        for training in (False, True):
            tf.keras.utils.set_random_seed(1)  # the same dropout mask
            expected = layer(x, training=training)
            tf.keras.utils.set_random_seed(1)
            got = layer.from_first_linear(pre, training=training)
            np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)

    def test_empty_units_has_no_first_linear(self):
        layer = MLP(units=[])
        layer.build((None, 3))
        assert layer.first_linear is None

    def test_empty_units_is_identity(self):
        x = self.inputs()
        np.testing.assert_array_equal(MLP(units=[])(x), x)

    def test_two_seeded_mlps_with_different_names_are_equal(self):
        # The seed is derived from the initialiser only, not from the layer
        # name, so a seeded MLP is reproducible whatever Keras names it.
        a = MLP([3], kernel_initializer=SEEDED_INITIALIZER)
        b = MLP([3], kernel_initializer=SEEDED_INITIALIZER)
        a.build((None, 3))
        b.build((None, 3))
        assert a.name != b.name
        np.testing.assert_array_equal(a.get_weights()[0], b.get_weights()[0])

    def test_seeded_layers_do_not_share_a_random_stream(self):
        # Layers of different shapes seeded alike would start with equal values.
        layer = MLP([4, 2], kernel_initializer=SEEDED_INITIALIZER)
        layer.build((None, 2))
        kernels = [w.numpy().ravel() for w in layer.weights if "kernel" in w.name]
        assert_pairwise_distinct({"dense_0": kernels[0], "dense_1": kernels[1]})
