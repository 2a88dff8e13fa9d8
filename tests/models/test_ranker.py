"""MultiTaskRanker: towers, masked tasks, regression tasks, Task validation."""

import numpy as np
import pytest
import tensorflow as tf

import mtrec.layers
from mtrec.features import FeatureEmbedding
from mtrec.layers import SharedBottom
from mtrec.models import MultiTaskRanker
from mtrec.models import Task


def _features():
    return FeatureEmbedding(
        [{"name": "city", "kind": "categorical", "embedding_dim": 4}],
        vocabularies={"city": ["a", "b"]},
    )


def _batch():
    return {
        "city": tf.constant(["a", "b", "a", "c"]),
        "click": tf.constant([1.0, 0.0, 1.0, 0.0]),
        "conversion": tf.constant([1.0, 0.0, 0.0, 0.0]),
        "dwell": tf.constant([3.0, 0.0, 1.5, 0.0]),
    }


def test_masked_task_loss_counts_only_condition_rows():
    tasks = [Task("ctr", "click"), Task("cvr", "conversion", condition="click")]
    model = MultiTaskRanker(_features(), SharedBottom(["ctr", "cvr"], units=[4]), tasks)
    batch = _batch()
    out = model(batch)
    bce = tf.keras.losses.BinaryCrossentropy()
    ctr = bce(batch["click"][:, None], out["ctr"])
    # Keras sum-over-batch-size: masked rows count as zeros in the mean.
    cvr = bce(batch["conversion"][:, None], out["cvr"], sample_weight=batch["click"])
    np.testing.assert_allclose(
        model.compute_loss(batch).numpy(), (ctr + cvr).numpy(), rtol=1e-6
    )


def test_regression_task_is_linear_with_mse_and_weights_apply():
    tasks = [
        Task("ctr", "click", weight=0.5),
        Task("dwell", "dwell", kind="regression", weight=2.0),
    ]
    model = MultiTaskRanker(
        _features(), SharedBottom(["ctr", "dwell"], units=[4]), tasks
    )
    batch = _batch()
    out = model(batch)
    assert float(tf.reduce_min(out["ctr"])) >= 0.0
    ctr = tf.keras.losses.BinaryCrossentropy()(batch["click"][:, None], out["ctr"])
    mse = tf.keras.losses.MeanSquaredError()(batch["dwell"][:, None], out["dwell"])
    np.testing.assert_allclose(
        model.compute_loss(batch).numpy(), (0.5 * ctr + 2.0 * mse).numpy(), rtol=1e-6
    )


