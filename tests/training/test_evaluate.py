"""predict_dataset / evaluate_model: one trace per model, values on the right rows."""

import gc
import weakref

import numpy as np
import pytest
import tensorflow as tf
from feature_helpers import branching_bottom_class
from feature_helpers import city_price_features
from feature_helpers import click_buy_ranker
from feature_helpers import click_buy_rows

from mtrec.features import FeatureEmbedding
from mtrec.layers import MMoE
from mtrec.layers import SharedBottom
from mtrec.models import ESMM
from mtrec.models import MultiTaskRanker
from mtrec.models import Task
from mtrec.training import evaluate
from mtrec.training.config import ConfigError
from mtrec.training.config import EvalConfig
from mtrec.training.config import RunConfig
from mtrec.training.loop import evaluated


def _model():
    return ESMM(
        FeatureEmbedding(
            [{"name": "city", "kind": "categorical", "embedding_dim": 3}],
            vocabularies={"city": ["a", "b"]},
        ),
        SharedBottom(["ctr", "cvr"], units=[4]),
        Task("ctr", "click"),
        Task("cvr", "conversion", condition="click"),
        tower_units=[2],
    )


def _dataset(rows=10, batch=4):
    rng = np.random.default_rng(0)
    click = (rng.random(rows) < 0.5).astype("float32")
    return tf.data.Dataset.from_tensor_slices(
        {
            "city": rng.choice(["a", "b", "c"], rows),
            "click": click,
            "conversion": click * (rng.random(rows) < 0.5).astype("float32"),
        }
    ).batch(batch)  # 4 + 4 + 2: a smaller last batch


def test_predictions_match_the_model_and_keep_columns():
    model = _model()
    data = evaluate.predict_dataset(model, _dataset(), ["click", "city"])
    batch = next(iter(_dataset(rows=10, batch=10)))
    expected = model(batch)
    for name in ("ctr", "cvr", "ctcvr"):
        assert data[name].shape == (10,)
        np.testing.assert_allclose(data[name], expected[name].numpy()[:, 0], rtol=1e-6)
    np.testing.assert_array_equal(data["click"], batch["click"].numpy())
    assert list(data["city"]) == list(batch["city"].numpy())


def test_a_predictor_is_traced_once_for_repeated_evaluations():
    model = _model()
    model(next(iter(_dataset())))  # built (a first trace that builds runs twice)
    predictor = evaluate.Predictor(model)
    first = evaluate.predict_dataset(model, _dataset(), [], predictor)
    # Batches of 4, 4 and 2 rows with label columns: one trace of the
    # features for any batch size, as plain Python.
    assert predictor.step.tracing_count == 1
    assert not predictor.step.autograph
    for _ in range(3):
        again = evaluate.predict_dataset(model, _dataset(), [], predictor)
        report = evaluate.evaluate_model(model, _dataset(), predictor=predictor)
    # Another dataset of the same features with other columns: the same trace.
    features_only = _dataset().map(lambda batch: {"city": batch["city"]})
    evaluate.predict_dataset(model, features_only, [], predictor)
    assert predictor.step.tracing_count == 1
    assert set(report) == {"ctr", "cvr", "ctcvr"}
    for name, values in first.items():
        np.testing.assert_array_equal(again[name], values)


def test_a_backbone_that_needs_autograph_is_predicted_through_it():
    plain, branching = click_buy_ranker(), click_buy_ranker(branching_bottom_class())
    data = tf.data.Dataset.from_tensor_slices(click_buy_rows(10)).batch(4)
    batch = next(iter(data))
    for model in (plain, branching):
        model(batch)
    branching.set_weights(plain.get_weights())
    predictors = [evaluate.Predictor(model) for model in (plain, branching)]
    scored = [
        evaluate.predict_dataset(model, data, [], predictor)
        for model, predictor in zip((plain, branching), predictors, strict=True)
    ]
    assert [p.step.autograph for p in predictors] == [False, True]
    assert [p.step.tracing_count for p in predictors] == [1, 1]
    for name in ("click", "buy"):
        assert scored[1][name].shape == (10,)
        np.testing.assert_allclose(scored[1][name], scored[0][name], rtol=1e-6)


