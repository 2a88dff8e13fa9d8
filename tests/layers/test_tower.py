"""Tests of the Tower layer."""

# Keras 2 switch: mtrec must be imported before TensorFlow.
from mtrec.layers import Tower  # isort: split

import numpy as np
import pytest
import tensorflow as tf
from layer_suite import LayerSuite
from layer_suite import flat_kernels
from layer_suite import np_dense_stack

CONSTANT_ONE = {"class_name": "Constant", "config": {"value": 1.0}}


class TestTower(LayerSuite):
    layer_class = Tower
    # Two hidden layers of equal shape (3, 3): a shared seed would make them equal.
    layer_kwargs = {"units": [3, 3]}
    expected_output_shapes = {"output": (4, 1)}
    expected_num_trainable_weights = 6  # (kernel, bias) x 2 hidden + logit
    bad_arguments = [
        ({"dropout": 1.0}, "`dropout` must be in [0, 1). Received: `dropout=1.0`"),
        ({"dropout": "0.1"}, "`dropout` must be a number. Received: `dropout='0.1'`"),
        ({"l2": -1.0}, "`l2` must be >= 0. Received: `l2=-1.0`"),
    ]

    def distinct_groups(self, layer):
        hidden = [w.numpy().ravel() for w in layer.mlp.weights if "kernel" in w.name]
        groups = {f"dense_{i}": k for i, k in enumerate(hidden)}
        groups["logit"] = flat_kernels(layer.logit)
        return {"tower layers": groups}

    def test_matches_numpy(self):
        # z = w^T relu(W_2 relu(W_1 x + b_1) + b_2) + b.
        layer = self.built_layer()
        x = self.inputs().numpy()
        weights = layer.get_weights()
        expected = np_dense_stack(weights[:-2], x) @ weights[-2] + weights[-1]
        np.testing.assert_allclose(layer(x), expected, atol=1e-6)

    @pytest.mark.parametrize("units", [[3, 3], [2], []])
    def test_call_is_from_first_linear_of_first_linear(self, units):
        layer = self.built_layer(units=units, dropout=0.0)
        x = self.inputs()
        kernel, bias = layer.first_linear
        # The first dense layer's weights, or the logit's without hidden layers.
        assert kernel is layer.weights[0] and bias is layer.weights[1]
        got = layer.from_first_linear(tf.matmul(x, kernel) + bias)
        assert got.shape == (x.shape[0], 1)
        np.testing.assert_allclose(got, layer(x), rtol=1e-6, atol=1e-6)

    def test_hand_computed_logit_with_constant_initializers(self):
        # All kernels ones, biases zero: h = relu(sum(x)) in both hidden units,
        # z = h_1 + h_2 = 2 relu(sum(x)).
        layer = Tower(units=[2], kernel_initializer=CONSTANT_ONE)
        x = np.array([[1.0, 2.0, 0.0], [-1.0, -1.0, 0.5]], dtype="float32")
        np.testing.assert_allclose(layer(x), [[6.0], [0.0]], atol=1e-6)

    def test_empty_units_is_a_linear_logit(self):
        layer = Tower(units=[])
        layer.build((None, 3))
        kernel = np.array([[1.0], [-2.0], [0.5]], dtype="float32")
        layer.set_weights([kernel, np.array([0.25], dtype="float32")])
        x = self.inputs().numpy()
        np.testing.assert_allclose(layer(x), x @ kernel + 0.25, atol=1e-6)

    def test_l2_penalises_every_kernel_the_logit_included(self):
        layer = Tower(units=[2], l2=0.5, kernel_initializer=CONSTANT_ONE)
        layer.build((None, 3))
        # 0.5 * (6 ones in the hidden kernel + 2 in the logit's).
        np.testing.assert_allclose(float(tf.add_n(layer.losses)), 4.0, rtol=1e-6)
        assert len(layer.losses) == 2
        assert not Tower(units=[2]).losses

    def test_sublayers_are_built_in_their_name_scopes(self):
        layer = self.built_layer()
        assert [w.name for w in layer.weights] == [
            "mlp/kernel:0",
            "mlp/bias:0",
            "mlp/kernel:0",
            "mlp/bias:0",
            "logit/kernel:0",
            "logit/bias:0",
        ]
        assert layer.compute_output_shape((None, 3)) == (None, 1)

    def test_activation_is_resolved_and_serialised(self):
        layer = Tower(units=[2], activation="tanh")
        assert layer.activation is tf.keras.activations.tanh
        assert layer.mlp.activation is tf.keras.activations.tanh
        assert layer.get_config()["activation"] == "tanh"

    @pytest.mark.parametrize("units", [[3], []])
    def test_logit_is_a_multiply_and_row_sum_equal_to_its_dense(self, units):
        # One-column matmuls are oneDNN's slowest shape: the logit is
        # `one_unit_linear`, with the `logit` Dense's weights, values and
        # gradients.
        layer = self.built_layer(units=units)
        x = self.inputs()
        graph = tf.function(lambda: layer(x)).get_concrete_function().graph
        matmuls = [op for op in graph.get_operations() if op.type == "MatMul"]
        assert len(matmuls) == len(units)
        with tf.GradientTape(persistent=True) as tape:
            got = layer(x)
            want = layer.logit(layer.mlp(x))
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
        for a, b in zip(
            tape.gradient(got, layer.weights),
            tape.gradient(want, layer.weights),
            strict=True,
        ):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
