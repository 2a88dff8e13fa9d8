"""Tests of the OMoE layer."""

# Keras 2 switch: mtrec must be imported before TensorFlow.
from mtrec.layers import OMoE  # isort: split

import numpy as np
from layer_suite import GatedLayerSuite
from layer_suite import expert_kernels
from layer_suite import np_experts
from layer_suite import np_gate
from layer_suite import np_mix

from mtrec.layers import MMoE

TASKS = ["ctr", "cvr", "like"]


class TestOMoE(GatedLayerSuite):
    layer_class = OMoE
    layer_kwargs = {"task_names": TASKS, "num_experts": 3, "expert_units": [4, 2]}
    expected_output_shapes = {"ctr": (4, 2), "cvr": (4, 2), "like": (4, 2)}
    # Experts: 2 layers x (kernel, bias) for all 3 experts; 1 linear gate x
    # (kernel, bias).
    expected_num_trainable_weights = 2 * 2 + 2
    expected_gate_widths = {"ctr": 3, "cvr": 3, "like": 3}
    bad_arguments = [
        ({"num_experts": 0}, "`num_experts` must be >= 1. Received: `num_experts=0`"),
        (
            {"expert_units": []},
            "`expert_units` must not be empty. Received: `expert_units=[]`",
        ),
        ({"dropout": 1.5}, "`dropout` must be in [0, 1). Received: `dropout=1.5`"),
        ({"l2": -1.0}, "`l2` must be >= 0. Received: `l2=-1.0`"),
        ({"task_names": []}, "`task_names` must not be empty."),
    ]

    def distinct_groups(self, layer):
        return {"experts": expert_kernels(layer.experts)}

    def test_sublayer_names(self):
        layer = self.make_layer()
        assert (layer.experts.name, layer.experts.num_experts) == ("experts", 3)
        assert layer.gate.name == "gate"

    def test_one_gate_shared_by_all_tasks(self):
        outputs, gates = self.make_layer()(self.inputs(), return_gates=True)
        for task in TASKS[1:]:
            np.testing.assert_array_equal(gates[task], gates[TASKS[0]])
            np.testing.assert_array_equal(outputs[task], outputs[TASKS[0]])

    def test_matches_numpy_reference(self):
        layer = self.built_layer()
        x = self.inputs().numpy()
        expected = np_mix(np_gate(layer.gate, x), np_experts(layer.experts, x))
        np.testing.assert_allclose(layer(x)["ctr"], expected, atol=1e-6)

    def test_equals_mmoe_with_the_same_gate_for_every_task(self):
        x = self.inputs()
        layer = self.built_layer()
        mmoe = MMoE(TASKS, num_experts=3, expert_units=[4, 2])
        mmoe.build((None, self.input_dim))
        mmoe.experts.set_weights(layer.experts.get_weights())
        for gate in mmoe.gates:
            gate.set_weights(layer.gate.get_weights())
        outputs = layer(x)
        for task, value in mmoe(x).items():
            np.testing.assert_allclose(outputs[task], value, atol=1e-6)
