"""``train.encode_ids``: categorical values encoded to table rows once, before
training; the same batches, weights and serving graph as raw training (from
files and resumed mid-epoch: ``test_native_training.py``)."""

import numpy as np
import pytest
import tensorflow as tf
from test_native_training import _assert_same_weights
from test_train import small_config

from mtrec.data.synthetic import generate_click_log
from mtrec.training import ConfigError
from mtrec.training import load_config
from mtrec.training import train


def _frame_config(tmp_path, encode_ids: bool):
    raw = small_config(tmp_path, "unused.csv")
    raw["data"].pop("train")
    raw["train"].update({"batch_size": 256, "epochs": 1, "encode_ids": encode_ids})
    return load_config(raw, in_memory=True)


def test_in_memory_encoded_training_exports_a_model_that_serves_raw_values(
    tmp_path,
):
    frame = generate_click_log(3_000, seed=5, num_users=200, num_items=300)
    runs = [
        train(_frame_config(tmp_path / str(flag), flag), train_rows=frame)
        for flag in (False, True)
    ]
    raw, encoded = runs
    _assert_same_weights(raw.model, encoded.model)
    assert encoded.metrics["eval"] == raw.metrics["eval"]
    serve = tf.saved_model.load(str(encoded.export_path)).signatures["serving_default"]
    inputs = serve.structured_input_signature[1]
    assert set(inputs) == {
        "user_id",
        "item_category",
        "recent_categories",
        "position",
        "device",
        "item_price",
        "item_hist_ctr",
    }
    rows = frame.iloc[:64]
    batch = {
        name: tf.constant(
            rows[name].to_numpy().astype(str)
            if spec.dtype == tf.string
            else rows[name].to_numpy(),
            dtype=spec.dtype,
        )
        for name, spec in inputs.items()
    }
    served = serve(**batch)
    direct = raw.model(batch)
    for name in ("ctr", "cvr", "ctcvr"):
        np.testing.assert_allclose(
            served[name].numpy(), direct[name].numpy()[:, 0], atol=1e-6
        )


def test_a_non_bool_encode_ids_names_the_key(tmp_path):
    raw = small_config(tmp_path, "log.csv")
    raw["train"]["encode_ids"] = "yes"
    with pytest.raises(ConfigError, match=r"'train.encode_ids' must be bool"):
        load_config(raw)


def _xla_config(tmp_path, jit_compile: bool, features=None, **train_options):
    """The click-log config in memory, with ids encoded before training."""
    raw = small_config(tmp_path, "unused.csv")
    raw["data"].pop("train")
    if features is not None:
        raw["features"] = features
    raw["train"].update(
        {
            "batch_size": 256,
            "epochs": 1,
            "encode_ids": True,
            "jit_compile": jit_compile,
            **train_options,
        }
    )
    return load_config(raw, in_memory=True)


def _single_valued(tmp_path):
    """The click-log features without the multi-valued one."""
    raw = small_config(tmp_path, "unused.csv")
    return [f for f in raw["features"] if f["kind"] != "multi_valued"]


def test_encoded_ids_let_the_train_step_compile_with_xla(tmp_path):
    """With ``train.encode_ids`` the vocabulary and hashed features reach the
    train step as table rows, so ``train.jit_compile`` compiles it (Keras'
    must-compile: any op XLA cannot compile fails the run). XLA changes only
    the rounding: the same weights and metrics as the uncompiled step."""
    frame = generate_click_log(3_000, seed=5, num_users=200, num_items=300)
    features = _single_valued(tmp_path)
    plain, compiled = (
        train(_xla_config(tmp_path / str(flag), flag, features), train_rows=frame)
        for flag in (False, True)
    )
    assert (plain.model.jit_compile, compiled.model.jit_compile) == (False, True)
    for a, b in zip(plain.model.weights, compiled.model.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4, err_msg=a.name)
    for task in ("ctr", "cvr", "ctcvr"):
        assert compiled.metrics["eval"][task]["auc"] == pytest.approx(
            plain.metrics["eval"][task]["auc"], abs=1e-4
        )


def _config_error(raw: dict) -> str:
    """The message of the ``ConfigError`` that ``train`` raises on ``raw``."""
    with pytest.raises(ConfigError) as caught:
        train(load_config(raw))
    return str(caught.value)


def test_xla_training_without_encoded_ids_names_the_lookups_and_the_fix(tmp_path):
    raw = small_config(tmp_path, "log.csv")
    raw["features"] = _single_valued(tmp_path)
    raw["train"]["jit_compile"] = True
    assert _config_error(raw) == (
        "'train.jit_compile: true' needs features XLA can compile: every "
        "categorical feature single-valued with encoded ids (`num_ids`), no "
        "vocabulary, hashing or token splitting. Features ['user_id', "
        "'item_category', 'position', 'device'] need a lookup or a string op "
        "(or set 'train.encode_ids: true': the single-valued ones are then "
        "encoded before training)"
    )


def test_xla_training_with_a_multi_valued_feature_is_refused_before_reading(
    tmp_path,
):
    """``encode_ids`` leaves a multi-valued feature's tokens raw; its string
    splitting stays in the train step. ``data.train`` names no file: the
    check comes before any data is read."""
    raw = small_config(tmp_path, tmp_path / "missing.csv")
    raw["train"].update({"jit_compile": True, "encode_ids": True})
    assert _config_error(raw) == (
        "'train.jit_compile: true' needs a training step XLA can compile; "
        "'train.encode_ids: true' encodes the single-valued categorical "
        "features before training, not a multi-valued feature or its query. "
        "Features ['recent_categories'] need a lookup or a string op in the "
        "training step"
    )


def test_encoded_ids_do_not_make_prediction_compilable(tmp_path):
    """``model.predict_jit_compile`` compiles the model on raw values, as
    served: encoding the training rows does not help it."""
    raw = small_config(tmp_path, tmp_path / "missing.csv")
    raw["features"] = _single_valued(tmp_path)
    raw["train"]["encode_ids"] = True
    raw["model"]["predict_jit_compile"] = True
    message = _config_error(raw)
    assert message.startswith(
        "'model.predict_jit_compile: true' needs features XLA can compile"
    )
    assert message.endswith(
        "Features ['user_id', 'item_category', 'position', 'device'] need a "
        "lookup or a string op"
    )
