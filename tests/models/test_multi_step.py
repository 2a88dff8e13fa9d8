"""``fit`` and ``predict`` with several batches per graph call: the same
steps, logs and predictions, and Keras unchanged wherever a callback or the
data could tell."""

import inspect

import numpy as np
import pytest
import tensorflow as tf
from feature_helpers import city_price_features
from feature_helpers import click_buy_ranker
from feature_helpers import click_buy_rows

from mtrec.layers import SharedBottom
from mtrec.layers import separate_matmuls
from mtrec.models import ESMM
from mtrec.models import Task
from mtrec.models.multi_step import DEFAULT_STEPS_PER_CALL
from mtrec.models.multi_step import known_batch_count
from mtrec.models.multi_step import needs_every_batch

ROWS = 1000
# Batches of 4: 250, in calls of DEFAULT_STEPS_PER_CALL and a shorter last one.
SMALL_BATCH = 4


def _esmm(**kwargs):
    tf.keras.utils.set_random_seed(0)
    model = ESMM(
        city_price_features(),
        SharedBottom(["ctr", "cvr"], units=[8]),
        Task("ctr", "click"),
        Task("cvr", "buy", condition="click"),
        tower_units=[4],
        **kwargs,
    )
    model.compile(optimizer="adam")
    return model


def _one_step(model, x):
    """Keras' predict, one batch per call (the reference)."""
    return tf.keras.Model.predict(model, x, verbose=0)


