"""The MTL gain report: single-task configs, the gain arithmetic, mtrec compare."""

import json

import pytest

from mtrec.affinity import compare
from mtrec.affinity import gain_report
from mtrec.affinity import gain_table
from mtrec.affinity import single_task_config
from mtrec.cli import main
from mtrec.data import generate_click_log
from mtrec.data import write_table
from mtrec.training import load_config

FEATURES = [
    {"name": "item_category", "kind": "categorical", "embedding_dim": 4},
    {"name": "position", "kind": "categorical", "dtype": "int64", "embedding_dim": 2},
    {"name": "item_price", "kind": "dense", "log1p": True},
]


def _config(tmp_path, log_path, **changes):
    config = {
        "name": "cmp",
        "seed": 1,
        "runs_dir": str(tmp_path / "runs"),
        "features": FEATURES,
        "tasks": [
            {"name": "ctr", "label": "click"},
            {"name": "cvr", "label": "conversion", "condition": "click"},
        ],
        "data": {"train": str(log_path), "label_requires": {"conversion": "click"}},
        "model": {"backbone_args": {"units": [8]}, "tower_units": [4]},
        "weighting": {"name": "uncertainty"},
        "train": {
            "batch_size": 512,
            "epochs": 2,
            "learning_rate": 0.02,
            "progress": False,
        },
        "eval": {"oracle": {"ctr": "true_ctr", "cvr": "true_cvr"}},
    }
    config.update(changes)
    return load_config(config)


@pytest.fixture(scope="module")
def log_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("gain") / "log.csv"
    write_table(generate_click_log(30_000, seed=2, num_users=300, num_items=300), path)
    return path


def test_single_task_config_keeps_the_budget_and_drops_the_rest(tmp_path, log_path):
    config = _config(
        tmp_path, log_path, train={"epochs": 3, "selection": {"metric": "ctcvr.auc"}}
    )
    cvr = single_task_config(config, "cvr")
    assert cvr.tasks == [{"name": "cvr", "label": "conversion", "condition": "click"}]
    assert cvr.model.architecture == "multi_task"
    assert cvr.model.backbone_args == config.model.backbone_args
    assert cvr.train.epochs == 3 and cvr.train.batch_size == config.train.batch_size
    assert cvr.train.selection.metric == "auto"  # ctcvr is not an output here
    assert cvr.weighting.name == "fixed"
    assert cvr.eval.oracle == {"cvr": "true_cvr"}
    with pytest.raises(ValueError, match=r"`task` must be one of \['ctr', 'cvr'\]"):
        single_task_config(config, "ctx")


def test_gain_report_arithmetic():
    report = gain_report(
        {"a": [0.80, 0.82], "b": [0.60, 0.62]},
        {"a": [0.78, 0.80], "b": [0.66, 0.68]},
        "auc",
    )
    a, b = report["tasks"]["a"], report["tasks"]["b"]
    assert a["gain"] == pytest.approx(0.02)
    assert a["se"] == pytest.approx(0.01414213, rel=1e-6)  # sqrt((2e-4 + 2e-4) / 2)
    assert a["negative_transfer"] is False
    assert b["gain"] == pytest.approx(-0.06) and b["negative_transfer"] is True
    expected = (100 * 0.02 / 0.79 + 100 * -0.06 / 0.67) / 2
    assert report["delta_m"] == pytest.approx(expected)
    # A loss: lower is better, so a lower multi-task loss is a positive Δm.
    loss = gain_report({"a": [0.40]}, {"a": [0.50]}, "logloss")
    assert loss["delta_m"] == pytest.approx(20.0)
    assert loss["tasks"]["a"]["negative_transfer"] is False
    assert loss["tasks"]["a"]["se"] is None  # one seed
    worse = gain_report({"a": [0.5]}, {"a": [0.6]}, "auc")
    assert worse["tasks"]["a"]["negative_transfer"] is True
    assert "one seed: no error estimate" in gain_table(worse)
    # An undefined metric (an AUC on one class) leaves the gain undefined.
    undefined = gain_report({"a": [None]}, {"a": [0.6]}, "auc")
    assert undefined["tasks"]["a"]["gain"] is None and undefined["delta_m"] is None


def test_compare_trains_both_sides_per_seed(tmp_path, log_path, capsys):
    config = _config(tmp_path, log_path)
    report = compare(config, seeds=[1, 2], out_dir=tmp_path / "cmp")
    for task in ("ctr", "cvr"):
        entry = report["tasks"][task]
        assert len(entry["multi"]) == len(entry["single"]) == 2
        assert all(v is not None for v in entry["multi"] + entry["single"])
        assert entry["gain"] == pytest.approx(
            entry["multi_mean"] - entry["single_mean"]
        )
        assert entry["se"] is not None
    assert min(report["tasks"]["ctr"]["multi"]) > 0.55  # it learned something
    # The single side is two models (a tower each, a backbone each).
    assert report["single"]["parameters"] > report["multi"]["parameters"]
    assert report["multi"]["steps"] > 0 and report["single"]["steps"] > 0
    assert report["seeds"] == [1, 2]
    written = json.loads((tmp_path / "cmp" / "report.json").read_text())
    assert written == json.loads(json.dumps(report))
    assert "| ctr |" in (tmp_path / "cmp" / "report.md").read_text()
    assert {p.name for p in (tmp_path / "cmp").iterdir()} >= {
        "multi-seed1",
        "single-ctr-seed2",
        "single-cvr-seed1",
    }


def test_cli_compare(tmp_path, log_path, capsys):
    config = _config(tmp_path, log_path)
    path = tmp_path / "run.yaml"
    import yaml

    path.write_text(yaml.safe_dump(config.to_dict()))
    assert main(["compare", str(path), "--seeds", "0"]) == 2
    assert "--seeds must be >= 1" in capsys.readouterr().err
    out = tmp_path / "out"
    assert main(["compare", str(path), "--seeds", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| task | multi-task auc | single-task auc |" in printed
    assert (out / "report.md").is_file()