def test_single_task_baseline():
    model = MultiTaskRanker(
        _features(), SharedBottom(["ctr"], units=[4]), [Task("ctr", "click")]
    )
    assert set(model(_batch())) == {"ctr"}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "c tr", "label": "click"}, "must be an identifier"),
        ({"name": "ctr", "label": ""}, "`label` must be a column name"),
        ({"name": "ctr", "label": "click", "kind": "ordinal"}, "`kind` must be one of"),
        ({"name": "ctr", "label": "click", "weight": -1}, "`weight` must be >= 0"),
        (
            {"name": "ctr", "label": "click", "condition": "click"},
            "must differ from `label`",
        ),
    ],
)
def test_bad_tasks(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Task(**kwargs)


def test_unknown_task_field():
    with pytest.raises(ValueError, match=r"unknown task field\(s\) \['lable'\]"):
        Task.from_dict({"name": "ctr", "lable": "click"})


def test_dcn_cross_layers_sit_between_embeddings_and_backbone():
    from mtrec.layers import MMoE

    tasks = [Task("ctr", "click")]
    model = MultiTaskRanker(
        _features(),
        SharedBottom(["ctr"], units=[4]),
        tasks,
        cross_layers=2,
        cross_projection_dim=2,
    )
    batch = _batch()
    x0 = model.feature_layer(batch)
    x1 = model.crosses[0](x0)
    np.testing.assert_allclose(
        model.shared_input(batch).numpy(), model.crosses[1](x0, x1).numpy(), atol=1e-6
    )
    assert [c.name for c in model.crosses] == ["cross_0", "cross_1"]
    assert model.crosses[0]._projection_dim == 2
    for bad in (-1, True, 1.0):
        with pytest.raises(
            ValueError,
            match=rf"must be an integer >= 0. Received: `cross_layers={bad!r}`",
        ):
            MultiTaskRanker(_features(), SharedBottom(["ctr"]), tasks, cross_layers=bad)
    with pytest.raises(ValueError, match="`cross_projection_dim` must be >= 1 or None"):
        MultiTaskRanker(
            _features(),
            SharedBottom(["ctr"]),
            tasks,
            cross_layers=1,
            cross_projection_dim=0,
        )
    assert not model.has_gates
    with pytest.raises(TypeError, match="has no gates"):
        model.gate_weights(batch)
    gated = MultiTaskRanker(
        _features(), MMoE(["ctr"], num_experts=3, expert_units=[4]), tasks
    )
    gates = gated.gate_weights(batch)
    assert gated.has_gates and gates["ctr"].shape == (4, 3)
    np.testing.assert_allclose(gates["ctr"].numpy().sum(axis=1), 1.0, rtol=1e-6)


def test_get_config_round_trip_and_save_without_warnings(tmp_path, caplog):
    model = MultiTaskRanker(
        _features(),
        SharedBottom(["ctr", "dwell"], units=[4]),
        [Task("ctr", "click"), Task("dwell", "dwell", kind="regression", weight=0.3)],
        tower_units=[2],
        tower_activation="tanh",
        tower_l2=0.01,
        name="ranker",
    )
    batch = _batch()
    expected = model(batch)
    config = model.get_config()
    assert (
        tf.keras.utils.get_registered_name(MultiTaskRanker) == "mtrec>MultiTaskRanker"
    )
    assert config["tasks"][1] == {
        "name": "dwell",
        "label": "dwell",
        "kind": "regression",
        "weight": 0.3,
        "condition": None,
    }
    clone = MultiTaskRanker.from_config(config)
    assert clone.get_config() == config
    clone(batch)
    clone.set_weights(model.get_weights())
    for key, value in clone(batch).items():
        np.testing.assert_array_equal(value.numpy(), expected[key].numpy())
    # Saving used to warn that the model's arguments were not serialisable.
    with caplog.at_level("WARNING"):
        tf.saved_model.save(model, str(tmp_path / "saved"))
    assert "non-serializable" not in caplog.text


def _saturated_ctr_model(**kwargs):
    """A CTR tower whose logit is 60 on every row (p rounds to 1.0 in float32)."""
    model = MultiTaskRanker(
        _features(), SharedBottom(["ctr"], units=[4]), [Task("ctr", "click")], **kwargs
    )
    model(_batch())
    logit = model.towers["ctr"].logit
    logit.kernel.assign(tf.zeros_like(logit.kernel))
    logit.bias.assign([60.0])
    return model


def test_binary_loss_is_computed_from_the_logit():
    model = _saturated_ctr_model()
    batch = _batch()
    batch["click"] = tf.zeros(4)
    outputs, logits = model(batch, return_logits=True)
    np.testing.assert_array_equal(logits["ctr"].numpy(), np.full((4, 1), 60.0))
    # Predictions stay probabilities.
    np.testing.assert_array_equal(outputs["ctr"].numpy(), np.ones((4, 1)))
    np.testing.assert_array_equal(model(batch)["ctr"].numpy(), np.ones((4, 1)))
    assert model.logit_outputs == {"ctr"}
    # log(1 + e^60) = 60 + log(1 + e^-60): finite and exact...
    loss = model.task_losses(batch)["ctr"]
    np.testing.assert_allclose(float(loss), 60.0, rtol=1e-6)
    # ...where the probability path clips p to 1 - 1e-7 (float32: 1 - 1.19e-7)
    # and adds 1e-7: -log(2.19e-7) = 15.33, whatever the logit beyond ~16.
    clipped = tf.keras.losses.BinaryCrossentropy()(
        batch["click"][:, None], outputs["ctr"]
    )
    np.testing.assert_allclose(float(clipped), -np.log(2.192e-7), rtol=1e-3)
    with tf.GradientTape() as tape:
        loss = model.compute_loss(batch)
    grads = tape.gradient(loss, model.towers["ctr"].logit.bias)
    np.testing.assert_allclose(grads.numpy(), [1.0], rtol=1e-6)  # sigmoid(60) - 0


def test_logit_loss_equals_the_probability_loss_on_ordinary_inputs():
    tf.keras.utils.set_random_seed(3)
    tasks = [Task("ctr", "click"), Task("cvr", "conversion", condition="click")]
    model = MultiTaskRanker(_features(), SharedBottom(["ctr", "cvr"], units=[4]), tasks)
    batch = _batch()
    out = model(batch)
    losses = model.task_losses(batch)
    bce = tf.keras.losses.BinaryCrossentropy()
    np.testing.assert_allclose(
        float(losses["ctr"]), float(bce(batch["click"][:, None], out["ctr"])), atol=1e-6
    )
    np.testing.assert_allclose(
        float(losses["cvr"]),
        float(bce(batch["conversion"][:, None], out["cvr"], batch["click"])),
        atol=1e-6,
    )


def _fit_history(training_metrics: bool) -> dict:
    tasks = [Task("ctr", "click"), Task("dwell", "dwell", kind="regression")]
    model = MultiTaskRanker(
        _features(),
        SharedBottom(["ctr", "dwell"], units=[4]),
        tasks,
        training_metrics=training_metrics,
    )
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01))
    data = tf.data.Dataset.from_tensor_slices(
        {k: v.numpy() for k, v in _batch().items()}
    ).batch(2)
    history = model.fit(data, epochs=1, verbose=0).history
    evaluated = model.evaluate(data, verbose=0, return_dict=True)
    return model, set(history), set(evaluated)


