"""Tests of the mixture-of-experts base class."""

# Keras 2 switch: mtrec must be imported before TensorFlow.
import mtrec.layers  # isort: split

import inspect

import pytest
import tensorflow as tf

from mtrec.layers import CGC
from mtrec.layers import PLE
from mtrec.layers import Experts
from mtrec.layers import Gate
from mtrec.layers import MixtureOfExperts
from mtrec.layers import MMoE
from mtrec.layers import OMoE

EXPERT_ARGUMENTS = [
    "expert_units",
    "gate_units",
    "activation",
    "dropout",
    "l2",
    "kernel_initializer",
]
COMMON_KEYS = {"task_names", *EXPERT_ARGUMENTS}


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


@pytest.mark.parametrize(
    "layer_class, own",
    [
        (OMoE, ["num_experts"]),
        (MMoE, ["num_experts"]),
        (CGC, ["num_shared_experts", "num_task_experts"]),
        (PLE, ["num_levels", "num_shared_experts", "num_task_experts"]),
    ],
)
def test_signature_lists_the_inherited_expert_arguments(layer_class, own):
    # Each subclass declares only its own arguments and forwards the rest;
    # its signature still lists every argument (config checks read it).
    params = inspect.signature(layer_class).parameters
    extra = ["return_shared"] if layer_class is CGC else []
    assert list(params) == ["task_names", *own, *EXPERT_ARGUMENTS, *extra, "kwargs"]
    for name in EXPERT_ARGUMENTS:
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY
        default = inspect.signature(MixtureOfExperts).parameters[name].default
        assert params[name].default == default
    with pytest.raises(TypeError):
        layer_class(["ctr"], *[1] * len(own), [4])  # expert_units is keyword-only


def test_a_new_subclass_gets_the_signature_build_and_config():
    class Single(MixtureOfExperts):
        def __init__(self, task_names, num_experts=2, **kwargs):
            super().__init__(task_names, **kwargs)
            self.num_experts = num_experts
            self.experts = self.make_experts(num_experts, "experts")

        def sublayer_input_shapes(self, input_shape):
            return [(self.experts, input_shape)]

    assert list(inspect.signature(Single).parameters)[:3] == [
        "task_names",
        "num_experts",
        "expert_units",
    ]
    layer = Single(["a"], num_experts=3, expert_units=[4], name="single")
    layer.build((None, 5))
    # Built in its name scope, as MMoE's experts are.
    assert [w.name for w in layer.weights] == [
        "experts/kernel_0:0",
        "experts/bias_0:0",
    ]
    config = layer.get_config()
    assert config["num_experts"] == 3
    assert {"task_names", *EXPERT_ARGUMENTS} <= config.keys()


def test_expert_arguments_derive_the_initializer_by_salt():
    seeded = {"class_name": "GlorotUniform", "config": {"seed": 5}}
    layer = MMoE(["ctr"], expert_units=[3], kernel_initializer=seeded)
    plain = layer.expert_arguments()
    assert plain["kernel_initializer"] is layer.kernel_initializer
    assert plain["expert_units"] == [3]
    salted = layer.expert_arguments(salt="level_0")["kernel_initializer"]
    again = layer.expert_arguments(salt="level_0")["kernel_initializer"]
    other = layer.expert_arguments(salt="level_1")["kernel_initializer"]
    seeds = [i.get_config()["seed"] for i in (salted, again, other)]
    assert seeds[0] == seeds[1] != seeds[2] != 5
