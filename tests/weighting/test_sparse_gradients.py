"""Embedding gradients stay sparse in PCGrad, grad_norm_static and GradNorm."""

import numpy as np
import pytest
import tensorflow as tf

from mtrec.weighting import GradNorm
from mtrec.weighting import GradNormStatic
from mtrec.weighting import PCGrad
from mtrec.weighting import gradients as G

TASKS = ["a", "b", "c"]
DIM = 3


def _sparse(rng, rows, vocabulary, n):
    """An ``IndexedSlices`` on ``n`` of ``rows`` (repeats included)."""
    return tf.IndexedSlices(
        tf.constant(rng.normal(size=(n, DIM)), tf.float32),
        tf.constant(rng.choice(rows, n), tf.int64),
        tf.constant([vocabulary, DIM], tf.int64),
    )


def _task_grads(vocabulary, seed=0):
    """Per task: a table gradient (sparse; task c does not reach the table),
    a dense shared kernel and a task-specific bias."""
    rng = np.random.default_rng(seed)
    grads = {}
    for k, rows in (("a", [0, 2, 5, 7]), ("b", [2, 3, 7, 9]), ("c", None)):
        table = None if rows is None else _sparse(rng, rows, vocabulary, 6)
        kernel = tf.constant(rng.normal(size=(DIM, 2)), tf.float32)
        bias = tf.constant(rng.normal(size=(2,)), tf.float32) if k == "a" else None
        grads[k] = [table, kernel, bias]
    return grads


def _dense(task_grads):
    return {
        k: [None if g is None else tf.convert_to_tensor(g) for g in grads]
        for k, grads in task_grads.items()
    }


def _losses():
    return {k: tf.constant(v) for k, v in zip(TASKS, (0.7, 0.4, 0.2), strict=True)}


STRATEGIES = {
    "pcgrad": lambda: PCGrad(TASKS, seed=4),
    "grad_norm_static": lambda: GradNormStatic(TASKS),
    "gradnorm": lambda: GradNorm(TASKS),
}
SHARED = [True, True, False]


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_the_sparse_path_equals_the_dense_computation(name):
    sparse = _task_grads(12)
    # GradNorm's W: the embedding table (its norm from the sparse rows).
    layer = [0]
    out, total, weights, _ = STRATEGIES[name]().gradient_update(
        _losses(), sparse, SHARED, layer
    )
    ref, ref_total, ref_weights, _ = STRATEGIES[name]().gradient_update(
        _losses(), _dense(sparse), SHARED, layer
    )
    assert isinstance(out[0], tf.IndexedSlices)
    for got, want in zip(out, ref, strict=True):
        np.testing.assert_allclose(
            tf.convert_to_tensor(got).numpy(),
            tf.convert_to_tensor(want).numpy(),
            rtol=1e-5,
            atol=1e-6,
        )
    assert float(total) == pytest.approx(float(ref_total), rel=1e-6)
    for k in TASKS:
        assert float(weights[k]) == pytest.approx(float(ref_weights[k]), rel=1e-5)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_no_tensor_grows_with_the_vocabulary(name):
    """Traced on a 1,000,003-row table, no op output has a vocabulary-sized
    dimension (a densified per-task gradient would)."""
    vocabulary = 1_000_003
    weighting = STRATEGIES[name]()
    task_grads = _task_grads(vocabulary)

    @tf.function
    def step():
        grads, total, _, _ = weighting.gradient_update(
            _losses(), task_grads, SHARED, [0]
        )
        return grads[0].values, total

    graph = step.get_concrete_function().graph
    for op in graph.get_operations():
        for output in op.outputs:
            dims = output.shape.as_list() if output.shape.rank is not None else []
            assert vocabulary not in dims, (op.type, op.name, dims)


def test_common_rows_puts_tasks_on_the_union_of_their_rows():
    a = tf.IndexedSlices(tf.constant([[1.0], [2.0], [3.0]]), tf.constant([4, 1, 4]))
    b = tf.IndexedSlices(tf.constant([[5.0]]), tf.constant([7]))
    (ta, tb, none), to_gradient = G.common_rows([a, b, None])
    np.testing.assert_array_equal(ta.numpy(), [[4.0], [2.0], [0.0]])
    np.testing.assert_array_equal(tb.numpy(), [[0.0], [0.0], [5.0]])
    np.testing.assert_array_equal(none.numpy(), [[0.0], [0.0], [0.0]])
    back = to_gradient(ta)
    assert isinstance(back, tf.IndexedSlices)
    assert back.indices.numpy().tolist() == [4, 1, 7]
    assert float(G.squared_norm([a, b])) == pytest.approx(16 + 4 + 25)
