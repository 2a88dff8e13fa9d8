"""The mtrec command line end to end on a small config, and its error paths."""

import json
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from mtrec.cli import main


def test_generate_then_train_then_export(tmp_path, capsys):
    data = tmp_path / "log.parquet"
    assert main(["generate", "--rows", "6000", "--out", str(data), "--seed", "5"]) == 0
    assert "wrote 6,000 rows" in capsys.readouterr().out
    assert len(pd.read_parquet(data)) == 6000

    features = tmp_path / "features.yaml"
    features.write_text(
        yaml.safe_dump(
            [
                {"name": "item_category", "kind": "categorical", "embedding_dim": 4},
                {
                    "name": "position",
                    "kind": "categorical",
                    "dtype": "int64",
                    "embedding_dim": 2,
                },
                {"name": "item_price", "kind": "dense", "log1p": True},
            ]
        )
    )
    config = tmp_path / "run.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "cli",
                "features": "features.yaml",
                "tasks": [
                    {"name": "ctr", "label": "click"},
                    {"name": "cvr", "label": "conversion", "condition": "click"},
                ],
                "data": {"train": str(data), "label_requires": {"conversion": "click"}},
                "model": {"backbone_args": {"units": [8]}, "tower_units": [4]},
                "train": {"batch_size": 1024, "epochs": 1, "progress": False},
                "eval": {"oracle": {"ctr": "true_ctr"}},
                "runs_dir": str(tmp_path / "runs"),
                "export": {"base": str(tmp_path / "exports")},
            }
        )
    )
    run_dir = tmp_path / "runs" / "fixed"
    assert (
        main(
            [
                "train",
                str(config),
                "--set",
                "train.learning_rate=0.01",
                "--run-dir",
                str(run_dir),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "oracle" in out and "ctcvr" in out and "conversion where click=1" in out
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["eval"]["ctr"]["oracle_auc"] > 0.5
    # train exports into the run; only `mtrec export` publishes to the base.
    assert (run_dir / "export" / "1" / "saved_model.pb").is_file()
    assert not (tmp_path / "exports").exists()

    assert main(["export", str(run_dir)]) == 0
    assert (tmp_path / "exports" / "1" / "saved_model.pb").is_file()

    # The run directory now holds a run: training into it again is refused
    # (nothing touched) unless --overwrite.
    before = (run_dir / "metrics.json").read_bytes()
    assert main(["train", str(config), "--run-dir", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert f"mtrec train: error: {run_dir} already holds a run" in err
    assert "mtrec resume" in err and "--overwrite" in err
    assert (run_dir / "metrics.json").read_bytes() == before
    assert main(["train", str(config), "--run-dir", str(run_dir), "--overwrite"]) == 0
    assert (run_dir / "metrics.json").read_bytes() != before


def test_errors_are_one_line_without_traceback(tmp_path):
    bad = tmp_path / "run.yaml"
    bad.write_text(
        "features: [{name: a}]\ntasks: [{name: ctr, label: click}]\n"
        "data: {train: x.csv}\ntrain: {epocs: 1}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "mtrec.cli", "train", str(bad)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert "mtrec train: error: unknown key(s) ['train.epocs']" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("rows", "suffix", "message"),
    [
        ("0", ".csv", "mtrec generate: error: `num_rows` must be an int >= 1"),
        ("10", ".txt", "mtrec generate: error: Cannot infer the format"),
    ],
)
def test_generate_errors_are_one_line(tmp_path, capsys, rows, suffix, message):
    out = tmp_path / f"log{suffix}"
    assert main(["generate", "--rows", rows, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()
