"""Models built under ``model.precision: mixed_bfloat16`` (``mtrec.precision``)."""

import numpy as np
import pytest
import tensorflow as tf

from mtrec import precision_scope
from mtrec.export import export_saved_model
from mtrec.metrics import auc
from mtrec.precision import check_precision
from mtrec.training import build_model
from mtrec.training import datasets
from mtrec.training import fit
from mtrec.training import load_config
from mtrec.training import prepare

ROWS = 1200


def _rows(seed=0, n=ROWS):
    rng = np.random.default_rng(seed)
    city = rng.choice(["a", "b", "c", "d"], n)
    price = rng.lognormal(size=n).astype(np.float32)
    tags = np.array(["|".join(rng.choice(list("xyz"), 2)) for _ in range(n)])
    signal = (city == "a") * 2.0 + 2.0 * np.log1p(price) - 2.0
    click = (rng.random(n) < 1 / (1 + np.exp(-signal))).astype(np.int64)
    conversion = click * (rng.random(n) < 0.4)
    return {
        "city": city,
        "price": price,
        "tags": tags,
        "category": rng.choice(list("xyz"), n),
        "click": click,
        "conversion": conversion.astype(np.int64),
    }


def _config(backbone, backbone_args, architecture="multi_task", precision=None):
    model = {
        "architecture": architecture,
        "backbone": backbone,
        "backbone_args": backbone_args,
        "tower_units": [4],
        "cross_layers": 1,
    }
    if precision is not None:
        model["precision"] = precision
    tasks = [{"name": "ctr", "label": "click"}]
    tasks.append({"name": "cvr", "label": "conversion", "condition": "click"})
    return load_config(
        {
            "features": [
                {"name": "city", "kind": "categorical", "embedding_dim": 4},
                {"name": "price", "kind": "dense", "log1p": True},
                {
                    "name": "category",
                    "kind": "categorical",
                    "embedding_dim": 4,
                    "table": "tag",
                },
                {
                    "name": "tags",
                    "kind": "multi_valued",
                    "embedding_dim": 4,
                    "table": "tag",
                    "query": "category",
                    "query_match": True,
                },
            ],
            "tasks": tasks,
            "model": model,
            "train": {"epochs": 2, "batch_size": 256, "learning_rate": 0.01},
        },
        in_memory=True,
    )


BACKBONES = [
    ("shared_bottom", {"units": [8]}, "multi_task"),
    ("mmoe", {"num_experts": 2, "expert_units": [8]}, "multi_task"),
    ("omoe", {"num_experts": 2, "expert_units": [8]}, "esmm"),
    ("cgc", {"num_shared_experts": 1, "num_task_experts": 1, "expert_units": [8]},
     "multi_task"),
    ("ple", {"num_levels": 2, "num_shared_experts": 1, "num_task_experts": 1,
             "expert_units": [8]}, "esmm"),
]  # fmt: skip


@pytest.mark.parametrize(("backbone", "args", "architecture"), BACKBONES)
def test_bfloat16_model_computes_in_bfloat16_and_outputs_float32(
    backbone, args, architecture, tmp_path
):
    rows = _rows()
    config = _config(backbone, args, architecture, precision="mixed_bfloat16")
    prepared = prepare(config, train=rows, eval=_rows(1))
    model = build_model(prepared)
    assert model.feature_layer.compute_dtype == "bfloat16"
    assert model.backbone.compute_dtype == "bfloat16"
    assert model.weighting.compute_dtype == "float32"
    assert {t.compute_dtype for t in model.ranking_tasks.values()} == {"float32"}
    assert {v.dtype for v in model.trainable_variables} == {tf.float32}
    assert model.feature_layer(rows).dtype == tf.bfloat16
    outputs = model(rows)
    assert {o.dtype for o in outputs.values()} == {tf.float32}
    # The global policy is restored after the build.
    assert tf.keras.mixed_precision.global_policy().name == "float32"

    fit(model, datasets(prepared), config, tmp_path)
    probabilities = model.predict(rows, verbose=0)
    for name, p in probabilities.items():
        assert p.dtype == np.float32, name
        assert np.all((p >= 0) & (p <= 1)), name
    # The same weights in a float32 model: the bfloat16 rounding of the
    # activations moves a probability by well under 0.05.
    float_config = _config(backbone, args, architecture)
    reference = build_model(prepare(float_config, train=rows))
    reference.set_weights(model.get_weights())
    expected = reference.predict(rows, verbose=0)
    for name in probabilities:
        difference = np.abs(probabilities[name] - expected[name])
        assert difference.max() < 0.05, (name, difference.max())
        assert difference.mean() < 0.01, (name, difference.mean())
        assert difference.max() > 0, name  # bfloat16 did compute something


