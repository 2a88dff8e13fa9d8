"""``predict`` with several batches per graph call: the same predictions, the
fallbacks, and ``fit`` untouched."""

import numpy as np
import pytest
import tensorflow as tf
from feature_helpers import city_price_features

from mtrec.layers import SharedBottom
from mtrec.models import ESMM
from mtrec.models import MultiTaskRanker
from mtrec.models import Task
from mtrec.models.predict_runs import DEFAULT_PREDICT_STEPS
from mtrec.models.predict_runs import known_batch_count

ROWS = 1000  # 63 batches of 16: 3 full calls of 16 and a last one of 15


def _ranker(**kwargs):
    tf.keras.utils.set_random_seed(0)
    model = MultiTaskRanker(
        city_price_features(),
        SharedBottom(["click", "buy"], units=[8]),
        [Task("click", "click"), Task("buy", "buy")],
        tower_units=[4],
        **kwargs,
    )
    model.compile(optimizer="adam")
    return model


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


def _rows(n=ROWS, seed=0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    click = (rng.random(n) < 0.5).astype(np.float32)
    return {
        "city": rng.choice(["a", "b", "c", "d"], n),
        "price": rng.normal(size=n).astype(np.float32),
        "click": click,
        "buy": click * (rng.random(n) < 0.5).astype(np.float32),
    }


def _one_step(model, x):
    """Keras' predict, one batch per call (the reference)."""
    return tf.keras.Model.predict(model, x, verbose=0)


class _Counter(tf.keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches = []

    def on_predict_batch_end(self, batch, logs=None):
        self.batches.append(batch)


@pytest.mark.parametrize("build", [_ranker, _esmm], ids=["ranker", "esmm"])
def test_predict_on_a_dataset_equals_one_batch_per_call(build):
    model = build()
    rows = _rows()
    data = tf.data.Dataset.from_tensor_slices(rows).batch(16)
    counter = _Counter()
    got = model.predict(data, verbose=0, callbacks=[counter])
    want = _one_step(model, data)
    assert sorted(got) == sorted(want) == sorted(model.prediction_names)
    for name in want:
        assert got[name].shape == (ROWS, 1)
        np.testing.assert_allclose(got[name], want[name], rtol=1e-6, atol=1e-7)
    # Four calls (16, 16, 16, 15 batches): the hook sees each call's last batch.
    assert counter.batches == [15, 31, 47, 62]


def test_predict_on_arrays_and_unknown_length_keeps_every_row():
    model = _ranker()
    rows = _rows()
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


def test_fit_and_evaluate_keep_one_step_per_call_after_predict():
    model = _ranker()
    rows = _rows()
    data = tf.data.Dataset.from_tensor_slices(rows).batch(100)
    model.predict(data, verbose=0)
    assert int(model._steps_per_execution.numpy()) == 1  # noqa: SLF001
    seen = []
    model.fit(
        data,
        epochs=1,
        verbose=0,
        callbacks=[
            tf.keras.callbacks.LambdaCallback(
                on_train_batch_end=lambda batch, logs: seen.append(batch)
            )
        ],
    )
    assert seen == list(range(10))
    assert int(model.optimizer.iterations.numpy()) == 10
    # The second predict reuses both cached functions (no new trace).
    single = model.predict_function
    model.predict(data, verbose=0)
    assert model.predict_function is single


def test_predict_steps_per_execution_one_and_users_choice_are_keras():
    rows = _rows()
    data = tf.data.Dataset.from_tensor_slices(rows).batch(100)
    for model in (_ranker(predict_steps_per_execution=1), _ranker()):
        if model.predict_steps_per_execution != 1:  # the user's own setting
            model.compile(optimizer="adam", steps_per_execution=5)
        counter = _Counter()
        model.predict(data, verbose=0, callbacks=[counter])
        step = 1 if model.predict_steps_per_execution == 1 else 5
        assert counter.batches == list(range(step - 1, 10, step))


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "16"])
def test_a_bad_predict_steps_per_execution_is_refused(bad):
    with pytest.raises(
        ValueError, match="`predict_steps_per_execution` must be an int >= 1. Received"
    ):
        _ranker(predict_steps_per_execution=bad)


def test_predict_steps_per_execution_is_in_the_config():
    model = _esmm(predict_steps_per_execution=4)
    config = model.get_config()
    assert config["predict_steps_per_execution"] == 4
    assert ESMM.from_config(config).predict_steps_per_execution == 4
    del config["predict_steps_per_execution"]  # a config saved before the option
    restored = ESMM.from_config(config)
    assert restored.predict_steps_per_execution == DEFAULT_PREDICT_STEPS
