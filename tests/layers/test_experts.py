"""Tests of the Experts layer."""

# Keras 2 switch: mtrec must be imported before TensorFlow.
from mtrec.layers import Experts  # isort: split

import numpy as np
import pytest
import tensorflow as tf
from layer_suite import SEEDED_INITIALIZER
from layer_suite import LayerSuite
from layer_suite import assert_pairwise_distinct
from layer_suite import expert_kernels
from layer_suite import expert_weights
from layer_suite import np_experts

from mtrec.layers import MLP
from mtrec.layers.mlp import derive_initializer


def separate_mlps(layer: Experts, input_dim: int) -> list[MLP]:
    """One ``MLP`` per expert of ``layer``, holding a copy of its weights."""
    mlps = []
    for i in range(layer.num_experts):
        mlp = MLP(layer.units, name=f"expert_{i}")
        mlp.build((None, input_dim))
        mlp.set_weights(expert_weights(layer, i))
        mlps.append(mlp)
    return mlps


class TestExperts(LayerSuite):
    layer_class = Experts
    layer_kwargs = {"num_experts": 3, "units": [4, 2]}
    expected_output_shapes = {"output": (4, 3, 2)}
    # kernel_0 (3, 12), bias_0 (12,), kernel_1 (3, 4, 2), bias_1 (3, 2).
    expected_num_trainable_weights = 4
    bad_arguments = [
        ({"num_experts": 0}, "`num_experts` must be >= 1. Received: `num_experts=0`"),
        (
            {"num_experts": 2.5},
            "`num_experts` must be >= 1. Received: `num_experts=2.5`",
        ),
        ({"units": []}, "`units` must not be empty. Received: `units=[]`"),
        ({"units": [4, 0]}, "`units` must all be >= 1. Received: `units=[4, 0]`"),
        (
            {"units": "64"},
            "`units` must be a sequence of ints. Received: `units='64'`",
        ),
        (
            {"units": [2.7]},
            "`units` must be a sequence of ints. Received: `units=[2.7]`",
        ),
        ({"dropout": 1.0}, "`dropout` must be in [0, 1). Received: `dropout=1.0`"),
        ({"l2": -1.0}, "`l2` must be >= 0. Received: `l2=-1.0`"),
    ]

    def distinct_groups(self, layer):
        groups = {"experts": expert_kernels(layer)}
        for i in range(layer.num_experts):
            kernels = expert_weights(layer, i)[::2]
            groups[f"layers of expert_{i}"] = {
                f"dense_{j}": k.ravel() for j, k in enumerate(kernels)
            }
        return groups

    def test_weight_shapes(self):
        layer = self.built_layer()
        assert [w.shape for w in layer.weights] == [(3, 12), (12,), (3, 4, 2), (3, 2)]
        names = [w.name.split("/")[-1] for w in layer.weights]
        assert names == ["kernel_0:0", "bias_0:0", "kernel_1:0", "bias_1:0"]

    @pytest.mark.parametrize("units", [[4], [4, 2], [5, 3, 2]])
    def test_equals_separate_mlps_forward_and_gradients(self, units):
        x = self.inputs()
        layer = self.built_layer(units=units)
        # Non-zero biases so that their slices are checked too.
        layer.set_weights([w + 0.1 for w in layer.get_weights()])
        mlps = separate_mlps(layer, self.input_dim)
        rng = np.random.default_rng(3)
        target = rng.normal(size=(self.batch_size, 3, units[-1])).astype("float32")

        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            fused = layer(x)
            separate = tf.stack([m(x) for m in mlps], axis=1)
            fused_loss = tf.reduce_sum(fused * target)
            separate_loss = tf.reduce_sum(separate * target)
        np.testing.assert_allclose(fused, separate, atol=1e-6)
        np.testing.assert_allclose(
            tape.gradient(fused_loss, x), tape.gradient(separate_loss, x), atol=1e-6
        )
        stacked = [g.numpy() for g in tape.gradient(fused_loss, layer.weights)]
        width = units[0]
        for i, mlp in enumerate(mlps):
            expected = tape.gradient(separate_loss, mlp.weights)
            columns = slice(i * width, (i + 1) * width)
            actual = [stacked[0][:, columns], stacked[1][columns]]
            actual += [g[i] for g in stacked[2:]]
            for a, e in zip(actual, expected, strict=True):
                np.testing.assert_allclose(a, e, atol=1e-6)

    def test_matches_numpy(self):
        layer = self.built_layer()
        x = self.inputs().numpy()
        expected = np.stack(np_experts(layer, x), axis=1)
        np.testing.assert_allclose(layer(x), expected, atol=1e-6)

    def test_each_expert_initialised_as_an_mlp_named_after_it(self):
        # Expert i's slices are drawn by the initialiser an MLP named expert_i
        # gets from derive_initializer: a per-expert seed, and Glorot scaled by
        # one expert's fan-in and fan-out, not the stacked kernel's.
        layer = self.built_layer(kernel_initializer=SEEDED_INITIALIZER)
        initializer = tf.keras.initializers.get(SEEDED_INITIALIZER)
        for i in range(layer.num_experts):
            mlp = MLP(
                layer.units,
                kernel_initializer=derive_initializer(initializer, f"expert_{i}"),
            )
            mlp.build((None, self.input_dim))
            for a, e in zip(expert_weights(layer, i), mlp.get_weights(), strict=True):
                np.testing.assert_array_equal(a, e)

    def test_unseeded_experts_start_different(self):
        layer = Experts(8, [3])
        layer.build((None, 3))
        assert_pairwise_distinct(expert_kernels(layer))

    def test_l2_penalty_equals_separate_experts(self):
        layer = self.built_layer(l2=0.01)
        layer(self.inputs())
        kernels = [w for i in range(3) for w in expert_weights(layer, i)[::2]]
        expected = 0.01 * sum(float(np.sum(k**2)) for k in kernels)
        np.testing.assert_allclose(float(tf.add_n(layer.losses)), expected, rtol=1e-5)

    def test_without_bias(self):
        layer = self.built_layer(use_bias=False)
        assert [w.shape for w in layer.weights] == [(3, 12), (3, 4, 2)]
        x = self.inputs().numpy()
        w = layer.get_weights()
        expected = np.maximum(np.maximum(x @ w[0], 0).reshape(4, 3, 4), 0)
        expected = np.maximum(np.einsum("bnu,nuv->bnv", expected, w[1]), 0)
        np.testing.assert_allclose(layer(x), expected, atol=1e-6)


def test_joined_from_first_linear_needs_one_join_key():
    from mtrec.layers import joined_from_first_linear

    one = Experts(1, [2])
    deep = Experts(1, [2, 2])
    tanh = Experts(1, [2], activation="tanh")
    dropped = Experts(1, [2], dropout=0.5)
    assert one.join_key == (2, tf.keras.activations.relu)
    assert deep.join_key is None and dropped.join_key is None
    pre = tf.ones((1, 4))
    with pytest.raises(ValueError) as caught:
        joined_from_first_linear([one, deep], pre)
    assert str(caught.value).startswith(
        "Expert groups computed together must each have one layer of the same "
        "width and activation, without dropout. Received: `join_key`s "
        "[(2, <function relu"
    )
    assert str(caught.value).endswith(">), None]")
    with pytest.raises(ValueError, match="must each have one layer"):
        joined_from_first_linear([one, tanh], pre)
