"""Tests of the CGC layer."""

# Keras 2 switch: mtrec must be imported before TensorFlow.
from mtrec.layers import CGC  # isort: split

import numpy as np
import pytest
from layer_suite import GatedLayerSuite
from layer_suite import assert_softmax_rows
from layer_suite import flat_kernels
from layer_suite import np_expert
from layer_suite import np_gate
from layer_suite import np_mix

TASKS = ["ctr", "cvr"]


def perturb(layers):
    for layer in layers:
        layer.set_weights([w + 0.5 for w in layer.get_weights()])


class TestCGC(GatedLayerSuite):
    layer_class = CGC
    layer_kwargs = {
        "task_names": TASKS,
        "num_shared_experts": 2,
        "num_task_experts": 1,
        "expert_units": [4, 2],
    }
    expected_output_shapes = {"ctr": (4, 2), "cvr": (4, 2)}
    # (2 task + 2 shared experts) x 2 layers x (kernel, bias) + 2 gates x 2.
    expected_num_trainable_weights = 4 * 4 + 2 * 2
    # Each task gate mixes its 1 own expert and the 2 shared ones.
    expected_gate_widths = {"ctr": 3, "cvr": 3}
    bad_arguments = [
        (
            {"num_shared_experts": -1},
            "`num_shared_experts` must be >= 0. Received: `num_shared_experts=-1`",
        ),
        (
            {"num_task_experts": -1},
            "`num_task_experts` must be >= 0. Received: `num_task_experts=-1`",
        ),
        (
            {"num_shared_experts": 0, "num_task_experts": 0},
            "`num_shared_experts + num_task_experts` must be >= 1. Received: "
            "`num_shared_experts=0`, `num_task_experts=0`",
        ),
        (
            {"task_names": ["ctr", "shared"]},
            "`task_names` must not contain 'shared', which names the shared "
            "experts' output. Received: `task_names=['ctr', 'shared']`",
        ),
        (
            {"expert_units": []},
            "`expert_units` must not be empty. Received: `expert_units=[]`",
        ),
        ({"dropout": 1.0}, "`dropout` must be in [0, 1). Received: `dropout=1.0`"),
        ({"l2": -1.0}, "`l2` must be >= 0. Received: `l2=-1.0`"),
    ]

    def distinct_groups(self, layer):
        experts = [*layer.task_experts, *layer.shared_experts]
        gates = [*layer.task_gates, layer.shared_gate]
        return {
            "experts": {e.name: flat_kernels(e) for e in experts},
            "gates": {g.name: flat_kernels(g) for g in gates if g is not None},
        }

    def dict_inputs(self) -> dict[str, np.ndarray]:
        keys = [*TASKS, "shared"]
        return {key: self.inputs(seed=i).numpy() for i, key in enumerate(keys)}

    def test_sublayer_names(self):
        layer = self.make_layer()
        assert [e.name for e in layer.task_experts] == ["ctr_expert_0", "cvr_expert_0"]
        assert [e.name for e in layer.shared_experts] == [
            "shared_expert_0",
            "shared_expert_1",
        ]
        assert [g.name for g in layer.task_gates] == ["gate_ctr", "gate_cvr"]
        if layer.return_shared:
            assert layer.shared_gate.name == "gate_shared"
        else:
            assert layer.shared_gate is None

    def test_matches_numpy_reference_with_dict_inputs(self):
        layer = self.make_layer()
        x = self.dict_inputs()
        outputs, gates = layer(x, return_gates=True)
        shared = [np_expert(e, x["shared"]) for e in layer.shared_experts]
        own = {t: [np_expert(e, x[t]) for e in layer.experts_of(t)] for t in TASKS}
        for task, gate in zip(TASKS, layer.task_gates):
            g = np_gate(gate, x[task])
            np.testing.assert_allclose(gates[task], g, atol=1e-6)
            expected = np_mix(g, own[task] + shared)
            np.testing.assert_allclose(outputs[task], expected, atol=1e-6)
        if layer.return_shared:
            g = np_gate(layer.shared_gate, x["shared"])
            expected = np_mix(g, own["ctr"] + own["cvr"] + shared)
            np.testing.assert_allclose(outputs["shared"], expected, atol=1e-6)

    def test_tensor_input_feeds_every_expert(self):
        layer = self.make_layer()
        x = self.inputs()
        same = {key: x for key in [*TASKS, "shared"]}
        np.testing.assert_array_equal(layer(x)["ctr"], layer(same)["ctr"])

    def test_task_output_ignores_other_tasks_experts(self):
        layer = self.make_layer()
        x = self.inputs()
        before = layer(x, return_gates=True)
        perturb(layer.experts_of("cvr"))
        outputs, gates = layer(x, return_gates=True)
        np.testing.assert_array_equal(outputs["ctr"], before[0]["ctr"])
        np.testing.assert_array_equal(gates["ctr"], before[1]["ctr"])
        assert not np.allclose(outputs["cvr"], before[0]["cvr"])
        if layer.return_shared:
            assert not np.allclose(outputs["shared"], before[0]["shared"])

    def test_shared_experts_reach_every_task(self):
        layer = self.make_layer()
        x = self.inputs()
        before = layer(x)
        perturb(layer.shared_experts)
        after = layer(x)
        for key in before:
            assert not np.allclose(after[key], before[key]), key

    def test_task_input_reaches_only_its_task(self):
        layer = self.make_layer()
        x = self.dict_inputs()
        before = layer(x)
        after = layer({**x, "cvr": x["cvr"] + 1.0})
        np.testing.assert_array_equal(after["ctr"], before["ctr"])
        assert not np.allclose(after["cvr"], before["cvr"])

    def test_dict_inputs_need_every_key(self):
        x = self.dict_inputs()
        del x["shared"]
        with pytest.raises(ValueError, match=r"Missing: \['shared'\]"):
            self.make_layer()(x)

    @pytest.mark.parametrize(
        ("num_shared", "num_task", "width"), [(0, 2, 2), (2, 0, 2)]
    )
    def test_one_kind_of_expert_only(self, num_shared, num_task, width):
        layer = self.make_layer(
            num_shared_experts=num_shared, num_task_experts=num_task
        )
        outputs, gates = layer(self.inputs(), return_gates=True)
        assert outputs["ctr"].shape == (4, 2)
        assert_softmax_rows(gates["ctr"], width)


class TestCGCReturnShared(TestCGC):
    """CGC as used inside PLE: also a shared gate over all experts."""

    layer_kwargs = {**TestCGC.layer_kwargs, "return_shared": True}
    expected_output_shapes = {"ctr": (4, 2), "cvr": (4, 2), "shared": (4, 2)}
    expected_num_trainable_weights = TestCGC.expected_num_trainable_weights + 2
    # The shared gate mixes 2 task experts and 2 shared experts.
    expected_gate_widths = {**TestCGC.expected_gate_widths, "shared": 4}