def test_the_gate_report_reads_the_features_of_every_batch_size():
    model = MultiTaskRanker(
        city_price_features(),
        MMoE(["click", "buy"], num_experts=2, expert_units=[4]),
        [Task("click", "click"), Task("buy", "buy")],
        tower_units=[4],
    )
    data = tf.data.Dataset.from_tensor_slices(click_buy_rows(10)).batch(4)
    report = evaluate.gate_report(model, data)
    weights = model.gate_weights(next(iter(data.unbatch().batch(10))))
    for name, entry in report.items():
        np.testing.assert_allclose(
            entry["mean_weight"], weights[name].numpy().mean(axis=0), rtol=1e-5
        )


def test_evaluation_keeps_no_module_level_state_alive():
    model = _model()
    evaluate.evaluate_model(model, _dataset())
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None


def test_evaluation_errors_are_plain_and_the_run_names_the_key():
    model = _model()
    with pytest.raises(
        evaluate.MissingColumnError,
        match="the group column 'nope' is not in the evaluation data",
    ):
        evaluate.evaluate_model(model, _dataset(), group="nope")
    report = evaluate.evaluate_model(model, _dataset())
    with pytest.raises(ValueError, match=r"'ctr.nope' is not in the evaluation report"):
        evaluate.selection_score(report, {"ctr.nope": 1.0})
    assert not issubclass(evaluate.MissingColumnError, ConfigError)
    # The training layer says it in the config's terms.
    config = RunConfig(eval=EvalConfig(gauc_group="nope"))
    with pytest.raises(ConfigError, match="^'eval.gauc_group': the group column"):
        evaluated(model, _dataset(), config)


def test_an_undefined_auc_is_reported_per_output_and_logged(caplog):
    clicks = np.array([1, 0, 1, 0, 1, 0], "float32")
    dataset = tf.data.Dataset.from_tensor_slices(
        {
            "city": np.array(["a", "b", "a", "b", "a", "c"]),
            "click": clicks,
            "conversion": np.zeros(6, "float32"),  # no conversion anywhere
        }
    ).batch(4)
    with caplog.at_level("WARNING", logger="mtrec.training.evaluate"):
        report = evaluate.evaluate_model(_model(), dataset)
    assert report["ctr"]["auc"] is not None and "auc_undefined" not in report["ctr"]
    assert report["cvr"]["auc"] is None
    assert report["cvr"]["auc_undefined"] == (
        "AUC undefined: label 'conversion' has no positives in the 3 rows where click=1"
    )
    assert report["ctcvr"]["auc_undefined"] == (
        "AUC undefined: label 'conversion' has no positives in the 6 rows"
    )
    assert "output 'cvr': AUC undefined" in caplog.text


def _encoded_rows(rows: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    age = rng.integers(0, 5, rows)
    price = rng.random(rows).astype("float32")
    click = (rng.random(rows) < 0.2 + 0.1 * age).astype("float32")
    return {"age": age, "price": price, "click": click}


def _encoded_ranker(predict_jit_compile: bool) -> MultiTaskRanker:
    return MultiTaskRanker(
        FeatureEmbedding(
            [
                {"name": "age", "dtype": "int64", "num_ids": 5, "embedding_dim": 2},
                {"name": "price", "kind": "dense", "normalization": "none"},
            ],
            dense_stats={"price": {"mean": 0.0, "std": 1.0, "boundaries": None}},
        ),
        MMoE(["ctr"], num_experts=2, expert_units=[4]),
        [Task("ctr", "click")],
        tower_units=[2],
        predict_jit_compile=predict_jit_compile,
    )


def test_a_model_that_predicts_through_xla_is_evaluated_through_it():
    tf.keras.utils.set_random_seed(0)
    compiled, plain = _encoded_ranker(True), _encoded_ranker(False)
    data = tf.data.Dataset.from_tensor_slices(_encoded_rows(10, 0)).batch(4)
    for model in (compiled, plain):
        model(next(iter(data)))
    plain.set_weights(compiled.get_weights())
    predictors = [evaluate.Predictor(model) for model in (compiled, plain)]
    assert [p.compiled for p in predictors] == [True, False]
    scored = [
        evaluate.predict_dataset(model, data, [], predictor)
        for model, predictor in zip((compiled, plain), predictors, strict=True)
    ]
    assert scored[0]["ctr"].shape == (10,)
    np.testing.assert_allclose(scored[0]["ctr"], scored[1]["ctr"], rtol=1e-5)
    # The input checks run outside the compiled part, with their errors.
    bad = {**_encoded_rows(3, 1), "age": np.array([0, 7, 1])}
    with pytest.raises(tf.errors.InvalidArgumentError, match="feature `age`"):
        predictors[0](bad)
