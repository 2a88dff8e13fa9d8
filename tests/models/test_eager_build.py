"""``build_before_fit``: the model's variables made before the training step is
traced, so it is traced once, with the weights a lazy build makes."""

import numpy as np
import tensorflow as tf
from feature_helpers import city_price_features

from mtrec.layers import SharedBottom
from mtrec.models import MultiTaskRanker
from mtrec.models import Task
from mtrec.models.eager_build import build_before_fit


def _ranker():
    tf.keras.utils.set_random_seed(0)
    model = MultiTaskRanker(
        city_price_features(),
        SharedBottom(["click", "buy"], units=[8]),
        [Task("click", "click"), Task("buy", "buy")],
        tower_units=[4],
    )
    model.compile(optimizer="adam")
    return model


def _rows(n=400) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    click = (rng.random(n) < 0.5).astype(np.float32)
    return {
        "city": rng.choice(["a", "b", "c", "d"], n),
        "price": rng.normal(size=n).astype(np.float32),
        "click": click,
        "buy": click * (rng.random(n) < 0.5).astype(np.float32),
    }


def test_fit_on_a_dataset_traces_the_step_once_with_the_lazy_weights():
    rows = _rows()
    built = _ranker()
    built.fit(tf.data.Dataset.from_tensor_slices(rows).batch(50), epochs=2, verbose=0)
    assert built._step_functions.steps["train"].tracing_count == 1  # noqa: SLF001
    # Arrays: Keras builds the model inside the first trace, which runs twice.
    lazy = _ranker()
    lazy.fit(rows, batch_size=50, epochs=2, shuffle=False, verbose=0)
    assert lazy._step_functions.steps["train"].tracing_count == 2  # noqa: SLF001
    for a, b in zip(built.get_weights(), lazy.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_it_builds_the_model_and_the_optimizer_from_the_spec_alone():
    model = _ranker()
    features = {k: v for k, v in _rows().items() if k in ("city", "price")}
    labels = {k: v for k, v in _rows().items() if k in ("click", "buy")}
    data = tf.data.Dataset.from_tensor_slices((features, labels)).batch(8)
    assert build_before_fit(model, data)
    assert model.built
    # Adam: the iteration count, then two slots per trainable variable.
    assert len(model.optimizer.variables) == 1 + 2 * len(model.trainable_variables)
    assert not build_before_fit(model, data)  # built already


def test_it_leaves_what_it_cannot_know_or_own_to_keras():
    rows = _rows()
    assert not build_before_fit(_ranker(), rows)  # not a dataset
    ragged = tf.data.Dataset.from_tensors(
        {"city": tf.ragged.constant([["a"], ["b", "c"]]), "price": [1.0, 2.0]}
    )
    model = _ranker()
    assert not build_before_fit(model, ragged)
    assert not model.built
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        mirrored = _ranker()
    data = tf.data.Dataset.from_tensor_slices(rows).batch(50)
    assert not build_before_fit(mirrored, data)
    assert not mirrored.built
