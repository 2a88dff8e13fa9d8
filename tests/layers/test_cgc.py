"""Tests of the CGC layer."""

# Keras 2 switch: mtrec must be imported before TensorFlow.
from mtrec.layers import CGC  # isort: split

import numpy as np
import pytest
from layer_suite import GatedLayerSuite
from layer_suite import assert_softmax_rows
from layer_suite import expert_kernels
from layer_suite import flat_kernels
from layer_suite import np_experts
from layer_suite import np_gate
from layer_suite import np_mix

from mtrec.layers import Experts
from mtrec.layers import Gate

TASKS = ["ctr", "cvr"]


def perturb(layer):
    layer.set_weights([w + 0.5 for w in layer.get_weights()])


def group_kernels(layer) -> dict[str, np.ndarray]:
    """Every expert of every group of a CGC: ``{group/expert_i: kernels}``."""
    groups = [*layer.task_experts, layer.shared_experts]
    return {
        f"{group.name}/{name}": kernels
        for group in groups
        if group is not None
        for name, kernels in expert_kernels(group).items()
    }


class TestCGC(GatedLayerSuite):
    layer_class = CGC
    layer_kwargs = {
        "task_names": TASKS,
        "num_shared_experts": 2,
        "num_task_experts": 1,
        "expert_units": [4, 2],
    }
    expected_output_shapes = {"ctr": (4, 2), "cvr": (4, 2)}
    # 3 expert groups (ctr: 1, cvr: 1, shared: 2) x 2 layers x (kernel, bias)
    # + 2 linear gates x (kernel, bias).
    expected_num_trainable_weights = 3 * 4 + 2 * 2
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
        gates = [*layer.task_gates, layer.shared_gate]
        return {
            "experts": group_kernels(layer),
            "gates": {g.name: flat_kernels(g) for g in gates if g is not None},
        }

    def dict_inputs(self) -> dict[str, np.ndarray]:
        keys = [*TASKS, "shared"]
        return {key: self.inputs(seed=i).numpy() for i, key in enumerate(keys)}

    def test_sublayers(self):
        layer = self.make_layer()
        groups = [*layer.task_experts, layer.shared_experts]
        assert all(isinstance(g, Experts) for g in groups)
        assert [(g.name, g.num_experts) for g in groups] == [
            ("ctr_experts", 1),
            ("cvr_experts", 1),
            ("shared_experts", 2),
        ]
        assert layer.experts_of("cvr") is layer.task_experts[1]
        assert layer.experts_of("shared") is layer.shared_experts
        assert [type(g) for g in layer.task_gates] == [Gate, Gate]
        assert [g.name for g in layer.task_gates] == ["gate_ctr", "gate_cvr"]
        if layer.return_shared:
            assert layer.shared_gate.name == "gate_shared"
        else:
            assert layer.shared_gate is None

    @pytest.mark.parametrize("gate_units", [(), (3,)])
    def test_matches_numpy_reference_with_dict_inputs(self, gate_units):
        # f_k = g_k(x_k)^T [E_k(x_k), E_s(x_s)] from the layer's weights.
        layer = self.make_layer(gate_units=gate_units)
        x = self.dict_inputs()
        outputs, gates = layer(x, return_gates=True)
        shared = np_experts(layer.shared_experts, x["shared"])
        own = {t: np_experts(layer.experts_of(t), x[t]) for t in TASKS}
        for task, gate in zip(TASKS, layer.task_gates):
            g = np_gate(gate, x[task])
            np.testing.assert_allclose(gates[task], g, atol=1e-6)
            expected = np_mix(g, own[task] + shared)
            np.testing.assert_allclose(outputs[task], expected, atol=1e-6)
        if layer.return_shared:
            g = np_gate(layer.shared_gate, x["shared"])
            np.testing.assert_allclose(gates["shared"], g, atol=1e-6)
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
        # An empty group has no layer.
        assert (layer.shared_experts is None) == (num_shared == 0)
        assert len(layer.task_experts) == (len(TASKS) if num_task else 0)
        outputs, gates = layer(self.inputs(), return_gates=True)
        assert outputs["ctr"].shape == (4, 2)
        assert_softmax_rows(gates["ctr"], width)


class TestCGCReturnShared(TestCGC):
    """CGC as used inside PLE: also a shared gate over all experts."""

    layer_kwargs = {**TestCGC.layer_kwargs, "return_shared": True}
    expected_output_shapes = {"ctr": (4, 2), "cvr": (4, 2), "shared": (4, 2)}
    # Plus the shared gate's (kernel, bias).
    expected_num_trainable_weights = TestCGC.expected_num_trainable_weights + 2
    # The shared gate mixes 2 task experts and 2 shared experts.
    expected_gate_widths = {**TestCGC.expected_gate_widths, "shared": 4}
