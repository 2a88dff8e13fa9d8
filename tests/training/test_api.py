"""The composable training API: prepare, build_model, datasets, fit, TrainingState."""

import json

import numpy as np
import pytest
import tensorflow as tf
import yaml
from test_train import small_config

from mtrec.data import DataError
from mtrec.data import write_table
from mtrec.data.reader import Split
from mtrec.data.synthetic import generate_click_log
from mtrec.metrics import auc
from mtrec.training import ConfigError
from mtrec.training import MemorySource
from mtrec.training import SelectionState
from mtrec.training import TrainingState
from mtrec.training import build_model
from mtrec.training import datasets
from mtrec.training import evaluate_model
from mtrec.training import fit
from mtrec.training import load_config
from mtrec.training import prepare
from mtrec.training import warmup_rows
from mtrec.training.callbacks import EpochLossGuard
from mtrec.training.callbacks import NonFiniteLossError


@pytest.fixture(scope="module")
def frame():
    return generate_click_log(3_000, seed=5, num_users=200, num_items=300)


def _config(tmp_path, data_path="", **train):
    raw = small_config(tmp_path, data_path or "unused.csv", export={"enabled": False})
    raw["train"].update({"batch_size": 256, "epochs": 1, **train})
    if not data_path:
        raw["data"].pop("train")
    return load_config(raw, in_memory=not data_path)


def _raw_batch(frame, rows: int = 5) -> dict[str, tf.Tensor]:
    """The first ``rows`` of the click log as the model's raw inputs."""
    batch = {
        n: tf.constant(frame[n].to_numpy()[:rows]) for n in ("user_id", "position")
    }
    batch |= {
        n: tf.constant(frame[n].astype(str).to_numpy()[:rows])
        for n in ("item_category", "recent_categories", "device")
    }
    batch |= {
        n: tf.constant(frame[n].to_numpy(np.float32)[:rows])
        for n in ("item_price", "item_hist_ctr")
    }
    return batch


def _weights(model) -> dict[str, np.ndarray]:
    return {v.name: v.numpy() for v in model.variables}


