"""MultiTaskRanker: towers, masked tasks, regression tasks, Task validation."""

import numpy as np
import pytest
import tensorflow as tf

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
    with pytest.raises(ValueError, match="`cross_layers` must be an integer >= 0"):
        MultiTaskRanker(_features(), SharedBottom(["ctr"]), tasks, cross_layers=-1)
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
