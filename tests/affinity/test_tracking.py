"""TAG affinity tracking: the lookahead leaves training as it is."""

import numpy as np
import pytest
import tensorflow as tf

from mtrec.affinity import AffinityTracker
from mtrec.affinity import affinity_from_history
from mtrec.affinity import gradient_cosines
from mtrec.data import generate_click_log
from mtrec.data import write_table
from mtrec.training import load_config
from mtrec.training import train

FEATURES = [
    {"name": "user_id", "kind": "categorical", "dtype": "int64", "embedding_dim": 4},
    {"name": "item_category", "kind": "categorical", "embedding_dim": 4},
    {"name": "position", "kind": "categorical", "dtype": "int64", "embedding_dim": 2},
    {"name": "item_price", "kind": "dense", "log1p": True},
]


@pytest.fixture(scope="module")
def log_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("affinity") / "log.csv"
    write_table(generate_click_log(8_000, seed=3, num_users=200, num_items=300), path)
    return path


def _config(tmp_path, log_path, backbone="shared_bottom", **train_args):
    args = (
        {"units": [8]}
        if backbone == "shared_bottom"
        else {
            "num_experts": 2,
            "expert_units": [8],
        }
    )
    return load_config(
        {
            "name": "aff",
            "seed": 4,
            "runs_dir": str(tmp_path / "runs"),
            "features": FEATURES,
            "tasks": [
                {"name": "ctr", "label": "click"},
                {"name": "cvr", "label": "conversion", "condition": "click"},
            ],
            "data": {"train": str(log_path), "label_requires": {"conversion": "click"}},
            "model": {
                "backbone": backbone,
                "backbone_args": args,
                "tower_units": [4],
                "tower_dropout": 0.0,
            },
            "train": {"batch_size": 512, "epochs": 2, "progress": False, **train_args},
            "export": {"enabled": False},
        }
    )


@pytest.mark.parametrize("backbone", ["shared_bottom", "mmoe"])
def test_tracking_does_not_change_the_trajectory(tmp_path, log_path, backbone):
    plain = train(_config(tmp_path / "a", log_path, backbone))
    tracked = train(_config(tmp_path / "b", log_path, backbone, affinity_every_steps=3))
    for a, b in zip(
        plain.model.trainable_variables, tracked.model.trainable_variables, strict=True
    ):
        assert a.name == b.name
        assert (a.numpy() == b.numpy()).all(), a.name
    affinity = tracked.metrics["affinity"]
    # ESMM's supervised outputs are the tasks: ctr and ctcvr.
    assert affinity["tasks"] == ["ctr", "ctcvr"]
    assert len(affinity["epochs"]) == 2
    values = np.array(
        [
            [affinity["affinity"][i][j] for j in affinity["tasks"]]
            for i in affinity["tasks"]
        ]
    )
    assert np.isfinite(values).all()
    # A step on a task lowers its own loss on the same batch.
    assert values[0, 0] > 0 and values[1, 1] > 0
    cosine = np.array(
        [
            [affinity["cosine"][i][j] for j in affinity["tasks"]]
            for i in affinity["tasks"]
        ]
    )
    np.testing.assert_allclose(np.diag(cosine), 1.0, rtol=1e-5)
    np.testing.assert_allclose(cosine, cosine.T, rtol=1e-5)
    assert (np.abs(cosine) <= 1.0 + 1e-6).all()
    # Two epochs: the epochs after the first are the second.
    assert affinity["after_first_epoch"] == {
        key: affinity["epochs"][1][key] for key in ("affinity", "cosine")
    }
    assert "affinity" not in plain.metrics


def test_affinity_from_history_averages_the_epochs():
    history = {
        "loss": [1.0, 0.5],
        "affinity/a->a": [0.2, 0.4],
        "affinity/a->b": [0.1, -0.1],
        "affinity/b->a": [0.0, 0.2],
        "affinity/b->b": [0.3, 0.3],
    }
    result = affinity_from_history(history)
    assert result["tasks"] == ["a", "b"]
    assert result["affinity"]["a"]["a"] == pytest.approx(0.3)
    assert result["affinity"]["a"]["b"] == pytest.approx(0.0)
    assert result["epochs"][1]["affinity"]["b"]["a"] == pytest.approx(0.2)
    assert "cosine" not in result  # a history from before the cosine
    assert result["after_first_epoch"]["affinity"]["a"]["b"] == pytest.approx(-0.1)
    assert affinity_from_history({"loss": [1.0]}) is None
    history.update(
        {
            "affinity/a->a": [0.2, 0.4, 0.6],
            "affinity/a->b": [0.1, -0.1, 0.3],
            "affinity/b->a": [0.0, 0.2, 0.1],
            "affinity/b->b": [0.3, 0.3, 0.3],
            "affinity_cosine/a->a": [1.0, 1.0, 1.0],
            "affinity_cosine/a->b": [-0.9, 0.2, 0.4],
            "affinity_cosine/b->a": [-0.9, 0.2, 0.4],
            "affinity_cosine/b->b": [1.0, 1.0, 1.0],
        }
    )
    result = affinity_from_history(history)
    assert result["affinity"]["a"]["b"] == pytest.approx(0.1)
    assert result["cosine"]["b"]["a"] == pytest.approx(-0.1)
    assert result["after_first_epoch"]["affinity"]["a"]["b"] == pytest.approx(0.1)
    assert result["after_first_epoch"]["affinity"]["b"]["a"] == pytest.approx(0.15)
    assert result["after_first_epoch"]["cosine"]["a"]["b"] == pytest.approx(0.3)
    assert result["epochs"][0]["cosine"]["a"]["b"] == pytest.approx(-0.9)
    one_epoch = {k: v[:1] for k, v in history.items()}
    assert "after_first_epoch" not in affinity_from_history(one_epoch)


