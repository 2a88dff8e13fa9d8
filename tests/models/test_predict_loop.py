"""``predict`` over several batches per call with each batch's outputs copied
once: the same outputs and counter as Keras' loop, no concatenation inside
the loop, Keras' function wherever it must be."""

import numpy as np
import pytest
import tensorflow as tf
from feature_helpers import click_buy_ranker
from feature_helpers import click_buy_rows

from mtrec.models.predict_loop import keeps_outputs_linear
from mtrec.models.predict_loop import linear_predict_function


def _toy(steps_per_execution=4, **compile_kwargs):
    tf.keras.utils.set_random_seed(0)
    x = tf.keras.Input((2,))
    hidden = tf.keras.layers.Dense(3)(x)
    model = tf.keras.Model(
        x, {"p": tf.keras.layers.Dense(1)(hidden), "h": hidden, "s": hidden[:, 0]}
    )
    model.compile(steps_per_execution=steps_per_execution, **compile_kwargs)
    return model


def _ops_by_function(function, data) -> list[list[str]]:
    """The op types of ``function``'s graph and of each function it calls
    (the loop's body among them), one list per graph."""
    concrete = function.get_concrete_function(iter(data))
    graph = concrete.graph.as_graph_def()
    bodies = [[node.op for node in f.node_def] for f in graph.library.function]
    return [[node.op for node in graph.node], *bodies]


@pytest.mark.parametrize("rows", [40, 36, 10, 3])
def test_equals_keras_multi_step_predict(rows):
    """Calls of 4 batches of 3: three and a short last call of 2 batches, the
    last short (40 rows); three whole calls (36); one call, its last batch
    short (10); one short batch (3). Keras' outputs, shapes, dtypes and
    predict counter."""
    x = np.random.default_rng(0).random((rows, 2)).astype(np.float32)
    model = _toy()
    want = model.predict(x, batch_size=3, verbose=0)
    want_count = int(model._predict_counter.numpy())  # noqa: SLF001
    model.predict_function = linear_predict_function(model)
    got = model.predict(x, batch_size=3, verbose=0)
    assert int(model._predict_counter.numpy()) == want_count  # noqa: SLF001
    assert sorted(got) == ["h", "p", "s"]
    for name, value in want.items():
        assert got[name].shape == value.shape == (rows, *value.shape[1:])
        assert got[name].dtype == value.dtype
        np.testing.assert_array_equal(got[name], value)


def test_no_concatenation_inside_the_loop():
    """Keras concatenates the outputs so far with each batch's inside its
    loop; the linear function concatenates each output once, after it."""
    data = tf.data.Dataset.from_tensor_slices(np.ones((10, 2), np.float32)).batch(3)
    keras_model, model = _toy(), _toy()
    keras_ops = _ops_by_function(keras_model.make_predict_function(), data)
    ops = _ops_by_function(linear_predict_function(model), data)
    loop_concats = [graph.count("ConcatV2") for graph in keras_ops[1:]]
    assert 3 in loop_concats  # one per output, in Keras' loop body
    assert [graph.count("ConcatV2") for graph in ops[1:]] == [0] * (len(ops) - 1)
    assert sum(graph.count("TensorListConcatV2") for graph in ops) == 3


def test_under_xla_equals_keras():
    x = np.random.default_rng(1).random((11, 2)).astype(np.float32)
    model = _toy(jit_compile=True)
    want = model.predict(x, batch_size=2, verbose=0)
    model.predict_function = linear_predict_function(model)
    got = model.predict(x, batch_size=2, verbose=0)
    for name, value in want.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-6, atol=1e-7)


def test_the_ranker_predicts_through_it_with_several_steps_per_call():
    model = click_buy_ranker()
    rows = click_buy_rows(100)
    data = tf.data.Dataset.from_tensor_slices(rows).batch(7)
    got = model.predict(data, verbose=0)
    function = model._step_functions.functions["predict_function"]  # noqa: SLF001
    ops = _ops_by_function(function, data)
    assert sum(graph.count("TensorListConcatV2") for graph in ops) == 2
    want = tf.keras.Model.predict(model, data, verbose=0)  # one batch per call
    for name in ("click", "buy"):
        assert got[name].shape == (100, 1)
        np.testing.assert_allclose(got[name], want[name], rtol=1e-6, atol=1e-7)


def test_keras_function_wherever_it_must_be():
    one_step = _toy(steps_per_execution=1)
    assert not keeps_outputs_linear(one_step)
    assert keeps_outputs_linear(_toy())
    eager = _toy(run_eagerly=True)
    assert not keeps_outputs_linear(eager)
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        distributed = _toy()
    assert not keeps_outputs_linear(distributed)
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        assert not keeps_outputs_linear(_toy())
    # A ranker made under a strategy predicts through Keras' function.
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        ranker = click_buy_ranker()
    data = tf.data.Dataset.from_tensor_slices(click_buy_rows(100)).batch(7)
    got = ranker.predict(data, verbose=0)
    assert got["click"].shape == (100, 1)
    function = ranker._step_functions.functions["predict_function"]  # noqa: SLF001
    ops = _ops_by_function(function, data)
    assert sum(graph.count("TensorListConcatV2") for graph in ops) == 0
