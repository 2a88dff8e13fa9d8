"""Tests of shared matmuls in mixture layers and of ``separate_matmuls``."""

# Keras 2 switch: mtrec must be imported before TensorFlow.
import mtrec.layers  # isort: split

import numpy as np
import pytest
import tensorflow as tf

from mtrec.layers import CGC
from mtrec.layers import PLE
from mtrec.layers import MMoE
from mtrec.layers import OMoE


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
    x = tf.random.normal((16, 64))  # wide enough to share (MIN_SHARED_INPUT)
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


def _matmuls(layer, x, scatter: bool = False) -> int:
    """The ``MatMul`` ops of ``layer(x)`` that read a kernel; ``scatter=True``:
    those that read a constant instead (``mix_gates_over_groups``' gate
    scatter)."""
    graph = tf.function(lambda: layer(x)).get_concrete_function().graph
    return sum(
        op.type == "MatMul" and (op.inputs[1].op.type == "Const") == scatter
        for op in graph.get_operations()
    )


def test_experts_and_linear_gates_reading_one_input_share_one_matmul():
    x = tf.ones((4, 64))
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
    # Its three gates scattered into one gate matrix (one batched mix).
    assert _matmuls(cgc, x, scatter=True) == 1
    # Its three groups joined: one activation (`joined_from_first_linear`).
    assert _ops(lambda: cgc(x), "Relu") == 1
    with mtrec.layers.separate_matmuls():
        assert _ops(lambda: cgc(x), "Relu") == 3
    # On per-key inputs (a deeper PLE level) the layers of each key share one.
    inputs = {key: tf.ones((4, 64)) * i for i, key in enumerate(["a", "b", "shared"])}
    deep = CGC(["a", "b"], num_shared_experts=1, num_task_experts=1, expert_units=[4])
    deep(inputs)
    # "a" and "b": their experts and gate; "shared": its experts (no gate).
    assert _matmuls(deep, inputs) == 3
    assert _matmuls(deep, inputs, scatter=True) == 1
    with mtrec.layers.separate_matmuls():
        assert _matmuls(deep, inputs) == 5
        assert _matmuls(deep, inputs, scatter=True) == 0


def test_separate_matmuls_restores_the_previous_mode():
    x = tf.ones((4, 64))
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


def _ops(fn, op_type: str) -> int:
    graph = tf.function(fn).get_concrete_function().graph
    return sum(op.type == op_type for op in graph.get_operations())


def _weighted_sum(t, k: int):
    """A loss reading every element of ``t`` with its own weight."""
    weights = tf.reshape(tf.range(tf.size(t), dtype=t.dtype), t.shape)
    return tf.reduce_sum(t * tf.sin(weights + k))


def _groups(units=((4,), (4,), (4,)), activations=("relu",) * 3, dropout=0.0):
    tf.keras.utils.set_random_seed(5)
    x = tf.random.normal((6, 64))
    groups = [
        mtrec.layers.Experts(n, list(u), activation=a, dropout=dropout)
        for n, u, a in zip((1, 2, 1), units, activations, strict=True)
    ]
    gates = [mtrec.layers.Gate(4, name=f"gate_{k}") for k in range(2)]
    for layer in [*groups, *gates]:
        layer(x)
    return x, groups, gates


