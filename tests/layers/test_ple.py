"""Tests of the PLE layer."""

# Keras 2 switch: mtrec must be imported before TensorFlow.
from mtrec.layers import PLE  # isort: split

import numpy as np
import pytest
from layer_suite import GatedLayerSuite
from layer_suite import expert_kernels
from layer_suite import flat_kernels
from layer_suite import np_experts
from layer_suite import np_gate
from layer_suite import np_mix

from mtrec.layers import CGC

TASKS = ["ctr", "cvr"]
EXPERTS = {"num_shared_experts": 1, "num_task_experts": 2, "expert_units": [4, 2]}


class TestPLE(GatedLayerSuite):
    layer_class = PLE
    layer_kwargs = {"task_names": TASKS, "num_levels": 2, **EXPERTS}
    # 16 rows, not 4: on 4 rows the 2-unit ReLU experts of level 1 (reading
    # level 0's 2-dim outputs) can start dead on every row, which would leave
    # them without gradient in the one-SGD-step check.
    batch_size = 16
    expected_output_shapes = {"ctr": (16, 2), "cvr": (16, 2)}
    # Per level: 3 expert groups (ctr, cvr, shared) x 2 layers x (kernel, bias);
    # gates x (kernel, bias): level 0 has ctr, cvr and shared, level 1 ctr, cvr.
    expected_num_trainable_weights = (3 * 4 + 3 * 2) + (3 * 4 + 2 * 2)
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
            for group in [*level.task_experts, level.shared_experts]:
                for name, kernels in expert_kernels(group).items():
                    experts[f"{level.name}/{group.name}/{name}"] = kernels
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
        shared = layer.levels[0].shared_experts
        shared.set_weights([w + 0.5 for w in shared.get_weights()])
        after = layer(x)
        for task in TASKS:
            assert not np.allclose(after[task], before[task]), task

    def test_matches_numpy_reference(self):
        # Two levels by hand from the weights: level 0 reads x everywhere; level
        # 1's task k reads level 0's output k, its shared experts and gate level
        # 0's shared output.
        layer = self.built_layer()
        x = self.inputs().numpy()
        first, second = layer.levels
        shared = np_experts(first.shared_experts, x)
        own = {t: np_experts(first.experts_of(t), x) for t in TASKS}
        hidden = {
            t: np_mix(np_gate(g, x), own[t] + shared)
            for t, g in zip(TASKS, first.task_gates)
        }
        hidden["shared"] = np_mix(
            np_gate(first.shared_gate, x), own["ctr"] + own["cvr"] + shared
        )
        shared = np_experts(second.shared_experts, hidden["shared"])
        outputs = layer(x)
        for task, gate in zip(TASKS, second.task_gates):
            own = np_experts(second.experts_of(task), hidden[task])
            expected = np_mix(np_gate(gate, hidden[task]), own + shared)
            np.testing.assert_allclose(outputs[task], expected, atol=1e-6)
