"""Tests of the TargetAttention (DIN) layer."""

# Keras 2 switch: mtrec must be imported before TensorFlow.
from mtrec.layers import TargetAttention  # isort: split

import numpy as np
import pytest
import tensorflow as tf
from layer_suite import LayerSuite
from layer_suite import flat_kernels

BATCH, LENGTH, DIM = 3, 4, 5


def make_inputs(seed: int = 0):
    rng = np.random.default_rng(seed)
    query = rng.normal(size=(BATCH, DIM)).astype("float32")
    keys = rng.normal(size=(BATCH, LENGTH, DIM)).astype("float32")
    # Row 0 full, row 1 two valid keys, row 2 none.
    mask = np.array([[True] * 4, [True, True, False, False], [False] * 4], dtype=bool)
    return query, keys, mask


def np_target_attention(layer, query, keys, mask, normalization="none"):
    """DIN's activation unit in numpy (relu hidden layers)."""
    weights = layer.get_weights()
    q = np.broadcast_to(query[:, None, :], keys.shape)
    x = np.concatenate([q, keys, q - keys, q * keys], axis=-1)
    for kernel, bias in zip(weights[:-2:2], weights[1:-2:2], strict=True):
        x = np.maximum(x @ kernel + bias, 0.0)
    scores = (x @ weights[-2] + weights[-1])[..., 0]
    if normalization == "softmax":
        scores = np.where(mask, scores, -np.inf)
        scores = scores - scores.max(axis=-1, keepdims=True, initial=-1e30)
        exp = np.where(mask, np.exp(scores), 0.0)
        scores = exp / np.maximum(exp.sum(axis=-1, keepdims=True), 1e-30)
    scores = np.where(mask, scores, 0.0)
    return np.einsum("bn,bnd->bd", scores, keys)


class TestTargetAttention(LayerSuite):
    layer_class = TargetAttention
    layer_kwargs = {"units": [4]}
    # Two inputs, query (batch, d) and keys (batch, n, d), and a mask.
    input_shapes = [(DIM,), (LENGTH, DIM)]
    batch_size = BATCH
    expected_output_shapes = {"output": (BATCH, DIM)}
    expected_num_trainable_weights = 4  # hidden (kernel, bias) + score
    bad_arguments = [
        (
            {"normalization": "max"},
            "`normalization` must be one of ('none', 'softmax'). "
            "Received: `normalization='max'`",
        ),
    ]

    def call_kwargs(self):
        return {"mask": tf.constant(make_inputs()[2])}

    def distinct_groups(self, layer):
        return {
            "attention layers": {
                "mlp": flat_kernels(layer.mlp),
                "score": flat_kernels(layer.score),
            }
        }

    def test_sublayers_are_built_in_their_name_scopes(self):
        layer = self.built_layer()
        assert [w.name for w in layer.weights] == [
            "mlp/kernel:0",
            "mlp/bias:0",
            "score/kernel:0",
            "score/bias:0",
        ]
        # The MLP reads [q, k, q - k, q * k] of every key.
        assert layer.weights[0].shape == (4 * DIM, 4)

    def test_masked_rows_pool_to_zero_in_a_functional_model(self):
        # The mask is a model input, as in the suite's saved model.
        inputs = [tf.keras.Input((DIM,)), tf.keras.Input((LENGTH, DIM))]
        mask = tf.keras.Input((LENGTH,), dtype=tf.bool)
        model = tf.keras.Model([*inputs, mask], self.make_layer()(inputs, mask=mask))
        query, keys, valid = make_inputs()
        out = model([query, keys, valid]).numpy()
        np.testing.assert_array_equal(out[2], np.zeros(DIM))
        assert np.all(np.abs(out[:2]).sum(axis=-1) > 0)


@pytest.mark.parametrize("normalization", ["none", "softmax"])
def test_matches_numpy_reference(normalization):
    query, keys, mask = make_inputs()
    layer = TargetAttention(units=[6, 3], normalization=normalization)
    out = layer([query, keys], mask=mask).numpy()
    assert out.shape == (BATCH, DIM)
    # 2 hidden (kernel, bias) + score (kernel, bias).
    assert len(layer.trainable_weights) == 6
    expected = np_target_attention(layer, query, keys, mask, normalization)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_constant_score_gives_scaled_sum_of_valid_keys():
    query, keys, mask = make_inputs()
    layer = TargetAttention(units=[4])
    layer([query, keys], mask=mask)
    kernel, bias, score_kernel, _ = layer.get_weights()
    # Hidden layer ignored, score = 2 for every key.
    layer.set_weights(
        [np.zeros_like(kernel), bias, np.zeros_like(score_kernel), np.array([2.0])]
    )
    out = layer([query, keys], mask=mask).numpy()
    expected = 2.0 * (keys * mask[..., None]).sum(axis=1)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    # An empty sequence pools to zeros.
    np.testing.assert_array_equal(out[2], np.zeros(DIM))


def test_softmax_weights_sum_to_one_over_valid_keys():
    query, keys, mask = make_inputs()
    layer = TargetAttention(units=[4], normalization="softmax")
    layer([query, keys], mask=mask)
    kernel, bias, score_kernel, _ = layer.get_weights()
    layer.set_weights(
        [np.zeros_like(kernel), bias, np.zeros_like(score_kernel), np.array([5.0])]
    )
    out = layer([query, keys], mask=mask).numpy()
    # Equal scores: softmax = mean of the valid keys; none valid: zero.
    np.testing.assert_allclose(out[0], keys[0].mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(out[1], keys[1, :2].mean(axis=0), rtol=1e-5)
    np.testing.assert_array_equal(out[2], np.zeros(DIM))


def test_masked_keys_do_not_change_the_output():
    query, keys, mask = make_inputs()
    layer = TargetAttention(units=[4])
    before = layer([query, keys], mask=mask).numpy()
    noisy = keys.copy()
    noisy[~mask] = 1e3
    np.testing.assert_array_equal(layer([query, noisy], mask=mask).numpy(), before)


def test_no_mask_means_every_key_is_valid():
    query, keys, _ = make_inputs()
    layer = TargetAttention(units=[4])
    full = np.ones((BATCH, LENGTH), dtype=bool)
    np.testing.assert_array_equal(
        layer([query, keys]).numpy(), layer([query, keys], mask=full).numpy()
    )


def test_config_serialises_the_activation_and_normalization():
    layer = TargetAttention(units=[6], activation="tanh", normalization="softmax")
    assert layer.activation is tf.keras.activations.tanh
    config = layer.get_config()
    assert {"units": [6], "activation": "tanh", "normalization": "softmax"}.items() <= (
        config.items()
    )


def test_query_and_keys_of_different_width_raise():
    layer = TargetAttention()
    with pytest.raises(ValueError, match="same width"):
        layer([tf.ones((2, 4)), tf.ones((2, 3, 5))])
