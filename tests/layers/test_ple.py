"""Tests of the PLE layer."""

# Keras 2 switch: mtrec must be imported before TensorFlow.
from mtrec.layers import PLE  # isort: split

import numpy as np
import pytest
from layer_suite import GatedLayerSuite
from layer_suite import expert_kernels
from layer_suite import flat_kernels
from layer_suite import np_experts
from layer_suite import np_linear_gates
from layer_suite import np_mix
from layer_suite import np_softmax
from layer_suite import perturb_experts

from mtrec.layers import CGC

TASKS = ["ctr", "cvr"]
EXPERTS = {"num_shared_experts": 1, "num_task_experts": 2, "expert_units": [4, 2]}


class TestPLE(GatedLayerSuite):
    layer_class = PLE
    layer_kwargs = {"task_names": TASKS, "num_levels": 2, **EXPERTS}
    expected_output_shapes = {"ctr": (4, 2), "cvr": (4, 2)}
    # Per level: all (2 x 2 task + 1 shared) experts, 2 layers x (kernel, bias),
    # and the linear task gates, one (kernel, bias); level 0 also has the
    # shared gate's (kernel, bias).
    expected_num_trainable_weights = (2 * 2 + 2 + 2) + (2 * 2 + 2)
    expected_gate_widths = {
        "level_0/ctr": 3,  # 2 own + 1 shared
        "level_0/cvr": 3,
        "level_0/shared": 5,  # every expert of the level
        "ctr": 3,
        "cvr": 3,
    }
    bad_arguments = [
        ({"num_levels": 0}, "`num_levels` must be >= 1. Received: `num_levels=0`"),
        (
            {"num_shared_experts": 0, "num_task_experts": 0},
            "`num_shared_experts + num_task_experts` must be >= 1.",
        ),
        (
            {"num_task_experts": -2},
            "`num_task_experts` must be >= 0. Received: `num_task_experts=-2`",
        ),
        (
            {"task_names": ["shared"]},
            "`task_names` must not contain 'shared'",
        ),
        ({"gate_units": [0]}, "`gate_units` must all be >= 1. Received:"),
        ({"dropout": 1.0}, "`dropout` must be in [0, 1). Received: `dropout=1.0`"),
        ({"l2": -1.0}, "`l2` must be >= 0. Received: `l2=-1.0`"),
    ]

    def distinct_groups(self, layer):
        experts, gates = {}, {}
        for level in layer.levels:
            for name, kernels in expert_kernels(level.experts).items():
                experts[f"{level.name}/{name}"] = kernels
            bank = expert_kernels(level.task_gates[0]).values()
            for task, kernels in zip(TASKS, bank, strict=True):
                gates[f"{level.name}/gate_{task}"] = kernels
            if level.shared_gate is not None:
                gates[f"{level.name}/gate_shared"] = flat_kernels(level.shared_gate)
        return {"experts": experts, "gates": gates}

    def test_levels(self):
        layer = self.make_layer(num_levels=3)
        assert [level.name for level in layer.levels] == [
            "level_0",
            "level_1",
            "level_2",
        ]
        assert [level.return_shared for level in layer.levels] == [True, True, False]

    def test_gate_keys_with_three_levels(self):
        layer = self.make_layer(num_levels=3)
        _, gates = layer(self.inputs(), return_gates=True)
        assert set(gates) == {
            "level_0/ctr",
            "level_0/cvr",
            "level_0/shared",
            "level_1/ctr",
            "level_1/cvr",
            "level_1/shared",
            "ctr",
            "cvr",
        }

    @pytest.mark.parametrize("gate_units", [(), (3,)])
    def test_one_level_equals_cgc(self, gate_units):
        x = self.inputs()
        cgc = CGC(TASKS, gate_units=gate_units, **EXPERTS)
        expected, expected_gates = cgc(x, return_gates=True)
        layer = self.built_layer(num_levels=1, gate_units=gate_units)
        layer.set_weights(cgc.get_weights())
        outputs, gates = layer(x, return_gates=True)
        assert set(gates) == set(expected_gates) == set(TASKS)
        for task in TASKS:
            np.testing.assert_allclose(outputs[task], expected[task], atol=1e-6)
            np.testing.assert_allclose(gates[task], expected_gates[task], atol=1e-6)

    def test_two_levels_equal_chained_cgcs(self):
        # Level 1's task k reads level 0's output k; its shared experts read
        # level 0's shared output.
        x = self.inputs()
        layer = self.built_layer()
        first = CGC(TASKS, return_shared=True, **EXPERTS)
        second = CGC(TASKS, **EXPERTS)
        hidden = first(x)
        second(hidden)
        first.set_weights(layer.levels[0].get_weights())
        second.set_weights(layer.levels[1].get_weights())
        expected = second(first(x))
        outputs = layer(x)
        for task in TASKS:
            np.testing.assert_allclose(outputs[task], expected[task], atol=1e-6)

    def test_earlier_level_shared_experts_reach_every_task(self):
        layer = self.make_layer()
        x = self.inputs()
        before = layer(x)
        level = layer.levels[0]
        perturb_experts(level.experts, level.expert_indices("shared"))
        after = layer(x)
        for task in TASKS:
            assert not np.allclose(after[task], before[task]), task

    def test_matches_numpy_reference(self):
        # Two levels by hand from the weights: level 0 reads x everywhere, level
        # 1's task k reads level 0's output k, its shared experts level 0's
        # shared output.
        layer = self.built_layer()
        x = self.inputs().numpy()
        first, second = layer.levels
        e0 = np_experts(first.experts, x)
        g0 = np_linear_gates(first.task_gates[0], x)
        own0 = {t: [e0[i] for i in first.expert_indices(t)] for t in TASKS}
        shared0 = [e0[i] for i in first.expert_indices("shared")]
        hidden = {t: np_mix(g, own0[t] + shared0) for t, g in zip(TASKS, g0)}
        s_gate = first.shared_gate.get_weights()
        hidden["shared"] = np_mix(np_softmax(x @ s_gate[0] + s_gate[1]), e0)
        per_expert = [
            hidden[key]
            for key in [*TASKS, "shared"]
            for _ in second.expert_indices(key)
        ]
        e1 = np_experts(second.experts, per_expert)
        g1 = np_linear_gates(second.task_gates[0], [hidden[t] for t in TASKS])
        shared1 = [e1[i] for i in second.expert_indices("shared")]
        outputs = layer(x)
        for task, g in zip(TASKS, g1):
            own = [e1[i] for i in second.expert_indices(task)]
            np.testing.assert_allclose(
                outputs[task], np_mix(g, own + shared1), atol=1e-6
            )