def test_in_memory_pandas_and_numpy_run_end_to_end(tmp_path, frame):
    config = _config(tmp_path)
    prepared = prepare(config, train=frame)
    assert isinstance(prepared.source, MemorySource)
    # 20% held out by the hash split a single file gets.
    expected = Split("train", 0.2, config.seed).mask(0, np.arange(len(frame)))
    assert prepared.train_rows == int(expected.sum())
    np.testing.assert_array_equal(
        prepared.source.train["user_id"], frame["user_id"].to_numpy()[expected]
    )
    model = build_model(prepared, config)
    data = datasets(prepared, config)
    state = fit(model, data, config, tmp_path / "run")
    assert state.epochs_done == 1
    assert state.optimizer_steps == -(-prepared.train_rows // 256)
    assert TrainingState.load(tmp_path / "run" / "training_state.json") == state
    report = evaluate_model(model, data.eval, config.eval.oracle)
    # The held-out rows less those kept for selection (data.validation_fraction).
    selection_rows = len(prepared.source.selection["click"])
    assert 0 < selection_rows < len(frame) - prepared.train_rows
    assert report["ctr"]["rows"] == len(frame) - prepared.train_rows - selection_rows
    # The eval dataset is the held-out rows in order. The report's scores come
    # from another graph (``predict``), whose rounding may differ in the last
    # bit: a tie there can become an ordered pair here, so allow one pair.
    held_out = prepared.source.eval
    inputs = {name: tf.constant(held_out[name]) for name in prepared.feature_set.names}
    scores = model(inputs, training=False)["ctr"].numpy().reshape(-1)
    positives = int(held_out["click"].sum())
    one_pair = 1 / (positives * (len(scores) - positives))
    assert report["ctr"]["auc"] == pytest.approx(
        auc(held_out["click"], scores), abs=one_pair
    )

    columns = {name: frame[name].to_numpy() for name in frame.columns}
    from_numpy = prepare(config, train=columns)
    assert from_numpy.train_rows == prepared.train_rows
    assert from_numpy.preprocessing == prepared.preprocessing


def test_in_memory_eval_table_is_used_whole(tmp_path, frame):
    config = _config(tmp_path)
    prepared = prepare(config, train=frame.iloc[:2000], eval=frame.iloc[2000:])
    assert len(prepared.source.eval["click"]) == 1000
    # Selection's rows (data.validation_fraction) come out of the train table.
    expected = Split("validation", 0.05, config.seed, validation_fraction=0.05)
    held = int(expected.mask(0, np.arange(2000)).sum())
    assert len(prepared.source.selection["click"]) == held > 0
    assert prepared.train_rows == 2000 - held


def test_a_bad_in_memory_value_is_named_by_table_row_and_column(tmp_path, frame):
    config = _config(tmp_path)
    bad = frame.copy()
    bad["item_price"] = bad["item_price"].astype(object)
    bad.loc[7, "item_price"] = "abc"
    with pytest.raises(
        DataError,
        match=r"^in-memory table `train`, row 7, column 'item_price': "
        r"expected a number, got 'abc'$",
    ):
        prepare(config, train=bad)
    columns = {name: frame[name].to_numpy() for name in frame.columns}
    columns["click"] = columns["click"].copy()
    columns["click"][11] = 2
    with pytest.raises(
        DataError, match=r"in-memory table `train`, row 11, column 'click': label"
    ):
        prepare(config, train=columns)
    with pytest.raises(DataError, match=r"in-memory table `eval`.*'device'"):
        prepare(config, train=frame, eval=frame.drop(columns=["device"]))
    with pytest.raises(ValueError, match=r"column 'click': must be 1-D"):
        prepare(config, train={**columns, "click": np.zeros((3000, 2))})
    with pytest.raises(TypeError, match=r"must be a pandas DataFrame"):
        prepare(config, train=[1, 2, 3])


def test_fit_on_memory_equals_fit_on_the_same_rows_from_csv(tmp_path, frame):
    path = tmp_path / "log.csv"
    write_table(frame, path)
    models = []
    for name, data_path, rows in (("csv", path, None), ("memory", "", frame)):
        config = _config(tmp_path / name, data_path, epochs=2)
        config.data.shuffle = False
        prepared = prepare(config, train=rows)
        model = build_model(prepared, config)
        fit(model, datasets(prepared, config), config, tmp_path / name / "run")
        models.append(_weights(model))
    csv, memory = models
    assert csv.keys() == memory.keys()
    for key in csv:
        np.testing.assert_array_equal(csv[key], memory[key], err_msg=key)


def test_steps_per_execution_gives_the_same_weights(tmp_path, frame):
    runs = []
    for steps in (1, 4):
        config = _config(tmp_path / str(steps), steps_per_execution=steps, epochs=2)
        prepared = prepare(config, train=frame)
        model = build_model(prepared, config)
        state = fit(model, datasets(prepared, config), config, tmp_path / str(steps))
        runs.append((state, _weights(model)))
    (one, weights_one), (four, weights_four) = runs
    assert one.optimizer_steps == four.optimizer_steps == 2 * 10  # ceil(2.4k/256)
    for key in weights_one:
        np.testing.assert_array_equal(weights_one[key], weights_four[key], err_msg=key)
    assert one.history["loss"] == four.history["loss"]


def test_training_state_json_round_trip_and_old_files(tmp_path):
    state = TrainingState(
        epochs_done=2,
        optimizer_steps=38,
        train_rows=4800,
        train_rows_dropped=3,
        history={"loss": [0.5, 0.25], "val_ctr_auc": [0.7, 0.75]},
        selection=SelectionState(best=0.75, best_epoch=2, wait=0),
        checkpoint="ckpt-2",
        finished=True,
    )
    path = tmp_path / "training_state.json"
    state.save(path)
    saved = json.loads(path.read_text())
    assert saved["iterations"] == 38 and saved["selection"]["best_epoch"] == 2
    assert TrainingState.load(path) == state
    # What train() wrote before TrainingState: a fresh run, then after epoch 1.
    path.write_text(json.dumps({"epochs_done": 0, "train_rows": 9, "history": {}}))
    assert TrainingState.load(path) == TrainingState(train_rows=9)
    old = {
        "epochs_done": 1,
        "train_rows": 9,
        "train_rows_dropped": 0,
        "history": {"loss": [0.5]},
        "checkpoint": "ckpt-1",
        "iterations": 5,
        "selection": {"best": 0.7, "best_epoch": 1, "wait": 0, "stopped_early": False},
    }
    path.write_text(json.dumps(old))
    loaded = TrainingState.load(path)
    assert loaded.optimizer_steps == 5 and loaded.selection.best == 0.7
    assert loaded.to_dict() == {**old, "finished": False}


@pytest.mark.parametrize(
    "content, message",
    [
        ("{", r"not valid JSON \(line 1, column 2"),
        ('{"epochs_done": 1, "steps": 3}', r"unknown key\(s\) \['steps'\]"),
        ('{"epochs_done": "1"}', r"'epochs_done' must be int. Received: '1'"),
        ('{"train_rows": 3}', r"missing key 'epochs_done'"),
        ('{"epochs_done": 1, "history": {"loss": ["x"]}}', r"'history.loss' must"),
    ],
)
def test_a_bad_training_state_file_is_named(tmp_path, content, message):
    path = tmp_path / "training_state.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=rf"{tmp_path}.*{message}"):
        TrainingState.load(path)


@pytest.mark.parametrize(
    "data, message",
    [
        ([1], "w: expected a JSON object, got list"),
        ({"epochs_done": True}, "w: 'epochs_done' must be int. Received: True"),
        (
            {"epochs_done": 1, "selection": {"best": 0.5, "waits": 1, "bst": 2}},
            "w: unknown key(s) ['selection.bst', 'selection.waits']",
        ),
        (
            {"epochs_done": 1, "mid_epoch": {"batches": 3}},
            "w: 'mid_epoch' must have the keys ['batches', 'checkpoint', "
            "'optimizer_steps']. Received: ['batches']",
        ),
    ],
)
def test_a_bad_training_state_names_the_nested_key(data, message):
    with pytest.raises(ConfigError) as err:
        TrainingState.from_dict(data, where="w")
    assert str(err.value) == message


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.steps_per_execution=0", r"'train.steps_per_execution' must be an int"),
        ("train.steps_per_execution=2.5", r"'train.steps_per_execution' must be int"),
        ("train.jit_compile=fast", r"'train.jit_compile' must be bool"),
        ("train.training_metrics=1", r"'train.training_metrics' must be bool"),
        ("train.tensorboard_update_freq=batch", r"'epoch' or an int >= 1"),
        ("train.tensorboard_update_freq=0", r"'epoch' or an int >= 1"),
        ("data.shuffle=maybe", r"'data.shuffle' must be bool"),
    ],
)
def test_loop_option_errors_name_the_key(tmp_path, override, message):
    raw = small_config(tmp_path, "log.csv")
    with pytest.raises(ConfigError, match=message):
        load_config(raw, [override])


