"""Training on the native input path: prepared shards, no Python in the graph,
exact resume, ``mtrec prepare``."""

import json
import tempfile

import pytest
import tensorflow as tf
import yaml
from test_train import small_config

from mtrec.cli import main
from mtrec.data import write_table
from mtrec.data.synthetic import generate_click_log
from mtrec.training import datasets
from mtrec.training import load_config
from mtrec.training import prepare
from mtrec.training import prepare_files
from mtrec.training import resume_run
from mtrec.training import train

PYTHON_OPS = {"PyFunc", "PyFuncStateless", "EagerPyFunc", "GeneratorDataset"}


class Interrupt(Exception):
    """Stands in for a killed process after a given epoch."""


class InterruptAfter(tf.keras.callbacks.Callback):
    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            raise Interrupt(f"stopped after epoch {self.epoch}")


@pytest.fixture(scope="module")
def log_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("native") / "log.csv"
    write_table(generate_click_log(3_000, seed=4, num_users=200, num_items=300), path)
    return path


def _config(tmp_path, log_path, **train_args):
    config = small_config(tmp_path, log_path, export={"enabled": False})
    config["train"].update({"batch_size": 256, **train_args})
    return load_config(config)


def _graph_ops(dataset: tf.data.Dataset) -> set[str]:
    graph = tf.compat.v1.GraphDef()
    graph.ParseFromString(dataset._as_serialized_graph().numpy())  # noqa: SLF001
    ops = {node.op for node in graph.node}
    for function in graph.library.function:
        ops |= {node.op for node in function.node_def}
    return ops


def test_the_training_datasets_have_no_python_in_the_graph(tmp_path, log_path):
    config = _config(tmp_path, log_path, selection={"metric": "ctr.auc"})
    data = datasets(prepare(config))
    for dataset in (data.train, data.eval, data.selection, data.train_from(1)):
        ops = _graph_ops(dataset)
        assert not ops & PYTHON_OPS
        assert {"TFRecordDataset", "ParseExampleV2"} <= ops