def test_bfloat16_model_exports_a_float32_signature_equal_to_predict(tmp_path):
    rows = _rows()
    config = _config("mmoe", BACKBONES[1][1], precision="mixed_bfloat16")
    prepared = prepare(config, train=rows)
    model = build_model(prepared)
    fit(model, datasets(prepared), config, tmp_path / "run")
    path = export_saved_model(model, prepared.feature_set, tmp_path / "base")
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    features = {
        name: tf.constant(rows[name], prepared.feature_set.input_dtype(name))
        for name in prepared.feature_set.names
    }
    got = serve(**features)
    expected = model.predict(features, verbose=0)
    assert set(got) == {"ctr", "cvr"}
    for name, value in got.items():
        assert value.dtype == tf.float32
        np.testing.assert_allclose(value.numpy(), expected[name][:, 0], atol=1e-6)


def test_bfloat16_training_learns_like_float32(tmp_path):
    rows, held_out = _rows(n=8000), _rows(2, n=4000)
    aucs = {}
    for precision in ("float32", "mixed_bfloat16"):
        config = _config("mmoe", BACKBONES[1][1], precision=precision)
        prepared = prepare(config, train=rows)
        model = build_model(prepared)
        fit(model, datasets(prepared), config, tmp_path / precision)
        p = model.predict(held_out, verbose=0)["ctr"].reshape(-1)
        aucs[precision] = auc(held_out["click"], p)
    signal = (held_out["city"] == "a") * 2.0 + 2.0 * np.log1p(held_out["price"])
    oracle = auc(held_out["click"], signal)
    assert aucs["float32"] > oracle - 0.02, (aucs, oracle)
    assert abs(aucs["mixed_bfloat16"] - aucs["float32"]) < 0.01, (aucs, oracle)


def test_dense_inputs_are_transformed_in_float32_under_bfloat16():
    # 1000.3 in bfloat16 is 1000.0: the z-score must see the float32 value.
    from mtrec.features import FeatureEmbedding

    with precision_scope("mixed_bfloat16"):
        layer = FeatureEmbedding(
            [{"name": "price", "kind": "dense"}],
            dense_stats={"price": {"mean": 1000.0, "std": 0.1, "boundaries": None}},
        )
    out = layer({"price": tf.constant([1000.3, 1000.0])})
    assert out.dtype == tf.bfloat16
    np.testing.assert_allclose(
        out.numpy().astype(np.float32)[:, 0], [3.0, 0.0], atol=0.02
    )


def test_precision_scope_restores_the_policy_after_an_error():
    with pytest.raises(RuntimeError, match="boom"):
        with precision_scope("mixed_bfloat16"):
            assert tf.keras.mixed_precision.global_policy().name == "mixed_bfloat16"
            raise RuntimeError("boom")
    assert tf.keras.mixed_precision.global_policy().name == "float32"


def test_unknown_precision_is_refused():
    with pytest.raises(
        ValueError,
        match=r"`precision` must be one of \['float32', 'mixed_bfloat16'\]\. "
        r"Received: `precision='float16'`",
    ):
        check_precision("float16")
    with pytest.raises(ValueError, match="precision='bf16'"):
        with precision_scope("bf16"):
            pass  # pragma: no cover
