"""Tests of the SharedBottom layer."""

# Keras 2 switch: mtrec must be imported before TensorFlow.
from mtrec.layers import SharedBottom  # isort: split

import numpy as np
import tensorflow as tf
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
        ({"l2": -1.0}, "`l2` must be >= 0. Received: `l2=-1.0`"),
        (
            {"task_names": "ctr"},
            "`task_names` must be a sequence of strings, not a string. "
            "Received: `task_names='ctr'`",
        ),
        (
            {"batch_norm": "yes"},
            "`batch_norm` must be a bool. Received: `batch_norm='yes'`",
        ),
    ]

    def distinct_groups(self, layer):
        kernels = [w.numpy().ravel() for w in layer.weights if "kernel" in w.name]
        return {"bottom layers": {f"dense_{i}": k for i, k in enumerate(kernels)}}

    def test_every_task_reads_the_same_bottom(self):
        layer = self.built_layer()
        x = self.inputs().numpy()
        outputs = layer(x)
        expected = np_expert(layer.bottom, x)
        for task in ["ctr", "cvr"]:
            np.testing.assert_allclose(outputs[task], expected, atol=1e-6)


def test_bottom_is_built_in_its_name_scope_and_serialises_its_activation():
    layer = SharedBottom(["ctr"], units=[3], activation="tanh")
    layer.build((None, 2))
    assert [w.name for w in layer.weights] == ["bottom/kernel:0", "bottom/bias:0"]
    assert layer.activation is tf.keras.activations.tanh
    assert layer.bottom.activation is tf.keras.activations.tanh
    assert layer.get_config()["activation"] == "tanh"


def test_batch_norm_and_empty_units():
    layer = SharedBottom(["ctr"], units=[3], batch_norm=True)
    layer.build((None, 2))
    # (kernel, bias) + batch norm (gamma, beta); moving statistics not trained.
    assert len(layer.trainable_weights) == 4
    x = tf.constant([[1.0, -2.0]])
    np.testing.assert_array_equal(SharedBottom(["ctr"], units=[])(x)["ctr"], x)


def test_output_shape_is_computed_per_task():
    layer = SharedBottom(["ctr", "cvr"], units=[5, 2])
    shapes = layer.compute_output_shape(tf.TensorShape((None, 7)))
    assert shapes == {"ctr": (None, 2), "cvr": (None, 2)}
