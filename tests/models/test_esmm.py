"""ESMM: the product, the entire-space losses, and CVR learning only through CTCVR."""

import numpy as np
import pytest
import tensorflow as tf
from feature_helpers import city_price_features

from mtrec.layers import SharedBottom
from mtrec.models import ESMM
from mtrec.models import Task

CTR = Task("ctr", "click")
CVR = Task("cvr", "conversion", condition="click")


def _model(**kwargs):
    return ESMM(
        city_price_features(),
        SharedBottom(["ctr", "cvr"], units=[8]),
        CTR,
        CVR,
        tower_units=[4],
        **kwargs,
    )


def _batch(n=64, seed=0):
    rng = np.random.default_rng(seed)
    click = (rng.random(n) < 0.5).astype(np.float32)
    conversion = click * (rng.random(n) < 0.5).astype(np.float32)
    return {
        "city": tf.constant(rng.choice(["a", "b", "c", "d"], n)),
        "price": tf.constant(rng.normal(size=n).astype(np.float32)),
        "click": tf.constant(click),
        "conversion": tf.constant(conversion),
    }


def test_ctcvr_is_exactly_ctr_times_cvr():
    model = _model()
    out = model(_batch())
    assert set(out) == {"ctr", "cvr", "ctcvr"}
    assert all(v.shape == (64, 1) for v in out.values())
    np.testing.assert_array_equal(
        out["ctcvr"].numpy(), (out["ctr"] * out["cvr"]).numpy()
    )


def test_loss_is_ctr_logloss_plus_ctcvr_logloss_over_all_impressions():
    model = _model()
    batch = _batch()
    out = model(batch)
    bce = tf.keras.losses.BinaryCrossentropy()
    expected = bce(batch["click"][:, None], out["ctr"]) + bce(
        batch["conversion"][:, None], out["ctcvr"]
    )
    np.testing.assert_allclose(
        model.compute_loss(batch).numpy(), expected.numpy(), rtol=1e-6
    )
    assert list(model.supervised_tasks()) == ["ctr", "ctcvr"]


def test_cvr_tower_learns_only_through_ctcvr():
    model = _model()
    batch = _batch()
    with tf.GradientTape(persistent=True) as tape:
        out = model(batch)
        ctr_loss = tf.keras.losses.binary_crossentropy(
            batch["click"][:, None], out["ctr"]
        )
        total = model.compute_loss(batch)
    cvr_vars = model.towers["cvr"].trainable_variables
    # The CTR loss alone gives the CVR tower no gradient...
    assert all(g is None for g in tape.gradient(ctr_loss, cvr_vars))
    # ...the total does, and it equals the gradient of the CTCVR term alone.
    grads = tape.gradient(total, cvr_vars)
    assert all(g is not None and float(tf.norm(g)) > 0 for g in grads)


def test_cvr_gradient_flows_from_unclicked_rows_too():
    """Entire space: rows with click=0 still shape pCVR through pCTCVR."""
    model = _model()
    batch = _batch()
    unclicked = {k: tf.boolean_mask(v, batch["click"] == 0) for k, v in batch.items()}
    with tf.GradientTape() as tape:
        loss = model.compute_loss(unclicked)
    grads = tape.gradient(loss, model.towers["cvr"].trainable_variables)
    assert any(float(tf.norm(g)) > 0 for g in grads)


def test_training_reduces_the_loss_and_reports_task_metrics():
    tf.keras.utils.set_random_seed(1)
    model = _model()
    model.compile(optimizer=tf.keras.optimizers.Adam(0.05))
    rng = np.random.default_rng(0)
    n = 512
    city = rng.choice(["a", "b", "c"], n)
    click = ((city == "a") | (rng.random(n) < 0.1)).astype(np.float32)
    conversion = click * (city == "a") * (rng.random(n) < 0.8)
    data = {
        "city": city,
        "price": np.zeros(n, np.float32),
        "click": click,
        "conversion": conversion.astype(np.float32),
    }
    ds = tf.data.Dataset.from_tensor_slices(data).batch(64)
    history = model.fit(ds, epochs=5, verbose=0).history
    assert history["loss"][-1] < 0.7 * history["loss"][0]
    assert {"ctr_auc", "ctcvr_auc", "ctr_loss", "ctcvr_loss"} <= set(history)
    assert history["ctr_auc"][-1] > 0.85