def test_training_batches_are_the_prepared_rows_once_per_epoch(tmp_path, log_path):
    config = _config(tmp_path, log_path, epochs=2)
    prepared = prepare(config)
    data = datasets(prepared)
    rows = [len(batch["click"]) for batch in data.train]
    per_epoch = -(-prepared.train_rows // 256)
    assert len(rows) == 2 * per_epoch
    # Known to Keras, so fit can run several batches per call.
    assert int(data.train.cardinality()) == 2 * per_epoch
    assert int(data.train_from(1).cardinality()) == per_epoch
    assert sum(rows) == 2 * prepared.train_rows
    ids = [batch["user_id"].numpy() for batch in data.train]
    first = sorted(x for b in ids[:per_epoch] for x in b.tolist())
    second = sorted(x for b in ids[per_epoch:] for x in b.tolist())
    assert first == second  # the same rows, reshuffled
    assert [b.tolist() for b in ids[:per_epoch]] != [
        b.tolist() for b in ids[per_epoch:]
    ]
    # A resumed run's stream is the tail of the uninterrupted one.
    tail = [batch["user_id"].numpy().tolist() for batch in data.train_from(1)]
    assert tail == [b.tolist() for b in ids[per_epoch:]]


def test_steps_per_epoch_walks_on_through_the_passes(tmp_path, log_path):
    config = _config(tmp_path, log_path, epochs=3, steps_per_epoch=4)
    data = datasets(prepare(config))
    whole = [b["user_id"].numpy().tolist() for b in data.train]
    assert len(whole) == 12
    resumed = [b["user_id"].numpy().tolist() for b in data.train_from(2)]
    assert resumed == whole[8:]


def test_resume_gives_the_weights_of_the_uninterrupted_run(tmp_path, log_path):
    uninterrupted = train(_config(tmp_path / "a", log_path, epochs=3))
    config = _config(tmp_path / "b", log_path, epochs=3)
    with pytest.raises(Interrupt):
        train(config, run_dir=tmp_path / "b" / "run", callbacks=[InterruptAfter(2)])
    resumed = resume_run(tmp_path / "b" / "run")
    assert (
        resumed.metrics["optimizer_steps"] == uninterrupted.metrics["optimizer_steps"]
    )
    _assert_same_weights(uninterrupted.model, resumed.model)


def test_a_run_from_before_fused_optimizer_resumes_with_its_optimizer(
    tmp_path, log_path
):
    from mtrec.training import build_optimizer

    default = _config(tmp_path / "c", log_path)
    assert default.train.fused_optimizer is True
    assert isinstance(build_optimizer(default), tf.keras.optimizers.legacy.Adam)
    unfused = _config(tmp_path / "a", log_path, epochs=3, fused_optimizer=False)
    optimizer = build_optimizer(unfused)
    assert isinstance(optimizer, tf.keras.optimizers.Adam)
    assert not isinstance(optimizer, tf.keras.optimizers.legacy.Optimizer)
    uninterrupted = train(unfused)
    config = _config(tmp_path / "b", log_path, epochs=3, fused_optimizer=False)
    run_dir = tmp_path / "b" / "run"
    with pytest.raises(Interrupt):
        train(config, run_dir=run_dir, callbacks=[InterruptAfter(2)])
    # As a version before the key wrote it: its checkpoints hold the slots of
    # tf.keras.optimizers.Adam, which the resumed run must use.
    path = run_dir / "config.yaml"
    written = yaml.safe_load(path.read_text())
    assert written["train"]["fused_optimizer"] is False
    del written["train"]["fused_optimizer"]
    path.write_text(yaml.safe_dump(written, sort_keys=False))
    resumed = resume_run(run_dir)
    assert not isinstance(resumed.model.optimizer, tf.keras.optimizers.legacy.Optimizer)
    assert (
        resumed.metrics["optimizer_steps"] == uninterrupted.metrics["optimizer_steps"]
    )
    _assert_same_weights(uninterrupted.model, resumed.model)


def _assert_same_weights(a_model, b_model):
    """Bit for bit, variable by variable."""
    for a, b in zip(
        a_model.trainable_variables, b_model.trainable_variables, strict=True
    ):
        assert a.name == b.name
        assert (a.numpy() == b.numpy()).all(), a.name


class InterruptAtBatch(tf.keras.callbacks.Callback):
    """Stands in for a process killed after batch ``batch`` of epoch ``epoch``."""

    def __init__(self, epoch: int, batch: int):
        super().__init__()
        self.epoch, self.batch, self._current = epoch, batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self._current = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        if self._current == self.epoch and batch + 1 == self.batch:
            raise Interrupt(f"stopped at batch {self.batch} of epoch {self.epoch}")


def _mid_epoch_config(tmp_path, log_path):
    config = small_config(tmp_path, log_path, export={"enabled": False})
    config["train"].update(
        {"batch_size": 256, "epochs": 3, "checkpoint_every_steps": 3}
    )
    # dwa weighs the tasks by the epoch-mean losses: the resumed epoch's
    # running means must be those of the whole epoch.
    config["weighting"] = {"name": "dwa"}
    return load_config(config)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, log_path):
    """The run the mid-epoch resumes end equal to (trained once per module)."""
    return train(_mid_epoch_config(tmp_path_factory.mktemp("whole"), log_path))


def test_resume_mid_epoch_gives_the_weights_of_the_uninterrupted_run(
    tmp_path, log_path, uninterrupted
):
    config = _mid_epoch_config(tmp_path / "b", log_path)
    run_dir = tmp_path / "b" / "run"
    # Killed after batch 7 of epoch 2; the last step checkpoint is batch 6.
    with pytest.raises(Interrupt):
        train(config, run_dir=run_dir, callbacks=[InterruptAtBatch(2, 7)])
    state = json.loads((run_dir / "training_state.json").read_text())
    assert state["epochs_done"] == 1
    steps = state["iterations"]
    assert state["mid_epoch"]["batches"] == 6
    assert state["mid_epoch"]["optimizer_steps"] == steps + 6
    resumed = resume_run(run_dir)
    assert (
        resumed.metrics["optimizer_steps"] == uninterrupted.metrics["optimizer_steps"]
    )
    # The epoch logs (the dwa weights read them) are the uninterrupted ones.
    for key in ("loss", "ctr_loss", "weight_ctr", "weight_ctcvr"):
        assert resumed.metrics["train"][key] == uninterrupted.metrics["train"][key]
    _assert_same_weights(uninterrupted.model, resumed.model)
    final = json.loads((run_dir / "training_state.json").read_text())
    assert "mid_epoch" not in final  # cleared at the epoch end


