"""``build_before_fit``: the model's variables made before the training step is
traced, so it is traced once, with the weights a lazy build makes."""

import numpy as np
import tensorflow as tf
from feature_helpers import click_buy_ranker
from feature_helpers import click_buy_rows

from mtrec.layers import SharedBottom
from mtrec.models.eager_build import build_before_fit


class _Picky(SharedBottom):
    """A backbone that refuses batches of two rows or fewer."""

    def call(self, inputs, training=None):
        tf.debugging.assert_greater(tf.shape(inputs)[0], 2)
        return super().call(inputs, training=training)


def test_fit_on_a_dataset_traces_the_step_once_with_the_lazy_weights():
    rows = click_buy_rows(400)
    built = click_buy_ranker()
    built.fit(tf.data.Dataset.from_tensor_slices(rows).batch(50), epochs=2, verbose=0)
    assert built._step_functions.steps["train"].tracing_count == 1  # noqa: SLF001
    # Arrays: Keras builds the model inside the first trace, which runs twice.
    lazy = click_buy_ranker()
    lazy.fit(rows, batch_size=50, epochs=2, shuffle=False, verbose=0)
    assert lazy._step_functions.steps["train"].tracing_count == 2  # noqa: SLF001
    for a, b in zip(built.get_weights(), lazy.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_built_model_gets_its_legacy_optimizers_slots_before_the_trace():
    data = tf.data.Dataset.from_tensor_slices(click_buy_rows(400)).batch(50)
    owned = click_buy_ranker()
    owned.compile(optimizer=tf.keras.optimizers.legacy.Adam())
    owned(next(iter(data)))  # built by its owner, the optimizer not
    fresh = click_buy_ranker()  # the same seed: built on zero rows by fit
    fresh.compile(optimizer=tf.keras.optimizers.legacy.Adam())
    models = [owned, fresh]
    assert not owned.optimizer.variables()
    assert not build_before_fit(owned, data)
    # The iteration count, Adam's hyperparameters, two slots per variable.
    slots = [
        v for v in owned.optimizer.variables() if v.name.endswith(("/m:0", "/v:0"))
    ]
    assert len(slots) == 2 * len(owned.trainable_variables)
    for model in models:
        model.fit(data, epochs=2, verbose=0)
    assert owned._step_functions.steps["train"].tracing_count == 1  # noqa: SLF001
    for a, b in zip(owned.get_weights(), fresh.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_it_builds_the_model_and_the_optimizer_from_the_spec_alone():
    model = click_buy_ranker()
    rows = click_buy_rows(400)
    features = {k: v for k, v in rows.items() if k in ("city", "price")}
    labels = {k: v for k, v in rows.items() if k in ("click", "buy")}
    data = tf.data.Dataset.from_tensor_slices((features, labels)).batch(8)
    assert build_before_fit(model, data)
    assert model.built
    # Adam: the iteration count, then two slots per trainable variable.
    assert len(model.optimizer.variables) == 1 + 2 * len(model.trainable_variables)
    assert not build_before_fit(model, data)  # built already


def test_it_leaves_what_it_cannot_know_or_own_to_keras():
    rows = click_buy_rows(400)
    assert not build_before_fit(click_buy_ranker(), rows)  # not a dataset
    ragged = tf.data.Dataset.from_tensors(
        {"city": tf.ragged.constant([["a"], ["b", "c"]]), "price": [1.0, 2.0]}
    )
    model = click_buy_ranker()
    assert not build_before_fit(model, ragged)
    assert not model.built
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        mirrored = click_buy_ranker()
    data = tf.data.Dataset.from_tensor_slices(rows).batch(50)
    assert not build_before_fit(mirrored, data)
    assert not mirrored.built


def test_a_model_that_refuses_the_zero_rows_is_built_by_its_first_step():
    rows = click_buy_rows(400)
    data = tf.data.Dataset.from_tensor_slices(rows).batch(50)
    picky = click_buy_ranker(_Picky)
    assert not build_before_fit(picky, data)
    picky.fit(data, epochs=1, verbose=0)
    assert int(picky.optimizer.iterations.numpy()) == 8
    plain = click_buy_ranker()
    plain.fit(data, epochs=1, verbose=0)
    for a, b in zip(plain.get_weights(), picky.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
