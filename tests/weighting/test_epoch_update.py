"""dwa, lbtw and dtp under a plain ``model.fit``: the model feeds them each epoch."""

import numpy as np
import pytest
import tensorflow as tf

from mtrec.features import FeatureEmbedding
from mtrec.layers import SharedBottom
from mtrec.models import ESMM
from mtrec.models import Task
from mtrec.training.callbacks import WeightingUpdate
from mtrec.weighting import EpochUpdate
from mtrec.weighting.dtp import dtp_weights
from mtrec.weighting.dwa import dwa_weights

OUTPUTS = ("ctr", "ctcvr")


def _model(weighting):
    features = FeatureEmbedding(
        [
            {"name": "city", "kind": "categorical", "embedding_dim": 4},
            {"name": "price", "kind": "dense"},
        ],
        vocabularies={"city": ["a", "b", "c"]},
        dense_stats={"price": {"mean": 0.0, "std": 1.0, "boundaries": None}},
    )
    return ESMM(
        features,
        SharedBottom(["ctr", "cvr"], units=[8]),
        Task("ctr", "click"),
        Task("cvr", "conversion", condition="click"),
        tower_units=[4],
        weighting=weighting,
    )


def _dataset(n=128, batch=64):
    rng = np.random.default_rng(0)
    city = rng.choice(["a", "b", "c"], n)
    click = ((city == "a") | (rng.random(n) < 0.3)).astype(np.float32)
    data = {
        "city": city,
        "price": rng.normal(size=n).astype(np.float32),
        "click": click,
        "conversion": (click * (rng.random(n) < 0.5)).astype(np.float32),
    }
    return tf.data.Dataset.from_tensor_slices(data).batch(batch)


def _fit(model, epochs, batch=64, callbacks=None):
    tf.keras.utils.set_random_seed(0)
    model.compile(optimizer=tf.keras.optimizers.Adam(0.05))
    kwargs = {} if callbacks is None else {"callbacks": callbacks}
    return model.fit(_dataset(batch=batch), epochs=epochs, verbose=0, **kwargs).history


def _column(history, prefix, suffix, epoch):
    return [history[f"{prefix}{k}{suffix}"][epoch] for k in OUTPUTS]


def test_dwa_weights_move_under_plain_fit():
    """Epoch 3 weighs by ``K softmax(r / T)``, ``r`` from epochs 2 and 1."""
    history = _fit(_model("dwa"), epochs=3)
    assert _column(history, "weight_", "", 0) == pytest.approx([1.0, 1.0])
    expected = dwa_weights(
        _column(history, "", "_loss", 1), _column(history, "", "_loss", 0), 2.0
    )
    np.testing.assert_allclose(
        _column(history, "weight_", "", 2), expected.numpy(), rtol=1e-5
    )
    assert not np.allclose(expected.numpy(), 1.0)


def test_lbtw_reference_is_each_epochs_first_batch_under_plain_fit():
    """One batch per epoch: the loss is its own reference, every weight 1.

    Without the epoch callback the reference stays the run's first batch and
    later epochs get ``(L(t) / L(0))^α < 1``.
    """
    history = _fit(_model("lbtw"), epochs=3, batch=128)
    for epoch in range(3):
        assert _column(history, "weight_", "", epoch) == pytest.approx([1.0, 1.0])
    assert history["ctr_loss"][2] < history["ctr_loss"][0]


def test_dtp_weights_move_under_plain_fit():
    """Epoch 2 weighs by ``-(1 - κ)^γ log κ`` with ``κ`` epoch 1's AUCs."""
    history = _fit(_model("dtp"), epochs=2)
    assert _column(history, "weight_", "", 0) == pytest.approx([1.0, 1.0])
    expected = dtp_weights(_column(history, "", "_auc", 0), 1.0)
    np.testing.assert_allclose(
        _column(history, "weight_", "", 1), expected.numpy(), rtol=1e-5
    )


@pytest.mark.parametrize("given", ["none", "training_callback", "positional"])
def test_each_epoch_is_fed_once(given):
    """``fit`` adds an ``EpochUpdate`` only when none is given (the training
    loop passes ``WeightingUpdate``, a subclass): DWA sees 2 epochs in 2."""
    model = _model("dwa")
    fed = []
    original = model.weighting.on_epoch_end

    def spy(epoch, logs):
        fed.append(epoch)
        original(epoch, logs)

    model.weighting.on_epoch_end = spy
    model.compile(optimizer=tf.keras.optimizers.Adam(0.05))
    if given == "none":
        model.fit(_dataset(), epochs=2, verbose=0)
    elif given == "training_callback":
        model.fit(_dataset(), epochs=2, verbose=0, callbacks=[WeightingUpdate()])
    else:
        model.fit(_dataset(), None, None, 2, 0, [EpochUpdate()])
    assert fed == [0, 1]
    assert int(model.weighting.epochs_seen.numpy()) == 2
