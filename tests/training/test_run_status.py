"""A run's status: failed runs are marked (and say why), killed ones unfinished."""

import json

import pytest
import tensorflow as tf
from test_train import small_config

from mtrec.cli import main
from mtrec.data import write_table
from mtrec.data.synthetic import generate_click_log
from mtrec.training import list_runs
from mtrec.training import load_config
from mtrec.training import resume_run
from mtrec.training import run_status
from mtrec.training import train


class Boom(tf.keras.callbacks.Callback):
    """Fails the run in its second epoch, after the first was checkpointed."""

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            raise RuntimeError("disk full (simulated)")


@pytest.fixture(scope="module")
def log_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("status") / "log.csv"
    write_table(generate_click_log(2_000, seed=5, num_users=100, num_items=100), path)
    return path


def _config(tmp_path, log_path):
    return load_config(small_config(tmp_path, log_path, export={"enabled": False}))


def test_a_run_that_fails_after_prepare_is_marked_failed_and_resumable(
    tmp_path, log_path, capsys
):
    config = _config(tmp_path, log_path)
    done = train(config, run_dir=tmp_path / "runs" / "a-done")
    failed_dir = tmp_path / "runs" / "b-failed"
    with pytest.raises(RuntimeError, match="disk full"):
        train(config, run_dir=failed_dir, callbacks=[Boom()])
    record = json.loads((failed_dir / "failed.json").read_text())
    assert record["error"] == "RuntimeError"
    assert record["message"] == "disk full (simulated)"
    assert record["resume"] == f"mtrec resume {failed_dir}"

    statuses = {run.run_dir.name: run for run in list_runs(tmp_path / "runs")}
    assert set(statuses) == {"a-done", "b-failed"}
    assert statuses["b-failed"].status == "failed"
    assert statuses["b-failed"].epochs_done == 1
    assert statuses["b-failed"].error == "RuntimeError: disk full (simulated)"
    assert statuses["a-done"].status == "finished"
    assert statuses["a-done"].metrics["ctr"] == done.metrics["eval"]["ctr"]["auc"]

    assert main(["runs", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["run", "status", "epochs", "detail"]
    assert out[1].split()[:3] == ["a-done", "finished", "2"]
    assert out[2].split()[:3] == ["b-failed", "failed", "1"]
    assert "RuntimeError: disk full (simulated)" in out[2]

    # Resuming clears the mark; the run ends finished.
    resume_run(failed_dir)
    assert not (failed_dir / "failed.json").exists()
    assert run_status(failed_dir).status == "finished"


def test_a_killed_run_is_unfinished(tmp_path, log_path):
    config = _config(tmp_path, log_path)
    run_dir = tmp_path / "runs" / "killed"
    with pytest.raises(RuntimeError):
        train(config, run_dir=run_dir, callbacks=[Boom()])
    # SIGKILL leaves no mark: as if failed.json had never been written.
    (run_dir / "failed.json").unlink()
    status = run_status(run_dir)
    assert (status.status, status.epochs_done, status.error) == ("unfinished", 1, None)


def test_listing_errors(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="runs directory not found"):
        list_runs(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="is not a run directory"):
        run_status(tmp_path)
    assert main(["runs", str(tmp_path / "nope")]) == 2
    assert "mtrec runs: error: runs directory not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["runs", str(tmp_path / "empty")]) == 0
    assert capsys.readouterr().out.strip() == f"no runs in {tmp_path / 'empty'}"
