"""Multi-process training on 127.0.0.1: parameter servers and mirrored workers.

Each cluster is real: every task is its own process on its own loopback port
(``mtrec cluster-server`` for ps and workers, ``mtrec train`` for the chief),
started and stopped by the test with bounded waits.
"""

import json
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from mtrec.cli import main as cli_main
from mtrec.data import native_dataset
from mtrec.data import write_table
from mtrec.data.synthetic import generate_click_log
from mtrec.training import ConfigError
from mtrec.training import cluster_server
from mtrec.training import datasets
from mtrec.training import load_config
from mtrec.training import prepare
from mtrec.training import prepare_files
from mtrec.training import restore_run
from mtrec.training import resume_run
from mtrec.training import warmup_rows
from mtrec.training.local_cluster import LocalCluster
from mtrec.training.local_cluster import tf_config

#: The budget of every run here: the shipped ESMM config, 2 epochs of batch
#: 256 over 60k rows with 30% held out (a large enough eval split to compare
#: AUCs). multi_worker_mirrored is deterministic on CPU (0.0038 below one
#: process, the same every run); parameter_server is not (asynchronous).
ROWS = 60_000
RUN_TIMEOUT = 600


def _mtrec(*args, env=None, timeout=RUN_TIMEOUT, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "mtrec.cli", *args],
        env=env,
        timeout=timeout,
        capture_output=True,
        text=True,
        **kwargs,
    )


def _sets(tmp_path, log, *extra) -> list[str]:
    pairs = [
        f"data.train={log}",
        "data.eval_fraction=0.3",
        "train.epochs=2",
        # A few hundred steps (328): at a few dozen (batch 1024), asynchronous
        # ps updates under load moved the AUC by 0.02; here by about 0.001.
        "train.batch_size=256",
        "train.progress=false",
        f"runs_dir={tmp_path / 'runs'}",
        f"export.base={tmp_path / 'exports'}",
        *extra,
    ]
    return [arg for pair in pairs for arg in ("--set", pair)]


def _run_dir(stdout: str) -> pathlib.Path:
    for line in stdout.splitlines():
        if line.startswith("run directory: "):
            return pathlib.Path(line.removeprefix("run directory: "))
    raise AssertionError(f"no run directory in the output:\n{stdout}")