def test_prepare_validates_a_config_changed_in_python(tmp_path, frame):
    config = _config(tmp_path)
    config.train.steps_per_execution = 0
    with pytest.raises(ConfigError, match="'train.steps_per_execution'"):
        prepare(config, train=frame)
    with pytest.raises(ConfigError, match="'data.train' must name"):
        prepare(_config(tmp_path))


def test_prepare_needs_train_rows_for_eval_rows(tmp_path, frame):
    with pytest.raises(
        ValueError, match=r"^`eval` rows need `train` rows; got `eval` alone$"
    ):
        prepare(_config(tmp_path), eval=frame)


class _Batches(tf.keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen = []

    def on_train_batch_end(self, batch, logs=None):
        self.seen.append(batch)


def test_steps_per_execution_reaches_compile(tmp_path, frame):
    config = _config(tmp_path, steps_per_execution=3)
    prepared = prepare(config, train=frame)
    model = build_model(prepared, config)
    batches = _Batches()
    fit(model, datasets(prepared, config), config, tmp_path / "run", None, [batches])
    # 10 steps run 3 at a time: batch hooks see the last batch of each call.
    assert batches.seen == [2, 5, 8, 9]


def test_epoch_loss_guard_checks_once_per_epoch():
    assert (
        EpochLossGuard.on_train_batch_end
        is tf.keras.callbacks.Callback.on_train_batch_end
    )
    guard = EpochLossGuard(["ctr", "dwell"])
    guard.on_epoch_end(0, {"ctr_loss": 0.3, "dwell_loss": 1.0, "loss": 1.3})
    with pytest.raises(NonFiniteLossError, match=r"task 'dwell'.*end of epoch 3"):
        guard.on_epoch_end(2, {"ctr_loss": 0.3, "dwell_loss": float("nan")})
    with pytest.raises(NonFiniteLossError, match=r"weighted total loss \(inf"):
        guard.on_epoch_end(0, {"ctr_loss": 0.3, "loss": float("inf")})


def test_warmup_rows_are_the_first_rows_of_the_eval_split(tmp_path, frame):
    path = tmp_path / "log.csv"
    write_table(frame, path)
    config = _config(tmp_path, path)
    rows = warmup_rows(config, num_rows=20)
    split = Split("eval", 0.2, config.seed, validation_fraction=0.05)
    expected = np.flatnonzero(split.mask(0, np.arange(3000)))
    np.testing.assert_array_equal(rows["user_id"], frame["user_id"][expected[:20]])
    assert sorted(rows) == sorted(f["name"] for f in config.features)
    config.data.train = str(tmp_path / "moved.csv")
    assert warmup_rows(config) is None


def test_prepare_then_fit_matches_what_train_writes(tmp_path, frame):
    """train() with in-memory rows is the same composition."""
    from mtrec.training import export_run
    from mtrec.training import restore_run
    from mtrec.training import resume_run
    from mtrec.training import train

    config = _config(tmp_path)
    result = train(config, tmp_path / "run", train_rows=frame)
    state = TrainingState.load(tmp_path / "run" / "training_state.json")
    assert state.finished and state.epochs_done == 1
    assert result.metrics["optimizer_steps"] == state.optimizer_steps
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["train_rows"] == state.train_rows == result.metrics["train_rows"]
    # The run directory alone restores and re-exports it (no data is read) ...
    restored = restore_run(tmp_path / "run")
    batch = _raw_batch(frame)
    np.testing.assert_array_equal(
        restored.model(batch)["ctr"].numpy(), result.model(batch)["ctr"].numpy()
    )
    assert (
        export_run(tmp_path / "run", tmp_path / "exports") / "saved_model.pb"
    ).is_file()
    # ... but resuming needs the tables again.
    with pytest.raises(ConfigError, match="trained on in-memory tables"):
        resume_run(tmp_path / "run")


def test_a_run_from_before_embedding_order_restores_in_feature_order(tmp_path, frame):
    from mtrec.training import restore_run
    from mtrec.training import train

    assert _config(tmp_path).model.embedding_order == "grouped"
    config = _config(tmp_path)
    config.model.embedding_order = "features"  # the layout of older runs
    result = train(config, tmp_path / "run", train_rows=frame)
    path = tmp_path / "run" / "config.yaml"
    written = yaml.safe_load(path.read_text())
    assert written["model"]["embedding_order"] == "features"
    del written["model"]["embedding_order"]  # as a version before the key wrote it
    path.write_text(yaml.safe_dump(written, sort_keys=False))
    restored = restore_run(tmp_path / "run")
    assert restored.model.feature_layer.output_order == "features"
    batch = _raw_batch(frame, rows=50)
    np.testing.assert_array_equal(
        restored.model(batch)["ctr"].numpy(), result.model(batch)["ctr"].numpy()
    )
    # The key given (a run of this version) is what restores.
    written["model"]["embedding_order"] = "grouped"
    path.write_text(yaml.safe_dump(written, sort_keys=False))
    grouped = restore_run(tmp_path / "run")
    assert grouped.model.feature_layer.output_order == "grouped"
    assert not np.array_equal(
        grouped.model(batch)["ctr"].numpy(), result.model(batch)["ctr"].numpy()
    )


def test_training_metrics_can_be_switched_off(tmp_path, frame):
    histories = []
    for on in (True, False):
        config = _config(tmp_path / str(on), training_metrics=on)
        prepared = prepare(config, train=frame)
        model = build_model(prepared, config)
        state = fit(model, datasets(prepared, config), config, tmp_path / str(on))
        histories.append(sorted(state.history))
    with_metrics, without = histories
    assert "ctr_auc" in with_metrics
    assert [k for k in without if k.endswith("auc") and not k.startswith("val_")] == []
    assert "ctr_loss" in without and "loss" in without


@pytest.mark.parametrize("seed", [None, 42])
def test_memory_batches_gather_the_rows_of_one_permutation_per_pass(seed):
    """Each pass is a permutation of the rows (in order without a seed), cut
    into batches, every column gathered at the same rows; a new order every
    pass, the same orders for the same seed."""
    from mtrec.training import memory_batches

    rng = np.random.default_rng(0)
    columns = {
        "id": np.arange(1000),
        "city": np.array([f"c{i % 7}" for i in range(1000)]),
        "price": rng.random(1000).astype(np.float32),
    }

    def passes(dataset, count):
        orders = []
        for _ in range(count):
            batches = list(dataset)
            assert [len(b["id"]) for b in batches] == [128] * 7 + [104]
            for batch in batches:
                assert sorted(batch) == sorted(columns)
                for name in columns:
                    expected = tf.constant(columns[name]).numpy()[batch["id"].numpy()]
                    np.testing.assert_array_equal(batch[name].numpy(), expected)
            orders.append(np.concatenate([b["id"].numpy() for b in batches]))
        return orders

    batches = memory_batches(columns, 128, seed=seed)
    assert batches.cardinality() == 8  # known to Keras: one step per batch
    orders = passes(batches, 3)
    for order in orders:
        assert sorted(order.tolist()) == list(range(1000))
    if seed is None:
        assert all(order.tolist() == list(range(1000)) for order in orders)
    else:
        assert len({tuple(order) for order in orders}) == 3
        again = passes(memory_batches(columns, 128, seed=seed), 3)
        assert all((a == b).all() for a, b in zip(orders, again, strict=True))
        other = passes(memory_batches(columns, 128, seed=seed + 1), 1)
        assert not (other[0] == orders[0]).all()


def test_memory_batches_shard_the_rows_over_input_pipelines():
    from mtrec.training import memory_batches

    columns = {"id": np.arange(1000)}
    seen = []
    for pipeline in range(3):
        context = tf.distribute.InputContext(3, pipeline, 1)
        batches = memory_batches(columns, 100, seed=1, input_context=context)
        ids = np.concatenate([b["id"].numpy() for b in batches])
        assert sorted(ids.tolist()) == list(range(pipeline, 1000, 3))
        seen.extend(ids.tolist())
    assert sorted(seen) == list(range(1000))
    assert list(memory_batches({"id": np.arange(0)}, 10, seed=1)) == []


def test_predict_jit_compile_from_the_config_evaluates_through_xla(
    tmp_path, made_predictors
):
    """``model.predict_jit_compile: true``: the model predicts through XLA,
    and so do the run's epoch selection and final evaluation, with the
    metrics an uncompiled evaluation of the same weights gives."""
    from mtrec.training import Predictor
    from mtrec.training import train

    rng = np.random.default_rng(3)
    rows = 1_200
    age, shop = rng.integers(0, 6, rows), rng.integers(0, 9, rows)
    price = rng.random(rows).astype("float32")
    click = (rng.random(rows) < 0.1 + 0.1 * age + 0.2 * price).astype("float32")
    table = {"age": age, "shop": shop, "price": price, "click": click}
    config = load_config(
        {
            "name": "xla",
            "runs_dir": str(tmp_path / "runs"),
            "features": [
                {"name": "age", "dtype": "int64", "num_ids": 6, "embedding_dim": 2},
                {"name": "shop", "dtype": "int64", "num_ids": 9, "embedding_dim": 2},
                {"name": "price", "kind": "dense"},
            ],
            "tasks": [{"name": "ctr", "label": "click"}],
            "model": {
                "architecture": "multi_task",
                "backbone": "mmoe",
                "backbone_args": {"num_experts": 2, "expert_units": [4]},
                "tower_units": [2],
                "predict_jit_compile": True,
            },
            "train": {"batch_size": 128, "epochs": 2, "progress": False},
            "export": {"enabled": False},
        },
        in_memory=True,
    )
    train_rows = {k: v[:1000] for k, v in table.items()}
    eval_rows = {k: v[1000:] for k, v in table.items()}
    result = train(config, train_rows=train_rows, eval_rows=eval_rows)
    assert result.model.predict_jit_compile is True
    assert [p.compiled for p in made_predictors] == [True]
    assert len(result.metrics["train"]["val_ctr_logloss"]) == 2  # both selected
    result.model.predict_jit_compile = False
    plain = Predictor(result.model)
    assert not plain.compiled
    eval_data = datasets(prepare(config, train=train_rows, eval=eval_rows)).eval
    report = evaluate_model(result.model, eval_data, predictor=plain)
    for key in ("auc", "logloss"):
        assert result.metrics["eval"]["ctr"][key] == pytest.approx(
            report["ctr"][key], abs=1e-6
        )