def test_training_metrics_can_be_turned_off():
    model, history, evaluated = _fit_history(training_metrics=True)
    assert {"ctr_auc", "dwell_rmse", "ctr_loss", "weight_ctr"} <= history
    assert model.get_config()["training_metrics"] is True
    model, history, evaluated = _fit_history(training_metrics=False)
    base = {"ctr_loss", "dwell_loss", "weight_ctr", "weight_dwell", "loss"}
    assert base <= history
    assert not {k for k in history | evaluated if k.endswith(("_auc", "_rmse"))}
    assert all(not task.metrics for task in model.ranking_tasks.values())
    config = model.get_config()
    assert config["training_metrics"] is False
    assert MultiTaskRanker.from_config(config).training_metrics is False
    with pytest.raises(ValueError, match="`training_metrics` must be a bool"):
        MultiTaskRanker(
            _features(),
            SharedBottom(["ctr"]),
            [Task("ctr", "click")],
            training_metrics="no",
        )
    # A NumPy bool is one, kept as Python's (the config stays JSON).
    model = MultiTaskRanker(
        _features(),
        SharedBottom(["ctr"]),
        [Task("ctr", "click")],
        training_metrics=np.bool_(False),
    )
    assert model.get_config()["training_metrics"] is False


def _encoded_model(**kwargs):
    from mtrec.layers import MMoE

    features = FeatureEmbedding(
        [
            {"name": "age", "dtype": "int64", "num_ids": 5, "embedding_dim": 2},
            {"name": "edu", "dtype": "int64", "num_ids": 3, "embedding_dim": 2},
            {"name": "price", "kind": "dense"},
        ],
        dense_stats={"price": {"mean": 0.0, "std": 1.0, "boundaries": None}},
    )
    tasks = [Task("ctr", "click"), Task("cvr", "conversion", condition="click")]
    backbone = MMoE(["ctr", "cvr"], num_experts=2, expert_units=[4])
    return MultiTaskRanker(features, backbone, tasks, tower_units=[2], **kwargs)


def _encoded_batch(n=32):
    rng = np.random.default_rng(0)
    return {
        "age": rng.integers(0, 5, n),
        "edu": rng.integers(0, 3, n),
        "price": rng.normal(size=n).astype(np.float32),
        "click": (rng.random(n) < 0.5).astype(np.float32),
        "conversion": (rng.random(n) < 0.3).astype(np.float32),
    }