def test_extra_tasks_and_targets():
    backbone = SharedBottom(["ctr", "cvr", "like"], units=[8])
    model = ESMM(
        city_price_features(),
        backbone,
        CTR,
        CVR,
        extra_tasks=[Task("like", "click")],
        ctcvr_name="pay",
    )
    out = model(_batch())
    assert set(out) == {"ctr", "cvr", "pay", "like"}
    targets = {(t.output, t.label, t.condition) for t in model.evaluation_targets()}
    assert targets == {
        ("ctr", "click", None),
        ("cvr", "conversion", "click"),
        ("pay", "conversion", None),
        ("like", "click", None),
    }


def test_cvr_task_must_be_conditioned_on_click():
    with pytest.raises(ValueError, match="must be conditioned on the click label"):
        ESMM(
            city_price_features(),
            SharedBottom(["ctr", "cvr"]),
            CTR,
            Task("cvr", "conversion"),
        )
    with pytest.raises(ValueError, match="clashes with a task name"):
        ESMM(
            city_price_features(),
            SharedBottom(["ctr", "cvr"]),
            CTR,
            CVR,
            ctcvr_name="ctr",
        )


def test_get_config_round_trip_rebuilds_an_equal_model():
    from mtrec.layers import MMoE

    model = ESMM(
        city_price_features(),
        MMoE(["ctr", "cvr", "dwell"], num_experts=2, expert_units=[4]),
        CTR,
        Task("cvr", "conversion", condition="click", weight=2.0),
        extra_tasks=[Task("dwell", "dwell_time", kind="regression", weight=0.5)],
        ctcvr_name="pay",
        tower_units=[3],
        tower_dropout=0.1,
        cross_layers=1,
        cross_projection_dim=2,
        weighting="dwa",
        name="esmm_mmoe",
    )
    batch = _batch()
    expected = model(batch)
    config = model.get_config()
    assert tf.keras.utils.get_registered_name(ESMM) == "mtrec>ESMM"
    assert config["cvr_task"]["weight"] == 2.0
    assert [t["name"] for t in config["extra_tasks"]] == ["dwell"]
    clone = ESMM.from_config(config)
    assert clone.get_config() == config
    assert type(clone.backbone).__name__ == "MMoE"
    assert type(clone.weighting).__name__ == type(model.weighting).__name__
    assert clone.prediction_names == ["ctr", "cvr", "pay", "dwell"]
    clone(batch)
    clone.set_weights(model.get_weights())
    for key, value in clone(batch).items():
        np.testing.assert_array_equal(value.numpy(), expected[key].numpy())


def test_ctr_loss_from_logit_and_ctcvr_from_the_product():
    model = _model(training_metrics=False)
    batch = _batch()
    outputs, logits = model(batch, return_logits=True)
    assert set(logits) == {"ctr", "cvr"} and model.logit_outputs == {"ctr"}
    np.testing.assert_array_equal(outputs["ctr"].numpy(), tf.sigmoid(logits["ctr"]))
    losses = model.task_losses(batch)
    from_logits = tf.keras.losses.BinaryCrossentropy(from_logits=True)
    np.testing.assert_allclose(
        float(losses["ctr"]),
        float(from_logits(batch["click"][:, None], logits["ctr"])),
        rtol=1e-6,
    )
    product = tf.keras.losses.BinaryCrossentropy()(
        batch["conversion"][:, None], outputs["ctcvr"]
    )
    np.testing.assert_allclose(float(losses["ctcvr"]), float(product), rtol=1e-6)
    assert all(not task.metrics for task in model.ranking_tasks.values())
    config = model.get_config()
    assert config["training_metrics"] is False
    assert ESMM.from_config(config).get_config() == config
