"""The training loop: weights in metrics.json and TensorBoard, GAUC, selection,
early stopping, NaN errors, determinism, composite optimiser, resume."""

import json
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
import yaml
from test_train import small_config

from mtrec.data import write_table
from mtrec.data.synthetic import generate_click_log
from mtrec.features import FeatureEmbedding
from mtrec.layers import SharedBottom
from mtrec.metrics import group_auc
from mtrec.models import MultiTaskRanker
from mtrec.models import Task
from mtrec.training import ConfigError
from mtrec.training import datasets
from mtrec.training import eval_dataset
from mtrec.training import evaluate_model
from mtrec.training import load_config
from mtrec.training import prepare
from mtrec.training import restore_run
from mtrec.training import resume_run
from mtrec.training import train
from mtrec.training.callbacks import NonFiniteLossError
from mtrec.training.callbacks import NonFiniteLossGuard
from mtrec.training.evaluate import predict_dataset


@pytest.fixture(scope="module")
def log_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("pipeline") / "log.csv"
    write_table(generate_click_log(6_000, seed=5, num_users=300, num_items=400), path)
    return path


def _config(tmp_path, log_path, **train):
    config = small_config(tmp_path, log_path, export={"enabled": False})
    config["train"].update({"batch_size": 256, **train})
    return config


@pytest.fixture(scope="module")
def dwa_run(tmp_path_factory, log_path):
    tmp = tmp_path_factory.mktemp("dwa")
    config = _config(
        tmp,
        log_path,
        epochs=3,
        optimizer="composite",
        embedding_learning_rate=0.05,
        selection={"metric": {"ctr.auc": 0.5, "ctcvr.auc": 0.5}},
    )
    config["weighting"] = {"name": "dwa", "args": {"temperature": 1.5}}
    config["eval"]["gauc_group"] = "user_id"
    return train(load_config(config))


