"""Tests of the Gate layer."""

# Keras 2 switch: mtrec must be imported before TensorFlow.
from mtrec.layers import Gate  # isort: split

import numpy as np
import pytest
from layer_suite import LayerSuite
from layer_suite import assert_softmax_rows
from layer_suite import flat_kernels
from layer_suite import np_gate
from layer_suite import np_softmax


class TestGate(LayerSuite):
    layer_class = Gate
    layer_kwargs = {"num_experts": 3, "units": [4]}
    expected_output_shapes = {"output": (4, 3)}
    expected_num_trainable_weights = 4  # hidden (kernel, bias) + logits (kernel, bias)
    bad_arguments = [
        (
            {"num_experts": 0},
            "`num_experts` must be >= 1. Received: `num_experts=0`",
        ),
        ({"units": [0]}, "`units` must all be >= 1. Received: `units=[0]`"),
        ({"l2": -0.5}, "`l2` must be >= 0. Received: `l2=-0.5`"),
    ]

    def distinct_groups(self, layer):
        return {
            "gate layers": {
                "mlp": flat_kernels(layer.mlp),
                "logits": flat_kernels(layer.logits),
            }
        }

    @pytest.mark.parametrize("units", [(), (4,)])
    def test_rows_are_softmax_weights(self, units):
        gates = self.make_layer(units=units)(self.inputs() * 10.0)
        assert_softmax_rows(gates, 3)

    def test_linear_gate_is_softmax_of_affine_map(self):
        layer = self.built_layer(units=())
        assert [w.shape for w in layer.weights] == [(3, 3), (3,)]
        kernel = np.arange(9, dtype="float32").reshape(3, 3) / 10.0
        bias = np.array([0.5, -0.5, 0.0], dtype="float32")
        layer.set_weights([kernel, bias])
        x = self.inputs().numpy()
        np.testing.assert_allclose(
            layer(x), np_softmax(x @ kernel + bias), rtol=1e-5, atol=1e-6
        )

    def test_hidden_gate_matches_numpy(self):
        layer = self.built_layer()
        x = self.inputs().numpy()
        np.testing.assert_allclose(layer(x), np_gate(layer, x), atol=1e-6)

    def test_single_expert_gets_weight_one(self):
        np.testing.assert_array_equal(Gate(1)(self.inputs()), np.ones((4, 1)))
