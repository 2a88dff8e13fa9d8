"""Tests of the SharedBottom layer."""

# Keras 2 switch: mtrec must be imported before TensorFlow.
from mtrec.layers import SharedBottom  # isort: split

import numpy as np
import pytest
from layer_suite import LayerSuite
from layer_suite import np_expert


class TestSharedBottom(LayerSuite):
    layer_class = SharedBottom
    layer_kwargs = {"task_names": ["ctr", "cvr"], "units": [4, 2]}
    expected_output_shapes = {"ctr": (4, 2), "cvr": (4, 2)}
    expected_num_trainable_weights = 4  # (kernel, bias) x 2 bottom layers
    bad_arguments = [
        (
            {"task_names": []},
            "`task_names` must not be empty. Received: `task_names=[]`",
        ),
        (
            {"task_names": ["ctr", "ctr"]},
            "`task_names` must be unique. Received: `task_names=['ctr', 'ctr']`",
        ),
        ({"dropout": 1.0}, "`dropout` must be in [0, 1). Received: `dropout=1.0`"),
    ]

    def distinct_groups(self, layer):
        kernels = [w.numpy().ravel() for w in layer.weights if "kernel" in w.name]
        return {"bottom layers": {f"dense_{i}": k for i, k in enumerate(kernels)}}

    @pytest.mark.skip(reason="SharedBottom has no `kernel_initializer` argument")
    def test_seeded_initializer_is_reproducible_and_distinct(self):
        pass

    def test_every_task_reads_the_same_bottom(self):
        layer = self.built_layer()
        x = self.inputs().numpy()
        outputs = layer(x)
        expected = np_expert(layer.bottom, x)
        for task in ["ctr", "cvr"]:
            np.testing.assert_allclose(outputs[task], expected, atol=1e-6)