def test_out_of_range_encoded_id_fails_the_model_call():
    model = _encoded_model()
    batch = {k: tf.constant(v) for k, v in _encoded_batch(4).items()}
    model(batch)
    batch["edu"] = tf.constant([0, 1, 2, 3], tf.int64)
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"feature `edu`: ids must be in \[0, 3\) \(`num_ids=3`\); received\] "
        r"\[3\] \[at batch row\] \[3\]",
    ):
        model(batch)
    with pytest.raises(tf.errors.InvalidArgumentError, match="feature `edu`"):
        model.predict(batch, verbose=0)


@pytest.mark.parametrize("training_metrics", [True, False])
def test_encoded_and_dense_model_trains_under_xla(training_metrics):
    # The same model and weights trained with and without XLA take the same
    # steps (XLA's gradient of the embedding table is a segment sum, the
    # default a sparse-dense matmul), and every variable a gradient reaches moves.
    tf.keras.utils.set_random_seed(5)
    data = tf.data.Dataset.from_tensor_slices(_encoded_batch()).batch(8)
    models = []
    for jit_compile in (True, False):
        model = _encoded_model(training_metrics=training_metrics)
        assert model.feature_layer.jit_compatible
        model.compile(optimizer=tf.keras.optimizers.Adam(0.01), jit_compile=jit_compile)
        model(next(iter(data)))
        if models:
            model.set_weights(models[0][0].get_weights())
        models.append((model, [v.numpy().copy() for v in model.trainable_variables]))
    for model, _ in models:
        history = model.fit(data, epochs=1, verbose=0).history
        assert np.isfinite(history["loss"][0])
    (xla, before), (plain, _) = models
    for a, b in zip(xla.trainable_variables, plain.trainable_variables, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)
    (table,) = xla.feature_layer.trainable_variables
    index = [v.ref() for v in xla.trainable_variables].index(table.ref())
    assert before[index].shape == table.shape
    assert not np.array_equal(before[index], table.numpy())


def _tower_matmuls(model, batch) -> int:
    """MatMul ops of ``model(batch)`` outside the backbone's name scope."""
    graph = tf.function(lambda: model(batch)).get_concrete_function().graph
    return sum(
        op.type == "MatMul" and f"/{model.backbone.name}/" not in op.name
        for op in graph.get_operations()
    )


@pytest.mark.parametrize(
    "backbone, shared",
    [
        (lambda: SharedBottom(["ctr", "cvr"], units=[64]), True),
        (lambda: SharedBottom(["ctr", "cvr"], units=[63]), False),
        (lambda: SharedBottom(["ctr", "cvr"], units=[]), False),
        (lambda: mtrec.layers.MMoE(["ctr", "cvr"], 2, expert_units=[64]), False),
    ],
    ids=["shared_bottom", "narrow_bottom", "no_bottom", "mmoe"],
)
def test_towers_reading_one_tensor_share_their_first_matmul(backbone, shared):
    # Shared-bottom (and ESMM's towers over the embeddings) feed every tower
    # the same tensor: one matmul for all towers' first layers, the same
    # values and gradients as a matmul each (`separate_matmuls`), where that
    # tensor has 64 columns or more (`MIN_SHARED_INPUT`; 63, or the 4 of the
    # embedding here, keep a matmul each).
    tasks = [Task("ctr", "click"), Task("cvr", "conversion")]
    batch = _batch()
    results = {}
    for mode in ("shared", "separate"):
        tf.keras.utils.set_random_seed(3)
        model = MultiTaskRanker(_features(), backbone(), tasks, tower_units=[3, 2])
        with tf.GradientTape() as tape:
            if mode == "separate":
                with mtrec.layers.separate_matmuls():
                    out = model(batch, training=True)
                    separate = _tower_matmuls(model, batch)
            else:
                out = model(batch, training=True)
                together = _tower_matmuls(model, batch)
            loss = tf.reduce_sum(out["ctr"]) + 2.0 * tf.reduce_sum(out["cvr"])
        results[mode] = (out, tape.gradient(loss, model.trainable_variables))
    # Each tower: 2 matmuls (two hidden; the logit is a multiply and a row
    # sum, `one_unit_linear`); shared: one first layer less.
    assert separate == 4
    assert together == (3 if shared else 4)
    for key in ("ctr", "cvr"):
        np.testing.assert_allclose(
            results["shared"][0][key], results["separate"][0][key], rtol=1e-6
        )
    for a, b in zip(results["shared"][1], results["separate"][1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