@pytest.mark.parametrize(
    "case", ["joined", "activation", "depth", "dropout", "inputs", "separate"]
)
def test_joined_groups_equal_the_concatenated_outputs(case):
    """``apply_layers(..., joined=3)``: the three groups' outputs concatenated
    on the experts' axis, then the gates'; one activation for the groups
    where they share a matmul and a ``join_key``, else each group's own
    (another activation, two layers, dropout, different inputs, inside
    ``separate_matmuls``), with equal values and gradients either way."""
    x, groups, gates = _groups(
        units=((4,), (4, 4), (4,)) if case == "depth" else ((4,),) * 3,
        activations=("relu", "tanh", "relu") if case == "activation" else ("relu",) * 3,
        dropout=0.5 if case == "dropout" else 0.0,
    )
    inputs = [x, x + 0.0 if case == "inputs" else x, x]
    calls = [*zip(inputs, groups, strict=True), *((x, gate) for gate in gates)]

    def joined():
        if case == "separate":
            with mtrec.layers.separate_matmuls():
                return mtrec.layers.apply_layers(calls, joined=len(groups))
        return mtrec.layers.apply_layers(calls, joined=len(groups))

    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        got = joined()
        want = [layer(inputs, training=False) for inputs, layer in calls]
        want = [tf.concat(want[: len(groups)], axis=1), *want[len(groups) :]]
        loss = tf.add_n([_weighted_sum(t, k) for k, t in enumerate(got)])
        want_loss = tf.add_n([_weighted_sum(t, k) for k, t in enumerate(want)])
    assert len(got) == 1 + len(gates)
    assert got[0].shape == (6, sum(g.num_experts for g in groups), 4)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    sources = [x, *(v for g in groups for v in g.trainable_variables)]
    for a, b in zip(
        tape.gradient(loss, sources),
        tape.gradient(want_loss, sources),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    relus = {"joined": 1, "activation": 2, "depth": 4}
    assert _ops(joined, "Relu") == relus.get(case, 3)


def _kernel_widths(layer, x) -> list[int]:
    """The column counts of the ``MatMul`` ops of ``layer(x)`` that read a
    kernel, in graph order."""
    graph = tf.function(lambda: layer(x)).get_concrete_function().graph
    return [
        int(op.outputs[0].shape[-1])
        for op in graph.get_operations()
        if op.type == "MatMul" and op.inputs[1].op.type != "Const"
    ]


def test_padding_columns_reach_the_next_multiple_of_16():
    from mtrec.layers import shared_matmuls

    assert shared_matmuls.COLUMN_MULTIPLE == 16
    widths = [1, 14, 16, 17, 68, 206, 208]
    assert [shared_matmuls.padding_columns(w) for w in widths] == [
        15,
        2,
        0,
        15,
        12,
        2,
        0,
    ]
    with mtrec.layers.matmul_layout(column_multiple=8):
        assert [shared_matmuls.padding_columns(w) for w in widths] == [
            7,
            2,
            0,
            7,
            4,
            2,
            0,
        ]
        with mtrec.layers.matmul_layout(min_shared_input=2):  # keeps 8
            assert shared_matmuls.padding_columns(14) == 2
    assert shared_matmuls.padding_columns(14) == 2
    assert shared_matmuls.padding_columns(20) == 12


@pytest.mark.parametrize(
    "argument, value",
    [("min_shared_input", 0), ("column_multiple", -16), ("column_multiple", 2.5)],
)
def test_matmul_layout_rejects_what_is_not_a_count(argument, value):
    with pytest.raises(ValueError) as error:
        with mtrec.layers.matmul_layout(**{argument: value}):
            pass
    assert str(error.value) == (
        f"`{argument}` must be >= 1. Received: `{argument}={value}`"
    )


def test_shared_matmul_columns_are_padded_and_the_padding_dropped():
    """A PLE of 2 + 2 experts of 64 units on 255 inputs: its first level's
    6 experts and gates of 4, 4 and 6 weights, 398 columns, computed as 400
    (a multiple of 16); its second level's task matmuls (2 experts of 64 and
    a gate of 4, on 64 inputs) as 144. The layer's values and gradients
    equal those of the unpadded matmuls."""
    tf.keras.utils.set_random_seed(11)
    ple = PLE(
        ["a", "b"],
        num_levels=2,
        num_shared_experts=2,
        num_task_experts=2,
        expert_units=[64],
    )
    x = tf.random.normal((8, 255))
    ple(x)

    def run():
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = tf.function(lambda: ple(x, training=True))()
            loss = tf.add_n([_weighted_sum(t, k) for k, t in enumerate(out.values())])
        return out, tape.gradient(loss, [x, *ple.trainable_variables])

    padded_widths = _kernel_widths(ple, x)
    padded = run()
    with mtrec.layers.matmul_layout(column_multiple=1):
        assert _kernel_widths(ple, x) == [398, 132, 132, 128]
        unpadded = run()
    # The shared experts of the second level read their own input alone:
    # an Experts layer's own matmul, 128 columns, not padded.
    assert padded_widths == [400, 144, 144, 128]
    for key, value in unpadded[0].items():
        assert padded[0][key].shape == value.shape == (8, 64)
        np.testing.assert_allclose(padded[0][key], value, rtol=1e-6, atol=1e-6)
    for a, b in zip(padded[1], unpadded[1], strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("width", [63, 64])
def test_layers_on_a_narrow_input_keep_a_matmul_each(width):
    """Below ``MIN_SHARED_INPUT`` (64) columns a shared matmul costs more
    than it saves (the split and the activation apart from the matmul):
    census PLE's second level, on 32 inputs, keeps a matmul per layer (and
    no joined groups); from 64 columns the layers share one, and from
    ``matmul_layout``'s ``min_shared_input`` within it."""
    from mtrec.layers import shared_matmuls

    assert shared_matmuls.MIN_SHARED_INPUT == 64
    narrow = width < 64
    x = tf.ones((4, width))
    cgc = CGC(["a", "b"], num_shared_experts=1, num_task_experts=1, expert_units=[4])
    cgc(x)
    assert _matmuls(cgc, x) == (5 if narrow else 1)  # 3 groups + 2 task gates
    assert _ops(lambda: cgc(x), "Relu") == (3 if narrow else 1)
    inputs = {k: tf.ones((4, width)) * i for i, k in enumerate(["a", "b", "shared"])}
    deep = CGC(["a", "b"], num_shared_experts=1, num_task_experts=1, expert_units=[4])
    deep(inputs)
    assert _matmuls(deep, inputs) == (5 if narrow else 3)
    with mtrec.layers.separate_matmuls():
        separate = deep(inputs)
    for key, value in deep(inputs).items():
        np.testing.assert_allclose(value, separate[key], rtol=1e-6, atol=1e-6)
    with mtrec.layers.matmul_layout(min_shared_input=width):
        assert _matmuls(deep, inputs) == 3
        assert _matmuls(cgc, x) == 1
    assert _matmuls(cgc, x) == (5 if narrow else 1)
