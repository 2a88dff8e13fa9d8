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
