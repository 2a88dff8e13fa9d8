"""Tests of the PLE layer."""

# Keras 2 switch: mtrec must be imported before TensorFlow.
from mtrec.layers import PLE  # isort: split

import numpy as np
import pytest
from layer_suite import GatedLayerSuite
from layer_suite import flat_kernels

from mtrec.layers import CGC

TASKS = ["ctr", "cvr"]
EXPERTS = {"num_shared_experts": 1, "num_task_experts": 2, "expert_units": [4, 2]}


class TestPLE(GatedLayerSuite):
    layer_class = PLE
    layer_kwargs = {"task_names": TASKS, "num_levels": 2, **EXPERTS}
    expected_output_shapes = {"ctr": (4, 2), "cvr": (4, 2)}
    # Per level: (2 x 2 task + 1 shared) experts x 2 layers x (kernel, bias);
    # gates x (kernel, bias): level 0 has ctr, cvr and shared, level 1 ctr, cvr.
    expected_num_trainable_weights = (5 * 4 + 3 * 2) + (5 * 4 + 2 * 2)
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
            for e in [*level.task_experts, *level.shared_experts]:
                experts[f"{level.name}/{e.name}"] = flat_kernels(e)
            for g in [*level.task_gates, level.shared_gate]:
                if g is not None:
                    gates[f"{level.name}/{g.name}"] = flat_kernels(g)
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
        for expert in level.shared_experts:
            expert.set_weights([w + 0.5 for w in expert.get_weights()])
        after = layer(x)
        for task in TASKS:
            assert not np.allclose(after[task], before[task]), task
