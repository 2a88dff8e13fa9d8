"""Tests of the mixture-of-experts base class and the mixing op."""

# Keras 2 switch: mtrec must be imported before TensorFlow.
import mtrec.layers  # isort: split

import inspect

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
from mtrec.layers.mixture import mix_expert_groups
from mtrec.layers.mixture import mix_experts
from mtrec.layers.mixture import mix_experts_per_gate

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


def _mixtures():
    tasks = ["ctr", "cvr"]
    return {
        "omoe": OMoE(tasks, num_experts=3, expert_units=[6, 4]),
        "mmoe": MMoE(tasks, num_experts=3, expert_units=[6]),
        "mmoe_mlp_gates": MMoE(tasks, num_experts=3, expert_units=[6], gate_units=[5]),
        "cgc": CGC(tasks, num_shared_experts=2, num_task_experts=1, expert_units=[6]),
        "ple": PLE(tasks, num_levels=3, num_shared_experts=1, num_task_experts=2),
    }


@pytest.mark.parametrize("name", sorted(_mixtures()))
def test_shared_matmuls_equal_separate_ones_forward_and_gradients(name):
    tf.keras.utils.set_random_seed(3)
    layer = _mixtures()[name]
    x = tf.random.normal((16, 7))
    layer(x)
    results = {}
    for mode in ("shared", "separate"):
        with tf.GradientTape() as tape:
            tape.watch(x)
            if mode == "separate":
                with mtrec.layers.separate_matmuls():
                    out = layer(x, training=True)
            else:
                out = layer(x, training=True)
            loss = tf.add_n(
                [tf.reduce_sum(v * (i + 1.0)) for i, v in enumerate(out.values())]
            )
        grads = tape.gradient(loss, [x, *layer.trainable_variables])
        results[mode] = (out, grads)
    for key in results["separate"][0]:
        np.testing.assert_allclose(
            results["shared"][0][key], results["separate"][0][key], rtol=1e-5, atol=1e-6
        )
    for a, b in zip(results["shared"][1], results["separate"][1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _matmuls(layer, x) -> int:
    graph = tf.function(lambda: layer(x)).get_concrete_function().graph
    return sum(op.type == "MatMul" for op in graph.get_operations())


def test_experts_and_linear_gates_reading_one_input_share_one_matmul():
    x = tf.ones((4, 5))
    mmoe = MMoE(["a", "b", "c"], num_experts=2, expert_units=[4])
    mmoe(x)
    assert _matmuls(mmoe, x) == 1
    with mtrec.layers.separate_matmuls():
        assert _matmuls(mmoe, x) == 4  # experts + three gates
    # An MLP gate's first layer is not linear-then-softmax: it keeps its own.
    mlp_gates = MMoE(["a", "b"], num_experts=2, expert_units=[4], gate_units=[3])
    mlp_gates(x)
    assert _matmuls(mlp_gates, x) == 1 + 2 * 2
    # CGC on one input: the task groups, shared group and gates, one matmul.
    cgc = CGC(["a", "b"], num_shared_experts=1, num_task_experts=1, expert_units=[4])
    cgc(x)
    assert _matmuls(cgc, x) == 1
    # On per-key inputs (a deeper PLE level) the layers of each key share one.
    inputs = {key: tf.ones((4, 3)) * i for i, key in enumerate(["a", "b", "shared"])}
    deep = CGC(["a", "b"], num_shared_experts=1, num_task_experts=1, expert_units=[4])
    deep(inputs)
    # "a" and "b": their experts and gate; "shared": its experts (no gate).
    assert _matmuls(deep, inputs) == 3
    with mtrec.layers.separate_matmuls():
        assert _matmuls(deep, inputs) == 5


def test_separate_matmuls_restores_the_previous_mode():
    x = tf.ones((4, 5))
    mmoe = MMoE(["a", "b"], num_experts=2, expert_units=[4])
    mmoe(x)
    with mtrec.layers.separate_matmuls():
        with mtrec.layers.separate_matmuls():
            pass
        assert _matmuls(mmoe, x) == 3
    assert _matmuls(mmoe, x) == 1
    with pytest.raises(RuntimeError), mtrec.layers.separate_matmuls():
        raise RuntimeError("inside")
    assert _matmuls(mmoe, x) == 1


@pytest.mark.parametrize("num_gates", [1, 2, 3])
def test_mix_experts_per_gate_equals_one_mix_per_gate(num_gates):
    tf.keras.utils.set_random_seed(4)
    experts = tf.random.normal((5, 4, 3))
    gates = [tf.nn.softmax(tf.random.normal((5, 4))) for _ in range(num_gates)]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([experts, *gates])
        many = mix_experts_per_gate(gates, experts)
        one = [mix_experts(g, experts) for g in gates]
        losses = [
            tf.add_n([tf.reduce_sum(m * (i + 1.0)) for i, m in enumerate(out)])
            for out in (many, one)
        ]
    assert len(many) == num_gates
    for a, b in zip(many, one, strict=True):
        assert a.shape == (5, 3)
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    _assert_equal_gradients(tape, losses, [experts, *gates], rtol=1e-5)


def _assert_equal_gradients(tape, losses, sources, rtol):
    """Both ``losses`` have the same gradients with respect to ``sources``."""
    for a, b in zip(
        tape.gradient(losses[0], sources),
        tape.gradient(losses[1], sources),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-6)


@pytest.mark.parametrize("sizes", [[3], [1, 2], [2, 2, 2]])
def test_mix_expert_groups_equals_a_mix_of_the_concatenation(sizes):
    tf.keras.utils.set_random_seed(5)
    groups = [tf.random.normal((5, n, 3)) for n in sizes]
    gates = tf.nn.softmax(tf.random.normal((5, sum(sizes))))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([gates, *groups])
        grouped = mix_expert_groups(gates, groups)
        whole = mix_experts(gates, tf.concat(groups, axis=1))
        losses = [tf.reduce_sum(m * tf.range(1.0, 4.0)) for m in (grouped, whole)]
    assert grouped.shape == (5, 3)
    np.testing.assert_allclose(grouped, whole, rtol=1e-6, atol=1e-6)
    _assert_equal_gradients(tape, losses, [gates, *groups], rtol=1e-6)


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