def test_weights_and_task_losses_are_logged_every_epoch(dwa_run):
    saved = json.loads((dwa_run.run_dir / "metrics.json").read_text())
    history = saved["train"]
    for out in ("ctr", "ctcvr"):
        assert len(history[f"weight_{out}"]) == 3
        assert len(history[f"{out}_loss"]) == 3
        assert len(history[f"val_{out}_auc"]) == 3
    # DWA: 1 for two epochs, then K·softmax of the loss ratios (sum K = 2).
    assert history["weight_ctr"][:2] == [1.0, 1.0]
    third = history["weight_ctr"][2] + history["weight_ctcvr"][2]
    assert third == pytest.approx(2.0, rel=1e-5)
    ratios = np.array(
        [history[f"{o}_loss"][1] / history[f"{o}_loss"][0] for o in ("ctr", "ctcvr")]
    )
    expected = 2 * np.exp(ratios / 1.5) / np.exp(ratios / 1.5).sum()
    assert history["weight_ctr"][2] == pytest.approx(expected[0], rel=1e-4)
    assert saved["weighting"] == "dwa"
    tags = set()
    for events in (dwa_run.run_dir / "tensorboard").rglob("events.out.tfevents*"):
        for record in tf.data.TFRecordDataset(str(events)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            tags |= {value.tag for value in event.summary.value}
    assert {"epoch_weight_ctr", "epoch_weight_ctcvr", "epoch_ctr_loss"} <= tags


def test_eval_reports_gauc_calibration_and_the_selected_epoch(dwa_run):
    ev = dwa_run.metrics["eval"]
    for out in ("ctr", "cvr", "ctcvr"):
        for key in ("auc", "gauc", "gauc_mean", "logloss", "calibration", "ece"):
            assert ev[out][key] is not None, (out, key)
        assert 0 < ev[out]["gauc_groups"] <= 300
    config = load_config(dwa_run.run_dir / "config.yaml")
    data = predict_dataset(dwa_run.model, eval_dataset(config), ["click", "user_id"])
    hand = group_auc(data["click"], data["ctr"], data["user_id"])
    assert ev["ctr"]["gauc"] == pytest.approx(hand["gauc"], abs=1e-6)
    selection = dwa_run.metrics["selection"]
    assert 1 <= selection["best_epoch"] <= 3
    history = dwa_run.metrics["train"]["val_selection"]
    assert selection["best"] == pytest.approx(max(history))
    assert type(dwa_run.model.optimizer).__name__ == "CompositeOptimizer"
    assert dwa_run.metrics["optimizer_steps"] == 3 * 19  # ceil(4.8k / 256) per epoch


def test_early_stopping_restores_the_best_epoch_and_gauc_by_a_passthrough_column(
    tmp_path, log_path, made_predictors
):
    # "max" of the log loss: epoch 1 stays the best while training lowers it.
    config = _config(
        tmp_path,
        log_path,
        epochs=6,
        learning_rate=0.02,
        selection={"metric": "ctr.logloss", "mode": "max", "patience": 1},
    )
    config["eval"]["gauc_group"] = "item_id"  # not a feature: read as passthrough
    result = train(load_config(config))
    # One prediction function, traced once, scored both epochs' selection rows
    # and the eval rows.
    assert [p.step.tracing_count for p in made_predictors] == [1]
    history = result.metrics["train"]
    assert result.metrics["epochs_trained"] == 2
    assert result.metrics["selection"]["stopped_early"]
    assert result.metrics["selection"]["best_epoch"] == 1
    assert result.metrics["selection"]["best"] == history["val_ctr_logloss"][0]
    # The weights evaluated at the end are epoch 1's: they score the selection
    # rows (data.validation_fraction of the log) as epoch 1 did.
    selection_rows = datasets(prepare(result_config := load_config(config))).selection
    again = evaluate_model(result.model, selection_rows, result_config.eval.oracle)
    assert again["ctr"]["logloss"] == pytest.approx(
        history["val_ctr_logloss"][0], rel=1e-6
    )
    # ... and the final evaluation, by the same function, saw them too.
    held_out = evaluate_model(
        result.model, datasets(prepare(result_config)).eval, result_config.eval.oracle
    )
    for output in ("ctr", "ctcvr"):
        for key in ("logloss", "auc"):
            assert result.metrics["eval"][output][key] == pytest.approx(
                held_out[output][key], rel=1e-6
            ), (output, key)
    assert result.metrics["eval"]["ctr"]["gauc_groups"] > 0
    restored = restore_run(result.run_dir)  # export_run uses the best epoch too
    batch = {k: tf.constant(v) for k, v in _rows(log_path).items()}
    np.testing.assert_allclose(
        restored.model(batch)["ctr"].numpy(),
        result.model(batch)["ctr"].numpy(),
        atol=1e-6,
    )


def _rows(log_path, n=8):
    import pandas as pd

    df = pd.read_csv(log_path, nrows=n)
    return {
        "user_id": df["user_id"].to_numpy(),
        "item_category": df["item_category"].astype(str).to_numpy(),
        "recent_categories": df["recent_categories"].fillna("").astype(str).to_numpy(),
        "position": df["position"].to_numpy(),
        "device": df["device"].astype(str).to_numpy(),
        "item_price": df["item_price"].to_numpy(np.float32),
        "item_hist_ctr": df["item_hist_ctr"].to_numpy(np.float32),
    }


def test_config_errors_name_the_key(tmp_path, log_path):
    config = _config(tmp_path, log_path)
    with pytest.raises(ConfigError, match=r"'train.selection.metric' terms must"):
        load_config(config, ["train.selection.metric=auc"])
    with pytest.raises(ConfigError, match=r"'train.selection.mode' must be one of"):
        load_config(config, ["train.selection.mode=up"])
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['weighting.nme'\]"):
        load_config(config, ["weighting.nme=dwa"])
    with pytest.raises(ConfigError, match="'weighting.name': unknown loss weighting"):
        train(load_config(config, ["weighting.name=magic"]))
    with pytest.raises(ConfigError, match="'weighting.args' for 'dwa'"):
        train(load_config(config, ["weighting.name=dwa", "weighting.args={t: 1}"]))
    with pytest.raises(ConfigError, match="'train.embedding_optimizer'"):
        train(
            load_config(
                config, ["train.optimizer=composite", "train.embedding_optimizer=x"]
            )
        )


def test_non_finite_loss_stops_training_naming_the_task():
    features = FeatureEmbedding(
        [{"name": "city", "kind": "categorical", "embedding_dim": 2}],
        vocabularies={"city": ["a", "b"]},
    )
    tasks = [Task("ctr", "click"), Task("dwell", "dwell", kind="regression")]
    model = MultiTaskRanker(
        features, SharedBottom(["ctr", "dwell"], units=[4]), tasks, tower_units=[2]
    )
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01))
    data = {
        "city": np.array(["a", "b"] * 32),
        "click": np.ones(64, np.float32),
        "dwell": np.full(64, 1e30, np.float32),  # its square overflows float32
    }
    ds = tf.data.Dataset.from_tensor_slices(data).batch(16)
    with pytest.raises(NonFiniteLossError, match=r"task 'dwell'.*epoch 1, batch 1"):
        model.fit(
            ds, epochs=1, verbose=0, callbacks=[NonFiniteLossGuard(["ctr", "dwell"])]
        )


