"""Tests of the MMoE layer."""

# Keras 2 switch: mtrec must be imported before TensorFlow.
from mtrec.layers import MMoE  # isort: split

import math

import numpy as np
import pytest
import tensorflow as tf
from layer_suite import GatedLayerSuite
from layer_suite import expert_kernels
from layer_suite import expert_weights
from layer_suite import flat_kernels
from layer_suite import np_experts
from layer_suite import np_gate
from layer_suite import np_mix
from layer_suite import set_expert_weights

from mtrec.layers import MLP
from mtrec.layers import Experts
from mtrec.layers import Gate
from mtrec.layers import SharedBottom

TASKS = ["ctr", "cvr"]


class TestMMoE(GatedLayerSuite):
    layer_class = MMoE
    layer_kwargs = {"task_names": TASKS, "num_experts": 3, "expert_units": [4, 2]}
    expected_output_shapes = {"ctr": (4, 2), "cvr": (4, 2)}
    # Experts: 2 layers x (kernel, bias) for all 3 experts; 2 linear gates x
    # (kernel, bias).
    expected_num_trainable_weights = 2 * 2 + 2 * 2
    expected_gate_widths = {"ctr": 3, "cvr": 3}
    bad_arguments = [
        ({"num_experts": 0}, "`num_experts` must be >= 1. Received: `num_experts=0`"),
        (
            {"expert_units": []},
            "`expert_units` must not be empty. Received: `expert_units=[]`",
        ),
        (
            {"expert_units": [4, 0]},
            "`expert_units` must all be >= 1. Received: `expert_units=[4, 0]`",
        ),
        (
            {"gate_units": [-1]},
            "`gate_units` must all be >= 1. Received: `gate_units=[-1]`",
        ),
        ({"dropout": -0.1}, "`dropout` must be in [0, 1). Received: `dropout=-0.1`"),
        ({"l2": -1.0}, "`l2` must be >= 0. Received: `l2=-1.0`"),
        ({"task_names": []}, "`task_names` must not be empty."),
        ({"task_names": "ctr"}, "`task_names` must be a sequence of strings"),
        (
            {"task_names": ["ctr", "ctr"]},
            "`task_names` must be unique. Received: `task_names=['ctr', 'ctr']`",
        ),
    ]

    def distinct_groups(self, layer):
        return {
            "experts": expert_kernels(layer.experts),
            "gates": {g.name: flat_kernels(g) for g in layer.gates},
        }

    def test_sublayers(self):
        layer = self.make_layer()
        assert isinstance(layer.experts, Experts)
        assert (layer.experts.name, layer.experts.num_experts) == ("experts", 3)
        assert [type(g) for g in layer.gates] == [Gate, Gate]
        assert [g.name for g in layer.gates] == ["gate_ctr", "gate_cvr"]

    @pytest.mark.parametrize("gate_units", [(), (3,)])
    def test_matches_numpy_reference(self, gate_units):
        # f_k = sum_i g_k(x)_i e_i(x), every term from the layer's weights.
        layer = self.built_layer(gate_units=gate_units)
        x = self.inputs().numpy()
        experts = np_experts(layer.experts, x)
        outputs, gates = layer(x, return_gates=True)
        for task, gate in zip(TASKS, layer.gates):
            np.testing.assert_allclose(gates[task], np_gate(gate, x), atol=1e-6)
            expected = np_mix(np_gate(gate, x), experts)
            np.testing.assert_allclose(outputs[task], expected, atol=1e-6)

    @pytest.mark.parametrize("gate_units", [(), (3,)])
    def test_gradients_match_per_expert_layers(self, gate_units):
        # The previous implementation (one MLP per expert, one Gate per task,
        # einsum mixing) with copied weights: same outputs and input gradient.
        layer = self.built_layer(gate_units=gate_units)
        x = self.inputs()
        experts = []
        for i in range(3):
            mlp = MLP([4, 2])
            mlp.build((None, self.input_dim))
            mlp.set_weights(expert_weights(layer.experts, i))
            experts.append(mlp)
        gates = []
        for k in range(2):
            gate = Gate(3, units=gate_units)
            gate.build((None, self.input_dim))
            gate.set_weights(layer.gates[k].get_weights())
            gates.append(gate)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            outputs = layer(x)
            stacked = tf.stack([e(x) for e in experts], axis=1)
            old = {
                t: tf.einsum("bn,bnu->bu", g(x), stacked) for t, g in zip(TASKS, gates)
            }
            new_loss = tf.add_n([tf.reduce_sum(v * v) for v in outputs.values()])
            old_loss = tf.add_n([tf.reduce_sum(v * v) for v in old.values()])
        for task in TASKS:
            np.testing.assert_allclose(outputs[task], old[task], atol=1e-6)
        np.testing.assert_allclose(
            tape.gradient(new_loss, x), tape.gradient(old_loss, x), atol=1e-6
        )

    def test_hand_computed_output_with_constant_initializers(self):
        # All kernels are ones and all biases zeros; then expert_1's bias is set
        # to [2, 4] and the gate biases to [ln 3, 0] (ctr) and [0, ln 3] (cvr).
        layer = MMoE(
            ["ctr", "cvr"],
            num_experts=2,
            expert_units=[2],
            kernel_initializer={"class_name": "Constant", "config": {"value": 1.0}},
        )
        layer.build((None, 2))
        kernel = np.ones((2, 2), dtype="float32")
        set_expert_weights(layer.experts, 1, [kernel, np.array([2.0, 4.0], "float32")])
        ln3 = math.log(3.0)
        layer.gates[0].set_weights([kernel, np.array([ln3, 0.0], "float32")])
        layer.gates[1].set_weights([kernel, np.array([0.0, ln3], "float32")])
        x = np.array([[1.0, 2.0], [0.0, -1.0]], dtype="float32")
        outputs, gates = layer(x, return_gates=True)
        # Both gate logits get the same sum(x): softmax([ln 3, 0]) = [3/4, 1/4].
        np.testing.assert_allclose(gates["ctr"], [[0.75, 0.25]] * 2, atol=1e-6)
        np.testing.assert_allclose(gates["cvr"], [[0.25, 0.75]] * 2, atol=1e-6)
        # Row 1: sum(x) = 3, e_0 = relu([3, 3]) = [3, 3], e_1 = relu([5, 7]).
        #   ctr = 0.75 [3, 3] + 0.25 [5, 7] = [3.5, 4.0]
        #   cvr = 0.25 [3, 3] + 0.75 [5, 7] = [4.5, 6.0]
        # Row 2: sum(x) = -1, e_0 = relu([-1, -1]) = [0, 0], e_1 = relu([1, 3]).
        #   ctr = 0.25 [1, 3] = [0.25, 0.75], cvr = 0.75 [1, 3] = [0.75, 2.25]
        np.testing.assert_allclose(outputs["ctr"], [[3.5, 4.0], [0.25, 0.75]], 1e-6)
        np.testing.assert_allclose(outputs["cvr"], [[4.5, 6.0], [0.75, 2.25]], 1e-6)

    def test_one_expert_equals_shared_bottom(self):
        x = self.inputs()
        bottom = SharedBottom(TASKS, units=[4, 2])
        expected = bottom(x)
        layer = self.built_layer(num_experts=1)
        set_expert_weights(layer.experts, 0, bottom.bottom.get_weights())
        outputs, gates = layer(x, return_gates=True)
        for task in TASKS:
            np.testing.assert_array_equal(gates[task], np.ones((4, 1)))
            np.testing.assert_allclose(outputs[task], expected[task], atol=1e-6)

    def test_gates_differ_between_tasks(self):
        _, gates = self.make_layer()(self.inputs(), return_gates=True)
        assert not np.allclose(gates["ctr"], gates["cvr"])
