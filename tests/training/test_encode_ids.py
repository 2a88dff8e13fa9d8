"""``train.encode_ids``: categorical values encoded to table rows once, before
training; the same batches, weights and serving graph as raw training."""

import json

import numpy as np
import pytest
import tensorflow as tf
from test_native_training import Interrupt
from test_native_training import InterruptAtBatch
from test_native_training import _assert_same_weights
from test_native_training import _mid_epoch_config
from test_native_training import log_path  # noqa: F401  (a fixture)
from test_train import small_config

from mtrec.data.synthetic import generate_click_log
from mtrec.training import ConfigError
from mtrec.training import load_config
from mtrec.training import resume_run
from mtrec.training import train

ENCODED = ["user_id", "item_category", "position", "device"]


def test_encoded_training_resumed_mid_epoch_has_the_weights_of_raw_training(
    tmp_path,
    log_path,  # noqa: F811
):
    raw = train(_mid_epoch_config(tmp_path / "a", log_path))
    config = _mid_epoch_config(tmp_path / "b", log_path)
    config.train.encode_ids = True
    run_dir = tmp_path / "b" / "run"
    with pytest.raises(Interrupt):
        train(config, run_dir=run_dir, callbacks=[InterruptAtBatch(2, 7)])
    resumed = resume_run(run_dir)
    assert resumed.metrics["optimizer_steps"] == raw.metrics["optimizer_steps"]
    assert resumed.metrics["train"]["loss"] == raw.metrics["train"]["loss"]
    _assert_same_weights(raw.model, resumed.model)
    # Evaluated on raw held-out rows, as served.
    assert resumed.metrics["eval"] == raw.metrics["eval"]
    # The encoded train shards sit beside the raw ones, train part only.
    (manifest,) = (tmp_path / "b").rglob("encoded-*/manifest.json")
    written = json.loads(manifest.read_text())
    assert list(written["parts"]) == ["train"]
    columns = written["columns"]
    assert {f"{name}__row_ids" for name in ENCODED} <= set(columns)
    assert not set(ENCODED) & set(columns)
    assert columns["recent_categories"] == "string"  # multi-valued: raw tokens


def _frame_config(tmp_path, encode_ids: bool):
    raw = small_config(tmp_path, "unused.csv")
    raw["data"].pop("train")
    raw["train"].update({"batch_size": 256, "epochs": 2, "encode_ids": encode_ids})
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