def test_encoded_training_resumed_mid_epoch_has_the_weights_of_raw_training(
    tmp_path, log_path, uninterrupted
):
    """``train.encode_ids``: the same batches encoded once, so the same weights."""
    config = _mid_epoch_config(tmp_path / "b", log_path)
    config.train.encode_ids = True
    run_dir = tmp_path / "b" / "run"
    with pytest.raises(Interrupt):
        train(config, run_dir=run_dir, callbacks=[InterruptAtBatch(2, 7)])
    resumed = resume_run(run_dir)
    assert (
        resumed.metrics["optimizer_steps"] == (uninterrupted.metrics["optimizer_steps"])
    )
    assert resumed.metrics["train"]["loss"] == uninterrupted.metrics["train"]["loss"]
    _assert_same_weights(uninterrupted.model, resumed.model)
    # Evaluated on raw held-out rows, as served.
    assert resumed.metrics["eval"] == uninterrupted.metrics["eval"]
    # The encoded train shards sit beside the raw ones, train part only.
    (manifest,) = (tmp_path / "b").rglob("encoded-*/manifest.json")
    written = json.loads(manifest.read_text())
    assert list(written["parts"]) == ["train"]
    columns = written["columns"]
    encoded = ["user_id", "item_category", "position", "device"]
    assert {f"{name}__row_ids" for name in encoded} <= set(columns)
    assert not set(encoded) & set(columns)
    assert columns["recent_categories"] == "string"  # multi-valued: raw tokens


def test_prepare_files_is_cached_by_content(tmp_path, log_path):
    config = _config(tmp_path, log_path)
    first = prepare_files(config)
    again = prepare_files(config)
    assert again.train[0].directory == first.train[0].directory
    assert first.train[1] == "train" and first.eval[1] == "eval"
    parts = first.train[0].parts
    assert list(parts) == ["train", "eval", "validation"]
    assert first.validation == (first.train[0], "validation")
    assert sum(p.rows + p.rows_dropped for p in parts.values()) == 3_000


def test_cli_prepare_reports_the_parts(tmp_path, log_path, capsys):
    config = small_config(tmp_path, log_path)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["prepare", str(path)]) == 0
    out = capsys.readouterr().out
    assert "train" in out and "eval" in out and "rows in" in out


def test_cli_prepare_with_encode_ids_writes_the_shards_training_then_reads(
    tmp_path, log_path, capsys, monkeypatch
):
    config = small_config(tmp_path, log_path)
    config["train"]["encode_ids"] = True
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    assert main(["prepare", str(path)]) == 0
    assert not list(scratch.iterdir())  # the fitted vocabularies are not kept
    out = capsys.readouterr().out
    lines = {line.split(" ", 1)[0]: line for line in out.splitlines()}
    (manifest,) = (tmp_path / "runs").rglob("encoded-*/manifest.json")
    assert str(manifest.parent) in lines["encoded"]
    rows = lines["train"].split("rows in")[0].split()[-1]  # e.g. "2,391"
    assert lines["encoded"].split("rows in")[0].split()[-1] == rows
    assert "user_id__row_ids" in json.loads(manifest.read_text())["columns"]
    # A run with the same data and vocabularies finds the entry, untouched,
    # though its dict lists the oracle columns in another order than the
    # YAML file (keys sorted) the command read.
    written = manifest.stat().st_mtime_ns
    datasets(prepare(load_config(config)))
    assert list((tmp_path / "runs").rglob("encoded-*/manifest.json")) == [manifest]
    assert manifest.stat().st_mtime_ns == written


def test_cli_prepare_names_a_bad_value(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    frame = generate_click_log(50, seed=1)
    frame = frame.astype({"position": object})
    frame.loc[7, "position"] = "top"
    write_table(frame, bad)
    config = small_config(tmp_path, bad)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["prepare", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mtrec prepare: error:")
    assert "bad.csv" in err and "line 9" in err and "position" in err
