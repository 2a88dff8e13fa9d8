"""Truth test of the gain report on tasks of designed relation to the click.

Two tasks squeezed through a two-unit shared bottom: the click with a task
driven by the same interest (``related``) shares it at no loss, the click
with a task driven by latents of its own (``independent``) conflicts for the
two units, and ``mtrec compare`` must flag that negative transfer (and only
that). Seeds 0..2, the same data and budget on both sides.
"""

import pytest

from mtrec.affinity import compare
from mtrec.data import add_related_tasks
from mtrec.data import generate_click_log
from mtrec.data import write_table
from mtrec.training import load_config

FEATURES = [
    {"name": "user_id", "kind": "categorical", "dtype": "int64", "embedding_dim": 8},
    {"name": "item_id", "kind": "categorical", "dtype": "int64", "embedding_dim": 8},
    {"name": "position", "kind": "categorical", "dtype": "int64", "embedding_dim": 2},
    {"name": "item_hist_ctr", "kind": "dense"},
    {"name": "user_activity", "kind": "dense", "log1p": True},
]


@pytest.fixture(scope="module")
def log_path(tmp_path_factory):
    frame = generate_click_log(60_000, seed=0, num_users=500, num_items=500)
    path = tmp_path_factory.mktemp("truth") / "log.parquet"
    write_table(add_related_tasks(frame, seed=0), path)
    return path


def _gain(tmp_path, log_path, other: str) -> dict:
    config = load_config(
        {
            "name": f"click-{other}",
            "seed": 0,
            "runs_dir": str(tmp_path / "runs"),
            "features": FEATURES,
            "tasks": [
                {"name": "click", "label": "click"},
                {"name": other, "label": other},
            ],
            "data": {"train": str(log_path)},
            "model": {
                "architecture": "multi_task",
                "backbone_args": {"units": [2]},
                "tower_units": [4],
            },
            "train": {
                "batch_size": 1024,
                "epochs": 4,
                "learning_rate": 0.01,
                "progress": False,
            },
            "export": {"enabled": False},
            "eval": {"plots": False},
        }
    )
    return compare(config, seeds=[0, 1, 2], out_dir=tmp_path / other)


@pytest.mark.slow
def test_compare_flags_the_conflicting_task_and_not_the_related_one(tmp_path, log_path):
    related = _gain(tmp_path, log_path, "related")
    conflicting = _gain(tmp_path, log_path, "independent")
    assert related["tasks"]["related"]["negative_transfer"] is False
    assert related["tasks"]["click"]["negative_transfer"] is False
    assert conflicting["tasks"]["independent"]["negative_transfer"] is True
    assert conflicting["delta_m"] < 0 < related["delta_m"]