def _metrics(run_dir: pathlib.Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def _check(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def click_log(tmp_path_factory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("cluster") / "log.csv"
    write_table(generate_click_log(ROWS, seed=7), path)
    return path


@pytest.fixture(scope="module")
def single_process(tmp_path_factory, click_log) -> pathlib.Path:
    """The one-process run with the same config and budget."""
    tmp_path = tmp_path_factory.mktemp("single")
    return _run_dir(_check(_mtrec("train", "esmm", *_sets(tmp_path, click_log))).stdout)


# -- fast: the roles, the input shares ----------------------------------------------


def test_cluster_server_serves_only_ps_and_worker_tasks():
    cluster = {
        "chief": ["127.0.0.1:1"],
        "worker": ["127.0.0.1:2"],
        "ps": ["127.0.0.1:3"],
    }
    with pytest.raises(ConfigError, match="the 'chief' runs mtrec train.*'chief'"):
        cluster_server({"TF_CONFIG": tf_config(cluster, "chief")})
    with pytest.raises(ConfigError, match="TF_CONFIG is not set"):
        cluster_server({})


def test_cluster_server_command_names_a_bad_tf_config(monkeypatch, capsys):
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["127.0.0.1:x"]}}')
    assert cli_main(["cluster-server"]) == 2
    err = capsys.readouterr().err
    assert "mtrec cluster-server: error: TF_CONFIG.cluster.worker[0]" in err


def test_resume_refuses_overrides_the_checkpoint_fixes(tmp_path):
    with pytest.raises(ConfigError, match="only train.distribution.*model.backbone"):
        resume_run(tmp_path, overrides=["model.backbone=mmoe"])


def _share_config(tmp_path, frame) -> dict:
    frame["row"] = np.arange(len(frame))  # carried as the group column
    path = tmp_path / "log.csv"
    write_table(frame, path)
    return {
        "name": "shares",
        "runs_dir": str(tmp_path / "runs"),
        "features": [{"name": "device", "kind": "categorical"}],
        "tasks": [{"name": "ctr", "label": "click"}],
        "eval": {"gauc_group": "row"},
        "data": {"train": str(path), "eval_fraction": 0.2, "rows_per_shard": 1024},
        "train": {"batch_size": 128},
    }


def _rows(dataset) -> list:
    return [row for batch in dataset for row in batch["row"].numpy()]


def test_in_memory_rows_are_read_once_per_pass_across_the_input_pipelines(tmp_path):
    frame = generate_click_log(3_000, seed=5, num_users=50, num_items=60)
    raw = _share_config(tmp_path, frame)
    raw["data"].pop("train")
    prepared = prepare(load_config(raw, in_memory=True), frame[:2400], frame[2400:])
    data = datasets(prepared)
    shares = []
    for pipeline in range(2):
        context = tf.distribute.InputContext(2, pipeline, 2)
        rows = len(range(pipeline, prepared.train_rows, 2))
        first = _rows(data.train_shard(context, 0).take(-(-rows // 64)))
        assert len(first) == rows
        shares.append(first)
    everything = np.concatenate(shares)
    assert len(everything) == len(set(everything)) == prepared.train_rows


def test_file_shares_are_the_native_pipelines_of_each_pass(tmp_path):
    # About 23 train shards (a shard holds whole Examples of 1024 rows).
    frame = generate_click_log(30_000, seed=5, num_users=50, num_items=60)
    config = load_config(_share_config(tmp_path, frame))
    prepared = prepare(config)
    data = datasets(prepared)
    files, part = prepare_files(config).train
    for pipeline in range(2):
        context = tf.distribute.InputContext(2, pipeline, 2)
        passes = [
            _rows(
                native_dataset(
                    files, 64, part=part, shuffle=True, seed=config.seed,
                    input_context=context, epoch=epoch,
                )
            )
            for epoch in (0, 1)
        ]  # fmt: skip
        assert passes[0] and sorted(passes[0]) != sorted(passes[1])
        stream = _rows(data.train_shard(context, 0).take(400))
        assert stream[: len(passes[0]) + len(passes[1])] == passes[0] + passes[1]


# -- slow: real clusters -------------------------------------------------------------


def _auc(run_dir: pathlib.Path, output: str = "ctr") -> float:
    return _metrics(run_dir)["eval"][output]["auc"]


def _serves_like_the_checkpoint(run_dir: pathlib.Path, export: pathlib.Path) -> dict:
    """Scores eval rows with the export and with the restored checkpoint."""
    restored = restore_run(run_dir)
    config = load_config(run_dir / "config.yaml", in_memory=True)
    rows = warmup_rows(config, 50)
    inputs = {
        name: tf.constant(rows[name], dtype=restored.feature_set.input_dtype(name))
        for name in restored.feature_set.names
    }
    loaded = tf.saved_model.load(str(export))
    served = loaded.signatures["serving_default"](**inputs)
    direct = restored.model(inputs)
    for name in ("ctr", "cvr", "ctcvr"):
        np.testing.assert_allclose(
            served[name].numpy(), np.reshape(direct[name].numpy(), [-1]), atol=1e-5
        )
    return loaded.signatures["serving_default"].structured_input_signature


@pytest.mark.slow
def test_parameter_server_cluster_shards_tables_trains_and_exports(
    tmp_path, click_log, single_process
):
    sets = _sets(
        tmp_path,
        click_log,
        "train.distribution.strategy=parameter_server",
        "train.distribution.min_shard_bytes=1024",
        # The workers train on ids encoded once (mtrec.data.encode_prepared);
        # the export still takes raw values, as the baseline's does.
        "train.encode_ids=true",
    )
    with LocalCluster(workers=2, ps=2, log_dir=tmp_path / "logs") as cluster:
        cluster.start()
        result = _check(_mtrec("train", "esmm", *sets, env=cluster.env("chief")))
    run_dir = _run_dir(result.stdout)
    report = _metrics(run_dir)["distribution"]
    assert report["strategy"] == "parameter_server"
    assert report["cluster"] == {"chief": 1, "ps": 2, "worker": 2}
    tables = {
        name: shards
        for name, shards in report["sharded_variables"].items()
        if "/features/embeddings" in name
    }
    assert tables, report["sharded_variables"]
    for shards in tables.values():
        assert [shard["device"] for shard in shards] == [
            "/job:ps/replica:0/task:0/device:CPU:0",
            "/job:ps/replica:0/task:1/device:CPU:0",
        ]
    # The chief's checkpoint holds whole tables: one variable per table.
    checkpoint = tf.train.latest_checkpoint(str(run_dir / "checkpoints"))
    saved = dict(tf.train.list_variables(checkpoint))
    for name, shards in tables.items():
        rows = sum(shard["shape"][0] for shard in shards)
        assert [rows, shards[0]["shape"][1]] in saved.values(), name
    assert not [name for name in saved if "part_" in name]
    # The workers' train shards are the encoded copy (train part only).
    (manifest,) = (tmp_path / "runs").rglob("encoded-*/manifest.json")
    encoded = json.loads(manifest.read_text())
    assert list(encoded["parts"]) == ["train"]
    assert "user_id__row_ids" in encoded["columns"]
    assert "user_id" not in encoded["columns"]
    assert abs(_auc(run_dir) - _auc(single_process)) < 0.01
    export = pathlib.Path(_metrics(run_dir)["export_path"])
    signature = _serves_like_the_checkpoint(run_dir, export)
    baseline = pathlib.Path(_metrics(single_process)["export_path"])
    assert signature == _serves_like_the_checkpoint(single_process, baseline)


@pytest.mark.slow
def test_multi_worker_mirrored_trains_as_one_process_does(
    tmp_path, click_log, single_process
):
    sets = _sets(
        tmp_path,
        click_log,
        "train.distribution.strategy=multi_worker_mirrored",
        # Each worker prepares the files and encodes the train part itself,
        # into one shared cache, at the same time: the second to finish keeps
        # the first one's entries. Evaluation and the export stay on raw
        # values, so the lookups still run under the strategy.
        "train.encode_ids=true",
    )
    cluster = LocalCluster(workers=2, ps=0)
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "mtrec.cli", "train", "esmm", *sets],
            env=cluster.env("worker", index),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for index in range(2)
    ]
    try:
        outputs = [worker.communicate(timeout=RUN_TIMEOUT)[0] for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    assert "the chief writes the run" in outputs[1]
    run_dir = _run_dir(outputs[0])
    assert len(list((tmp_path / "runs").iterdir())) == 2  # the chief's and .prepared
    # One prepared and one encoded entry, no copy left behind by either worker.
    (entry,) = (tmp_path / "runs" / ".prepared").iterdir()
    (encoded,) = entry.glob("encoded-*/manifest.json")
    assert [path for path in entry.iterdir() if path.is_dir()] == [encoded.parent]
    report = _metrics(run_dir)["distribution"]
    assert report["strategy"] == "multi_worker_mirrored"
    assert report["replicas_in_sync"] == 2
    assert abs(_auc(run_dir) - _auc(single_process)) < 0.005
    _serves_like_the_checkpoint(run_dir, pathlib.Path(_metrics(run_dir)["export_path"]))


def _wait_for(predicate, what: str, timeout: float = RUN_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _epochs_done(run_dir: pathlib.Path) -> int:
    try:
        return json.loads((run_dir / "training_state.json").read_text())["epochs_done"]
    except (OSError, ValueError):
        return 0


@pytest.fixture(scope="module")
def small_log(tmp_path_factory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("cluster") / "small.csv"
    write_table(generate_click_log(20_000, seed=8), path)
    return path


@pytest.mark.slow
def test_runs_move_between_one_process_and_a_cluster_that_loses_tasks(
    tmp_path, small_log
):
    """One process -> parameter servers (a worker and then the chief killed,
    the chief resumed) -> one process, each step restoring the last strictly,
    the loss weighting's state (DWA's loss history) included."""
    run_dir = tmp_path / "run"
    sets = _sets(
        tmp_path,
        small_log,
        "train.epochs=1",
        "train.batch_size=128",
        "export.enabled=false",  # the export is tested above
        "weighting.name=dwa",  # epoch-log driven, with state in the checkpoint
    )
    _check(_mtrec("train", "esmm", *sets, "--run-dir", str(run_dir)))
    on_cluster = [
        "--set", "train.epochs=3",
        "--set", "train.distribution.strategy=parameter_server",
        "--set", "train.distribution.num_shards=2",
    ]  # fmt: skip
    log = tmp_path / "chief.log"
    with LocalCluster(workers=2, ps=2, log_dir=tmp_path / "logs") as cluster:
        cluster.start()
        with open(log, "w") as out:
            chief = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mtrec.cli",
                    "resume",
                    str(run_dir),
                    *on_cluster,
                ],
                env=cluster.env("chief"),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_for(lambda: "training on" in log.read_text(), "training to start")
            time.sleep(1.0)
            assert chief.poll() is None, log.read_text()[-3000:]
            cluster.kill("worker", 1)  # mid epoch 2: the other worker goes on
            _wait_for(
                lambda: _epochs_done(run_dir) >= 2 or chief.poll() is not None,
                "the epoch 2 checkpoint",
            )
            assert chief.poll() is None, log.read_text()[-3000:]
            chief.kill()  # the chief dies in epoch 3
            chief.wait(timeout=30)
        finally:
            chief.kill()
        text = log.read_text()
        assert "restored ckpt-1" in text, text[-3000:]
        placed = "2 shards on /job:ps/replica:0/task:0/device:CPU:0, /job:ps/replica:0"
        assert f"features/embeddings_8: {placed}" in text
        state = json.loads((run_dir / "training_state.json").read_text())
        assert state["epochs_done"] == 2 and not state["finished"], state
        cluster.start_task("worker", 1)  # the launcher restarts the lost worker
        resumed = _check(_mtrec("resume", str(run_dir), env=cluster.env("chief")))
    assert "restored ckpt-2" in resumed.stderr
    metrics = _metrics(run_dir)
    assert metrics["epochs_trained"] == 3
    assert metrics["distribution"]["strategy"] == "parameter_server"
    assert metrics["eval"]["ctr"]["auc"] > 0.7
    # The cluster's checkpoint resumes in one process too.
    single = _check(
        _mtrec(
            "resume", str(run_dir),
            "--set", "train.epochs=4",
            "--set", "train.distribution.strategy=none",
            "--set", "train.distribution.num_shards=null",
        )
    )  # fmt: skip
    assert "restored ckpt-3" in single.stderr
    assert _metrics(run_dir)["epochs_trained"] == 4
    assert "distribution" not in _metrics(run_dir)
