"""A run's figures: drawn at the end of training and by mtrec plot."""

import json

import matplotlib.image
import numpy as np
import pytest

from mtrec.cli import main
from mtrec.data import generate_click_log
from mtrec.data import write_table
from mtrec.metrics import reliability_curve
from mtrec.plots import plot_run
from mtrec.training import load_config
from mtrec.training import train

FEATURES = [
    {"name": "item_category", "kind": "categorical", "embedding_dim": 4},
    {"name": "position", "kind": "categorical", "dtype": "int64", "embedding_dim": 2},
    {"name": "item_price", "kind": "dense", "log1p": True},
]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plots")
    log = tmp / "log.csv"
    write_table(generate_click_log(20_000, seed=6, num_users=300, num_items=300), log)
    config = load_config(
        {
            "name": "plots",
            "runs_dir": str(tmp / "runs"),
            "features": FEATURES,
            "tasks": [
                {"name": "ctr", "label": "click"},
                {"name": "cvr", "label": "conversion", "condition": "click"},
            ],
            "data": {"train": str(log), "label_requires": {"conversion": "click"}},
            "model": {
                "backbone": "mmoe",
                "backbone_args": {"num_experts": 3, "expert_units": [8]},
                "tower_units": [4],
            },
            "weighting": {"name": "dwa"},
            "train": {"batch_size": 512, "epochs": 3, "progress": False},
            "export": {"enabled": False},
        }
    )
    return train(config, run_dir=tmp / "runs" / "mmoe")


# figure -> (height, width) in pixels at 100 dpi, from its figsize
EXPECTED = {
    "learning_curves": (300, 1200),
    "task_weights": (320, 900),
    "reliability": (320, 1020),
}


def _check_image(path, shape=None):
    image = matplotlib.image.imread(path)
    assert image.ndim == 3, path
    if shape is not None:
        assert image.shape[:2] == shape, (path.name, image.shape)
    assert image[..., :3].std() > 0.02, f"{path.name} looks blank"
    return image


def test_the_run_draws_every_figure(finished_run):
    plots = finished_run.run_dir / "plots"
    names = sorted(p.stem for p in plots.glob("*.png"))
    assert names == ["gates", "learning_curves", "reliability", "task_weights"]
    for name, shape in EXPECTED.items():
        _check_image(plots / f"{name}.png", shape)
    gates = _check_image(plots / "gates.png")
    assert gates.shape[0] > 100 and gates.shape[1] > 200


def test_mtrec_plot_redraws_and_names_what_it_wrote(finished_run, capsys):
    plots = finished_run.run_dir / "plots"
    for path in plots.glob("*.png"):
        path.unlink()
    assert main(["plot", str(finished_run.run_dir)]) == 0
    printed = capsys.readouterr().out.split()
    assert sorted(printed) == sorted(str(p) for p in plots.glob("*.png"))
    assert len(printed) == 4


def test_a_run_without_gates_or_weights_skips_those(finished_run, tmp_path):
    metrics = json.loads((finished_run.run_dir / "metrics.json").read_text())
    metrics.pop("gates")
    metrics["train"] = {k: v for k, v in metrics["train"].items() if "weight_" not in k}
    written = plot_run(tmp_path, metrics)
    assert sorted(p.stem for p in written) == ["learning_curves", "reliability"]


def test_plot_errors(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="no metrics.json"):
        plot_run(tmp_path)
    assert main(["plot", str(tmp_path)]) == 2
    assert "mtrec plot: error:" in capsys.readouterr().err


def test_reliability_curve_uses_equal_count_bins():
    p = np.linspace(0.001, 0.05, 1000)  # a CTR model: every prediction < 0.1
    y = (np.arange(1000) % 25 == 0).astype(float)
    curve = reliability_curve(y, p, num_bins=10)
    assert curve["rows"] == [100] * 10
    assert curve["mean_prediction"] == sorted(curve["mean_prediction"])
    assert sum(r * rate for r, rate in zip(curve["rows"], curve["label_rate"])) == 40
    assert reliability_curve([], []) is None
    with pytest.raises(ValueError, match="`num_bins` must be >= 1"):
        reliability_curve([1], [0.5], num_bins=0)