@pytest.mark.slow
def test_two_runs_with_the_same_seed_give_identical_metrics(tmp_path, log_path):
    runs = []
    for i in range(2):
        config = _config(tmp_path / str(i), log_path, epochs=2, steps_per_epoch=6)
        config["weighting"] = {"name": "rlw"}  # random weights, seeded
        config["eval"]["gauc_group"] = "user_id"
        runs.append(train(load_config(config)).metrics)
    assert runs[0]["eval"] == runs[1]["eval"]
    assert runs[0]["train"] == runs[1]["train"]


CHILD = """
import json, pathlib, sys, time
import mtrec  # noqa: F401
import tensorflow as tf
from mtrec.training import load_config, train

config_path, run_dir, marker = sys.argv[1:4]
state = pathlib.Path(run_dir) / "training_state.json"


class HangInSecondEpoch(tf.keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 2 and json.loads(state.read_text())["epochs_done"] == 1:
            pathlib.Path(marker).write_text("in epoch 2")
            time.sleep(600)


train(load_config(config_path), run_dir=run_dir, callbacks=[HangInSecondEpoch()])
"""


@pytest.mark.slow
def test_resume_after_the_process_is_killed_mid_epoch(tmp_path, log_path):
    config = _config(tmp_path, log_path, epochs=3, steps_per_epoch=5)
    config["weighting"] = {"name": "gradnorm"}  # learnable weights are restored too
    config_path, run_dir, marker = (
        tmp_path / "config.yaml",
        tmp_path / "run",
        tmp_path / "marker",
    )
    config_path.write_text(yaml.safe_dump(config))
    (tmp_path / "child.py").write_text(CHILD)
    child = subprocess.Popen(
        [
            sys.executable,
            str(tmp_path / "child.py"),
            str(config_path),
            str(run_dir),
            str(marker),
        ],
        cwd=pathlib.Path(__file__).resolve().parents[2],
    )
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            assert child.poll() is None, f"training exited early ({child.returncode})"
            assert time.monotonic() < deadline, "training never reached epoch 2"
            time.sleep(0.2)
    finally:
        child.kill()
        child.wait()
    state = json.loads((run_dir / "training_state.json").read_text())
    assert state["epochs_done"] == 1 and state["iterations"] == 5
    assert not (run_dir / "metrics.json").exists()
    killed = tf.train.load_checkpoint(str(run_dir / "checkpoints" / "ckpt-1"))
    weights_key = next(
        k
        for k in killed.get_variable_to_shape_map()
        if "loss_weights" in k and "OPTIMIZER" not in k and k.startswith("model/")
    )
    result = resume_run(run_dir)
    assert result.metrics["epochs_trained"] == 3
    assert result.metrics["optimizer_steps"] == 15  # 5 + 10: the count continued
    assert len(result.metrics["train"]["loss"]) == 3
    assert len(result.metrics["train"]["weight_ctr"]) == 3
    assert killed.get_tensor(weights_key).sum() == pytest.approx(2.0, rel=1e-5)
    assert result.metrics["eval"]["ctr"]["auc"] is not None
