"""train() with bucketised dense features that keep their value: fitted
point-mass buckets, and the exported model scoring as the trained one."""

import numpy as np
import pytest
import tensorflow as tf

from mtrec.data import write_table
from mtrec.data.synthetic import generate_click_log
from mtrec.training import ConfigError
from mtrec.training import load_config
from mtrec.training import restore_run
from mtrec.training import train

FEATURES = [
    {"name": "item_category", "kind": "categorical", "embedding_dim": 4},
    {
        "name": "item_price",
        "kind": "dense",
        "log1p": True,
        "num_buckets": 8,
        "keep_value": True,
        "embedding_dim": 3,
    },
    {"name": "position", "kind": "dense", "num_buckets": 16, "keep_value": True},
    {"name": "item_hist_ctr", "kind": "dense"},
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bucketed")
    path = tmp / "log.csv"
    write_table(generate_click_log(6_000, seed=5, num_users=300, num_items=300), path)
    config = {
        "name": "bucketed",
        "seed": 1,
        "runs_dir": str(tmp / "runs"),
        "features": FEATURES,
        "tasks": [{"name": "ctr", "label": "click"}],
        "data": {"train": str(path), "eval_fraction": 0.2},
        "model": {
            "architecture": "multi_task",
            "backbone": "shared_bottom",
            "backbone_args": {"units": [8]},
            "tower_units": [4],
        },
        "train": {"batch_size": 256, "epochs": 1, "progress": False},
    }
    return train(load_config(config))


def test_fitted_boundaries_give_each_position_a_bucket(run):
    layer = run.model.feature_layer
    stats = layer.dense_stats
    # position takes the values 1..10, each at least 1/16 of the rows: every
    # one is a point mass, bounded by the midpoints to its neighbours.
    assert stats["position"]["boundaries"] == [i + 0.5 for i in range(1, 10)]
    assert len(stats["item_price"]["boundaries"]) == 7
    assert stats["item_hist_ctr"]["boundaries"] is None
    assert layer.output_dim == 4 + (3 + 1) + (8 + 1) + 1


def test_the_export_and_a_restored_run_score_as_the_trained_model(run):
    serve = tf.saved_model.load(str(run.export_path)).signatures["serving_default"]
    batch = {
        "item_category": tf.constant(["c1", "zz", "c3"]),
        "item_price": tf.constant([0.0, 9.5, 1e6]),
        "position": tf.constant([1.0, 4.0, 10.0]),
        "item_hist_ctr": tf.constant([0.02, 0.1, 0.0]),
    }
    direct = run.model(batch)["ctr"].numpy()[:, 0]
    np.testing.assert_allclose(serve(**batch)["ctr"].numpy(), direct, atol=1e-6)
    again = restore_run(run.run_dir).model(batch)["ctr"].numpy()[:, 0]
    np.testing.assert_allclose(again, direct, atol=1e-6)


@pytest.mark.parametrize(
    ("feature", "message"),
    [
        (
            {"name": "item_price", "kind": "dense", "keep_value": True},
            "config 'features', feature 'item_price': `keep_value` keeps the "
            "value beside the bucket embedding; give `boundaries` or "
            "`num_buckets` with it. Received: `keep_value=True` without buckets.",
        ),
        (
            {"name": "item_price", "kind": "dense", "num_buckets": 4, "keep_value": 1},
            "config 'features', feature 'item_price': `keep_value` must be a "
            "boolean. Received: `keep_value=1`",
        ),
    ],
)
def test_a_bad_keep_value_is_a_config_error_before_any_data_is_read(
    tmp_path, feature, message
):
    config = {
        "name": "bad",
        "runs_dir": str(tmp_path / "runs"),
        "features": [feature],
        "tasks": [{"name": "ctr", "label": "click"}],
        "data": {"train": str(tmp_path / "not_read.csv")},  # no such file
    }
    with pytest.raises(ConfigError) as error:
        train(load_config(config))
    assert str(error.value) == f"'features': {message}"
    assert not (tmp_path / "runs").exists()
