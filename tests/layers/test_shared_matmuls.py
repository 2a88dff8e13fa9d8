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
    # Its three gates scattered into one gate matrix (one batched mix).
    assert _matmuls(cgc, x, scatter=True) == 1
    # On per-key inputs (a deeper PLE level) the layers of each key share one.
    inputs = {key: tf.ones((4, 3)) * i for i, key in enumerate(["a", "b", "shared"])}
    deep = CGC(["a", "b"], num_shared_experts=1, num_task_experts=1, expert_units=[4])
    deep(inputs)
    # "a" and "b": their experts and gate; "shared": its experts (no gate).
    assert _matmuls(deep, inputs) == 3
    assert _matmuls(deep, inputs, scatter=True) == 1
    with mtrec.layers.separate_matmuls():
        assert _matmuls(deep, inputs) == 5
        assert _matmuls(deep, inputs, scatter=True) == 0


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