class _Counter(tf.keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches = []

    def on_predict_batch_end(self, batch, logs=None):
        self.batches.append(batch)


@pytest.mark.parametrize("build", [click_buy_ranker, _esmm], ids=["ranker", "esmm"])
def test_predict_on_a_dataset_equals_one_batch_per_call(build):
    model = build()
    rows = click_buy_rows(ROWS)
    data = tf.data.Dataset.from_tensor_slices(rows).batch(SMALL_BATCH)
    counter = _Counter()
    got = model.predict(data, verbose=0, callbacks=[counter])
    want = _one_step(model, data)
    assert sorted(got) == sorted(want) == sorted(model.prediction_names)
    for name in want:
        assert got[name].shape == (ROWS, 1)
        np.testing.assert_allclose(got[name], want[name], rtol=1e-6, atol=1e-7)
    # Calls of k batches and a shorter last one: the hook sees each call's
    # last batch.
    k, batches = DEFAULT_STEPS_PER_CALL, ROWS // SMALL_BATCH
    assert batches % k and batches > 2 * k  # full calls and a short one
    assert counter.batches == [*range(k - 1, batches, k), batches - 1]


def test_predict_on_arrays_and_unknown_length_keeps_every_row():
    model = click_buy_ranker()
    rows = click_buy_rows(ROWS)
    x = {k: rows[k] for k in ("city", "price")}
    want = _one_step(model, tf.data.Dataset.from_tensor_slices(x).batch(32))
    arrays = model.predict(x, batch_size=32, verbose=0)
    np.testing.assert_allclose(arrays["click"], want["click"], rtol=1e-6, atol=1e-7)
    # A dataset of unknown length goes through Keras' predict unchanged.
    unknown = tf.data.Dataset.from_tensor_slices(x).filter(lambda r: True).batch(32)
    assert not known_batch_count(unknown)
    counter = _Counter()
    streamed = model.predict(unknown, verbose=0, callbacks=[counter])
    assert streamed["click"].shape == (ROWS, 1)
    np.testing.assert_allclose(streamed["click"], want["click"], rtol=1e-6, atol=1e-7)
    assert counter.batches == list(range(32))  # one batch per call


def _train(model, data, **kwargs):
    history = model.fit(data, epochs=2, verbose=0, **kwargs)
    return history.history, [w.numpy() for w in model.weights]


def test_fit_in_runs_takes_the_same_steps_as_one_batch_per_call():
    rows, held_out = click_buy_rows(ROWS), click_buy_rows(200, seed=1)
    data = tf.data.Dataset.from_tensor_slices(rows).batch(SMALL_BATCH)
    batches = ROWS // SMALL_BATCH
    validation = tf.data.Dataset.from_tensor_slices(held_out).batch(50)
    runs = click_buy_ranker()
    history, weights = _train(runs, data, validation_data=validation)
    reference = click_buy_ranker(fit_steps_per_execution=1)
    want_history, want_weights = _train(reference, data, validation_data=validation)
    assert int(runs.optimizer.iterations.numpy()) == 2 * batches
    assert sorted(history) == sorted(want_history)
    for key, values in want_history.items():
        np.testing.assert_allclose(history[key], values, rtol=1e-5, err_msg=key)
    for got, want in zip(weights, want_weights, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # It ran in multi-step calls: the multi-step function is cached, and Keras'
    # one-step one was never made.
    functions = runs._step_functions.functions  # noqa: SLF001
    assert functions["train_function"] is not None
    assert runs.train_function is None
    assert int(runs._steps_per_execution.numpy()) == 1  # noqa: SLF001


def test_fit_in_runs_cuts_an_endless_dataset_at_steps_per_epoch():
    data = tf.data.Dataset.from_tensor_slices(click_buy_rows(ROWS)).batch(100)
    endless = data.repeat()
    runs, keras = click_buy_ranker(), click_buy_ranker(fit_steps_per_execution=1)
    history = runs.fit(endless, epochs=2, steps_per_epoch=7, verbose=0).history
    # DEFAULT_STEPS_PER_CALL per call, cut at 7
    assert int(runs.optimizer.iterations.numpy()) == 14
    assert "train_function" in runs._step_functions.functions  # noqa: SLF001
    want = keras.fit(endless, epochs=2, steps_per_epoch=7, verbose=0).history
    assert len(history["loss"]) == len(want["loss"]) == 2


def test_each_step_is_traced_once_and_run_eagerly_traces_none():
    # 60 full batches of 16
    rows = {k: v[:960] for k, v in click_buy_rows(ROWS).items()}
    data = tf.data.Dataset.from_tensor_slices(rows).batch(16)
    model = click_buy_ranker()
    # Variables made before fit: a step that makes them traces once more.
    model(next(iter(data)))
    model.optimizer.build(model.trainable_variables)
    model.fit(data, epochs=2, validation_data=data, verbose=0)
    model.predict(data, verbose=0)
    steps = model._step_functions.steps  # noqa: SLF001
    # Keras' multi-step functions call each step at two sites; traced once.
    assert {kind: f.tracing_count for kind, f in steps.items()} == {
        "train": 1,
        "test": 1,
        "predict": 1,
    }
    eager = click_buy_ranker()
    eager.compile(optimizer="adam", run_eagerly=True)
    eager.fit(data.take(3), epochs=1, verbose=0)
    assert eager._step_functions.steps == {}  # noqa: SLF001
    assert int(eager.optimizer.iterations.numpy()) == 3


class _Recording(SharedBottom):
    """A shared bottom that records the file its ``call`` runs from: a
    function AutoGraph converted runs from a generated file."""

    files: list = []

    def call(self, inputs, training=None):
        _Recording.files.append(inspect.currentframe().f_code.co_filename)
        return super().call(inputs, training=training)


class _Branching(SharedBottom):
    """A shared bottom with Python control flow on a tensor (always true),
    which only AutoGraph can trace."""

    def call(self, inputs, training=None):
        if tf.reduce_min(inputs) > -1e9:
            return super().call(inputs, training=training)
        return super().call(-inputs, training=training)


class _Sized(SharedBottom):
    """A shared bottom that takes ``len`` of the batch, which AutoGraph turns
    into ``tf.shape`` (plain Python cannot take it of a symbolic batch)."""

    def call(self, inputs, training=None):
        some = tf.minimum(tf.cast(len(inputs), inputs.dtype), 1.0)  # 1.0
        return super().call(inputs * some, training=training)


def test_the_steps_are_traced_as_plain_python():
    data = tf.data.Dataset.from_tensor_slices(click_buy_rows(ROWS)).batch(100)
    _Recording.files = []
    model = click_buy_ranker(_Recording)
    model.fit(data, epochs=1, validation_data=data, verbose=0)
    model.predict(data, verbose=0)
    assert set(_Recording.files) == {__file__}
    steps = model._step_functions.steps  # noqa: SLF001
    assert {kind: step.autograph for kind, step in steps.items()} == {
        "train": False,
        "test": False,
        "predict": False,
    }


@pytest.mark.parametrize("needs_autograph", [_Branching, _Sized])
def test_a_layer_that_needs_autograph_gets_it_with_the_same_results(
    needs_autograph,
):
    data = tf.data.Dataset.from_tensor_slices(click_buy_rows(ROWS)).batch(100)
    plain, branching = click_buy_ranker(SharedBottom), click_buy_ranker(needs_autograph)
    for model in (plain, branching):  # the same initial weights
        model(next(iter(data)))
    branching.set_weights(plain.get_weights())
    # A matmul per tower on both sides: the branching model's tf.cond returns
    # a tensor per task, so its towers cannot share one as the plain model's
    # do (apply_layers), and one shared matmul rounds differently in the last
    # bits. What is compared here is AutoGraph against plain tracing.
    with separate_matmuls():
        logs = [
            model.fit(data, epochs=2, validation_data=data, verbose=0).history
            for model in (plain, branching)
        ]
        predictions = [
            model.predict(data, verbose=0)["click"] for model in (plain, branching)
        ]
    steps = branching._step_functions.steps  # noqa: SLF001
    assert {kind: step.autograph for kind, step in steps.items()} == {
        "train": True,
        "test": True,
        "predict": True,
    }
    assert logs[0].keys() == logs[1].keys()
    for key in logs[0]:
        np.testing.assert_allclose(logs[0][key], logs[1][key], rtol=1e-6)
    for a, b in zip(plain.get_weights(), branching.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    np.testing.assert_allclose(predictions[0], predictions[1], rtol=1e-6)


def test_an_op_error_of_a_step_is_raised_once_not_retried_with_autograph():
    rows = click_buy_rows(8)
    model = click_buy_ranker()
    model.train_step({k: v[:4] for k, v in rows.items()})  # eagerly, traced plain
    bad = {k: v[4:] for k, v in rows.items()}
    bad["price"] = np.array([0.0, np.nan, 0.0, 0.0], np.float32)
    with pytest.raises(tf.errors.InvalidArgumentError, match="price"):
        model.train_step(bad)
    assert not model._step_functions.steps["train"].autograph  # noqa: SLF001
    # Run once: TensorFlow counts the failed step's iteration (its increment
    # does not wait for the check), a retry would have counted a third.
    assert int(model.optimizer.iterations.numpy()) == 2


def test_under_a_strategy_the_steps_are_not_nested_functions():
    # A nested tf.function cannot hold the strategy's gradient all-reduce.
    data = tf.data.Dataset.from_tensor_slices(click_buy_rows(ROWS)).batch(100)
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        model = click_buy_ranker()
    model.fit(data, epochs=1, verbose=0)
    assert model._step_functions.steps == {}  # noqa: SLF001
    assert "train_function" in model._step_functions.functions  # noqa: SLF001
    assert int(model.optimizer.iterations.numpy()) == 10


def _batches_seen(model, data) -> list[int]:
    seen = []
    watcher = tf.keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: seen.append(batch)
    )
    model.fit(data, epochs=1, verbose=0, callbacks=[watcher])
    return seen


def test_fit_with_a_batch_callback_or_unknown_length_is_one_batch_per_call():
    data = tf.data.Dataset.from_tensor_slices(click_buy_rows(ROWS)).batch(100)
    assert _batches_seen(click_buy_ranker(), data) == list(range(10))
    # No batch callback but a dataset of unknown length: every step, one per
    # call (a multi-step call would end inside the data and drop its logs).
    unknown = data.unbatch().filter(lambda r: True).batch(100)
    model, keras = click_buy_ranker(), click_buy_ranker(fit_steps_per_execution=1)
    model.fit(unknown, epochs=1, verbose=0)
    keras.fit(unknown, epochs=1, verbose=0)
    # (Keras counts one step more than the 10 batches on data of unknown
    # length: its own behaviour, the same here.)
    assert model.optimizer.iterations.numpy() == keras.optimizer.iterations.numpy()
    assert model.train_function is not None  # Keras' own, one step per call
    assert "train_function" not in model._step_functions.functions  # noqa: SLF001


def test_which_callbacks_need_every_batch():
    class EpochOnly(tf.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            pass

    class PerBatch(tf.keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            pass

    assert not needs_every_batch(EpochOnly())
    assert not needs_every_batch(tf.keras.callbacks.EarlyStopping())
    assert not needs_every_batch(tf.keras.callbacks.ProgbarLogger())
    assert needs_every_batch(PerBatch())
    assert needs_every_batch(
        tf.keras.callbacks.LambdaCallback(on_batch_end=lambda batch, logs: None)
    )


def test_predict_and_fit_keep_their_functions_until_compile():
    model = click_buy_ranker()
    data = tf.data.Dataset.from_tensor_slices(click_buy_rows(ROWS)).batch(100)
    model.predict(data, verbose=0)
    model.fit(data, epochs=1, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 10
    assert int(model._steps_per_execution.numpy()) == 1  # noqa: SLF001
    cached = dict(model._step_functions.functions)  # noqa: SLF001
    model.predict(data, verbose=0)
    model.fit(data, epochs=1, verbose=0)
    assert model._step_functions.functions == cached  # noqa: SLF001  (no retrace)
    # compile drops them (a new optimizer: the functions must be traced again).
    model.compile(optimizer="adam")
    assert model._step_functions.functions == {}  # noqa: SLF001


def test_predict_steps_per_execution_one_and_users_choice_are_keras():
    rows = click_buy_rows(ROWS)
    data = tf.data.Dataset.from_tensor_slices(rows).batch(100)
    for model in (click_buy_ranker(predict_steps_per_execution=1), click_buy_ranker()):
        if model.predict_steps_per_execution != 1:  # the user's own setting
            model.compile(optimizer="adam", steps_per_execution=5)
        counter = _Counter()
        model.predict(data, verbose=0, callbacks=[counter])
        step = 1 if model.predict_steps_per_execution == 1 else 5
        assert counter.batches == list(range(step - 1, 10, step))


@pytest.mark.parametrize(
    "key", ["fit_steps_per_execution", "predict_steps_per_execution"]
)
@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "16"])
def test_a_bad_steps_per_execution_is_refused(key, bad):
    with pytest.raises(
        ValueError, match=f"`{key}` must be an int >= 1. Received: `{key}="
    ):
        click_buy_ranker(**{key: bad})


def test_steps_per_execution_are_in_the_config():
    model = _esmm(fit_steps_per_execution=3, predict_steps_per_execution=4)
    config = model.get_config()
    assert config["fit_steps_per_execution"] == 3
    assert config["predict_steps_per_execution"] == 4
    clone = ESMM.from_config(config)
    assert (clone.fit_steps_per_execution, clone.predict_steps_per_execution) == (
        3,
        4,
    )
    del config["fit_steps_per_execution"], config["predict_steps_per_execution"]
    restored = ESMM.from_config(config)  # a config saved before the options
    assert restored.fit_steps_per_execution == DEFAULT_STEPS_PER_CALL
    assert restored.predict_steps_per_execution == DEFAULT_STEPS_PER_CALL
