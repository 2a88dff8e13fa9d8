"""Tests of the mixture-of-experts base class and the mixing op."""

# Keras 2 switch: mtrec must be imported before TensorFlow.
import mtrec.layers  # isort: split

import numpy as np
import pytest
import tensorflow as tf

from mtrec.layers import CGC
from mtrec.layers import PLE
from mtrec.layers import Experts
from mtrec.layers import Gate
from mtrec.layers import MixtureOfExperts
from mtrec.layers import MMoE
from mtrec.layers import OMoE
from mtrec.layers.mixture import mix_experts

COMMON_KEYS = {
    "task_names",
    "expert_units",
    "gate_units",
    "activation",
    "dropout",
    "l2",
    "kernel_initializer",
}


def test_exported():
    assert mtrec.layers.MixtureOfExperts is MixtureOfExperts
    assert "MixtureOfExperts" in mtrec.layers.__all__


@pytest.mark.parametrize("layer_class", [OMoE, MMoE, CGC, PLE])
def test_every_mixture_subclasses_the_base(layer_class):
    assert issubclass(layer_class, MixtureOfExperts)
    config = layer_class(["ctr", "cvr"], expert_units=[4]).get_config()
    assert COMMON_KEYS <= config.keys()


@pytest.mark.parametrize("layer_class", [CGC, PLE])
def test_shared_key_is_reserved_where_shared_outputs_exist(layer_class):
    assert layer_class.reserved_task_names == ("shared",)
    with pytest.raises(ValueError, match="must not contain 'shared'"):
        layer_class(["shared"])
    # MMoE has no shared output, so "shared" is an ordinary task name there.
    assert MMoE(["shared"]).task_names == ["shared"]


def test_factories_use_the_layer_settings_and_salt_by_name():
    seeded = {"class_name": "GlorotUniform", "config": {"seed": 5}}
    layer = MMoE(
        ["ctr"],
        expert_units=[3, 2],
        gate_units=[4],
        activation="tanh",
        dropout=0.25,
        l2=0.5,
        kernel_initializer=seeded,
    )
    experts = layer.make_experts(2, "extra")
    assert isinstance(experts, Experts)
    assert (experts.name, experts.num_experts, experts.units) == ("extra", 2, [3, 2])
    assert experts.activation is tf.keras.activations.tanh
    assert (experts.dropout, experts.l2) == (0.25, 0.5)
    gate = layer.make_gate(2, "gate_extra")
    assert isinstance(gate, Gate)
    assert (gate.name, gate.num_experts, gate.units, gate.l2) == (
        "gate_extra",
        2,
        [4],
        0.5,
    )
    # The same name gives the same derived seed; another name another one.
    seeds = {
        name: layer.make_experts(2, name).kernel_initializer.get_config()["seed"]
        for name in ("a", "b")
    }
    again = layer.make_experts(2, "a").kernel_initializer.get_config()["seed"]
    assert seeds["a"] == again != seeds["b"] != 5


def test_mix_experts_equals_einsum_forward_and_backward():
    rng = np.random.default_rng(0)
    gates = tf.constant(rng.dirichlet(np.ones(5), size=7).astype("float32"))
    experts = tf.constant(rng.normal(size=(7, 5, 3)).astype("float32"))
    target = tf.constant(rng.normal(size=(7, 3)).astype("float32"))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([gates, experts])
        ours = mix_experts(gates, experts)
        reference = tf.einsum("bn,bnu->bu", gates, experts)
        loss_ours = tf.reduce_sum(ours * target)
        loss_reference = tf.reduce_sum(reference * target)
    np.testing.assert_allclose(ours, reference, atol=1e-6)
    for ours_grad, reference_grad in zip(
        tape.gradient(loss_ours, [gates, experts]),
        tape.gradient(loss_reference, [gates, experts]),
        strict=True,
    ):
        np.testing.assert_allclose(ours_grad, reference_grad, atol=1e-6)
    # By hand for one row: sum_i g_i e_i.
    expected = (gates[0, :, None] * experts[0]).numpy().sum(axis=0)
    np.testing.assert_allclose(ours[0], expected, atol=1e-6)