def test_gradient_cosines_by_hand():
    # Task a: dense gradient [1, 0]; embedding rows 0, 0, 2 (row 0 twice, so
    # its gradient is [2, 0]) and [0, 1] on row 2. Task b: dense [0, 1], row 2
    # [0, 3]. Task c: no gradient. Flattened: a = [1, 0, 2, 0, 0, 1] and
    # b = [0, 1, 0, 0, 0, 3], a·b = 3, |a|² = 6, |b|² = 10.
    dense = tf.Variable(tf.zeros(2))
    table = tf.Variable(tf.zeros((3, 2)))
    grads = [
        [
            tf.constant([1.0, 0.0]),
            tf.IndexedSlices(
                tf.constant([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]),
                tf.constant([0, 0, 2]),
                tf.constant([3, 2]),
            ),
        ],
        [
            tf.constant([0.0, 1.0]),
            tf.IndexedSlices(
                tf.constant([[0.0, 3.0]]), tf.constant([2]), tf.constant([3, 2])
            ),
        ],
        [None, None],
    ]
    cosine = gradient_cosines([dense, table], grads).numpy()
    expected = np.array(
        [[1.0, 3.0 / np.sqrt(60.0), 0.0], [3.0 / np.sqrt(60.0), 1.0, 0.0], [0, 0, 0]]
    )
    np.testing.assert_allclose(cosine, expected, rtol=1e-6, atol=1e-7)
    # A dense gradient of the table from one task: both are compared densely.
    grads[1][1] = tf.constant([[0.0, 0.0], [0.0, 0.0], [0.0, 3.0]])
    np.testing.assert_allclose(
        gradient_cosines([dense, table], grads).numpy(), expected, rtol=1e-6, atol=1e-7
    )


def test_tracker_errors():
    with pytest.raises(ValueError, match=r"`every` must be an int >= 1"):
        AffinityTracker(every=0)
    tracker = AffinityTracker(every=1)
    with pytest.raises(ValueError, match="not attached"):
        tracker.on_epoch_begin(0)
    with pytest.raises(ValueError, match="no affinity measured yet"):
        tracker.matrix()


def test_config_checks(tmp_path, log_path):
    from mtrec.training import ConfigError

    with pytest.raises(ConfigError, match="'train.affinity_every_steps' must be"):
        _config(tmp_path, log_path, affinity_every_steps=0)
    tf.keras.backend.clear_session()


def test_cli_affinity_writes_the_matrix_heatmap_and_groups(tmp_path, log_path, capsys):
    import json

    import matplotlib.image
    import yaml

    from mtrec.cli import main

    config = _config(tmp_path, log_path)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config.to_dict()))
    assert main(["affinity", str(path), "--every", "0"]) == 2
    assert "--every and --max-groups must be >= 1" in capsys.readouterr().err
    run_dir = tmp_path / "aff-run"
    args = ["affinity", str(path), "--every", "4", "--run-dir", str(run_dir)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "affinity Z(i->j)" in printed and "2 group(s):" in printed
    written = json.loads((run_dir / "affinity.json").read_text())
    assert written["tasks"] == ["ctr", "ctcvr"]
    assert set(written["groups"]) == {"2"}
    assert sorted(written["groups"]["2"]["assignment"]) == ["ctcvr", "ctr"]
    # Two epochs: the groups on the cosine after the first are given too.
    assert "groups on the gradient cosine after epoch 1" in printed
    steady = written["groups_after_first_epoch_cosine"]["2"]
    assert sorted(steady["assignment"]) == ["ctcvr", "ctr"]
    image = matplotlib.image.imread(run_dir / "affinity.png")
    assert image.ndim == 3 and image.shape[0] >= 200 and image.shape[1] >= 200
    assert image[..., :3].std() > 0.05  # not a blank canvas
