"""train.distribution: the config section, TF_CONFIG checks, the strategy."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from test_train import small_config

from mtrec.data.synthetic import generate_click_log
from mtrec.training import ConfigError
from mtrec.training import cluster_spec
from mtrec.training import load_config
from mtrec.training import make_strategy
from mtrec.training import parse_tf_config
from mtrec.training import train
from mtrec.training import variable_partitioner
from mtrec.training.config import save_config
from mtrec.weighting import WEIGHTINGS

PS_CLUSTER = {
    "chief": ["127.0.0.1:2220"],
    "worker": ["127.0.0.1:2221", "127.0.0.1:2222"],
    "ps": ["127.0.0.1:2223", "127.0.0.1:2224"],
}


def _env(cluster, task_type, index=0) -> dict:
    return {
        "TF_CONFIG": json.dumps(
            {"cluster": cluster, "task": {"type": task_type, "index": index}}
        )
    }


def _config(tmp_path, distribution=None, weighting="fixed", data_path=""):
    raw = small_config(tmp_path, data_path or "unused.csv", export={"enabled": False})
    raw["train"].update({"batch_size": 256, "epochs": 1})
    if distribution is not None:
        raw["train"]["distribution"] = distribution
    raw["weighting"] = {"name": weighting}
    if not data_path:
        raw["data"].pop("train")
    return load_config(raw, in_memory=not data_path)


# -- the config section ------------------------------------------------------------


def test_default_is_none_and_round_trips_through_the_run_config(tmp_path):
    config = _config(tmp_path)
    assert config.train.distribution.strategy == "none"
    assert config.train.distribution.num_shards is None
    config = _config(tmp_path, {"strategy": "parameter_server", "num_shards": 4})
    save_config(config, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml", in_memory=True)
    assert again.train.distribution == config.train.distribution


@pytest.mark.parametrize(
    "section, message",
    [
        ({"strategy": "horovod"}, r"'train.distribution.strategy' must be one of"),
        ({"strategy": "mirrored", "num_shards": 2}, r"needs 'train.distribution"),
        (
            {"strategy": "parameter_server", "num_shards": 0},
            r"'train.distribution.num_shards' must be an int >= 1 or null. "
            r"Received: 0",
        ),
        (
            {"strategy": "parameter_server", "min_shard_bytes": True},
            r"'train.distribution.min_shard_bytes' must be int.*Received: True",
        ),
        (
            {"strategy": "parameter_server", "num_shards": 2, "min_shard_bytes": 9},
            r"set 'num_shards' or 'min_shard_bytes', not both",
        ),
        ({"strategy": "mirrored", "devices": 2}, r"devices"),
    ],
)
def test_bad_sections_are_refused_when_the_config_is_loaded(tmp_path, section, message):
    with pytest.raises(ConfigError, match=message):
        _config(tmp_path, section)


@pytest.mark.parametrize(
    "name", sorted(n for n, c in WEIGHTINGS.items() if c.uses_gradients)
)
def test_gradient_weightings_are_refused_under_a_strategy_naming_it(tmp_path, name):
    _config(tmp_path, {"strategy": "none"}, weighting=name)  # fine in one process
    with pytest.raises(ConfigError, match=f"'weighting.name: {name}'.*mirrored"):
        _config(tmp_path, {"strategy": "mirrored"}, weighting=name)


# -- TF_CONFIG ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [
        (None, "TF_CONFIG is not set"),
        ("{'cluster': 1}", "TF_CONFIG is not valid JSON.*line 1, column 2"),
        ("[1]", "must be a JSON object"),
        ('{"task": {}}', "TF_CONFIG.cluster must map roles"),
        ('{"cluster": {"boss": ["h:1"]}}', r"TF_CONFIG.cluster.boss: unknown role"),
        ('{"cluster": {"worker": []}}', r"cluster.worker must be a non-empty list"),
        ('{"cluster": {"worker": ["h"]}}', r"cluster.worker\[0\] must be 'host:port'"),
        ('{"cluster": {"worker": ["h:1"]}}', "TF_CONFIG.task must be"),
        (
            '{"cluster": {"worker": ["h:1"]}, "task": {"type": "ps"}}',
            r"task.type must be a role of the cluster \['worker'\]. Received: 'ps'",
        ),
        (
            '{"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": ""}}',
            "task.index must be an int",
        ),
        (
            '{"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": 1}}',
            r"task.index must be in \[0, 1\)",
        ),
    ],
)
def test_bad_tf_config_is_named_field_by_field(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_tf_config(text, "multi_worker_mirrored")


def test_one_process_strategies_ignore_tf_config():
    assert cluster_spec("none", {"TF_CONFIG": "not json"}) is None
    assert cluster_spec("mirrored", {}) is None


def test_cluster_requirements_of_each_strategy():
    workers = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    spec = cluster_spec("multi_worker_mirrored", _env(workers, "worker", 1))
    assert (spec.task_type, spec.task_index, spec.count("worker")) == ("worker", 1, 2)
    with pytest.raises(ConfigError, match="no 'ps'"):
        cluster_spec("multi_worker_mirrored", _env(PS_CLUSTER, "worker"))
    spec = cluster_spec("parameter_server", _env(PS_CLUSTER, "chief"))
    assert spec.count("ps") == 2
    with pytest.raises(ConfigError, match="one 'chief'.*Received cluster roles"):
        cluster_spec("parameter_server", _env(workers, "worker"))
    with pytest.raises(ConfigError, match="mtrec cluster-server. Received: 'worker'"):
        cluster_spec("parameter_server", _env(PS_CLUSTER, "worker", 1))


def test_variable_partitioner_shards_large_tables_over_the_ps_tasks(tmp_path):
    fixed = _config(tmp_path, {"strategy": "parameter_server", "num_shards": 3})
    partitioner = variable_partitioner(fixed)
    assert list(partitioner(tf.TensorShape([100, 4]), tf.float32)) == [3, 1]
    # Under 1 KiB (a loss weighting's per-task vector, a bias) stays whole.
    assert list(partitioner(tf.TensorShape([2]), tf.float32)) == [1]
    assert list(partitioner(tf.TensorShape([10, 4]), tf.float32)) == [1, 1]
    sized = _config(tmp_path, {"strategy": "parameter_server"})
    partitioner = variable_partitioner(sized, _env(PS_CLUSTER, "chief"))
    # 1M x 16 float32 (64 MB): one shard per ps task; a small kernel stays whole.
    assert list(partitioner(tf.TensorShape([1_000_000, 16]), tf.float32)) == [2, 1]
    assert list(partitioner(tf.TensorShape([64, 32]), tf.float32)) == [1, 1]


# -- the strategy ------------------------------------------------------------------


def test_make_strategy_none_mirrored_and_the_cluster_check(tmp_path):
    assert make_strategy(_config(tmp_path)) is tf.distribute.get_strategy()
    mirrored = make_strategy(_config(tmp_path, {"strategy": "mirrored"}))
    assert isinstance(mirrored, tf.distribute.MirroredStrategy)
    assert mirrored.num_replicas_in_sync >= 1
    config = _config(tmp_path, {"strategy": "parameter_server"})
    with pytest.raises(ConfigError, match="TF_CONFIG is not set"):
        make_strategy(config, {})
    with pytest.raises(ConfigError, match="task.type to be 'chief'"):
        make_strategy(config, _env(PS_CLUSTER, "worker", 1))


def test_train_checks_the_cluster_before_reading_data(tmp_path, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    missing = tmp_path / "no-such-log.csv"
    config = _config(tmp_path, {"strategy": "multi_worker_mirrored"}, data_path=missing)
    with pytest.raises(ConfigError, match="TF_CONFIG is not set"):
        train(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_mirrored_trains_as_one_process_does(tmp_path):
    frame = generate_click_log(2_000, seed=3, num_users=100, num_items=150)
    results = {}
    # The last run also trains on rows encoded once (train.encode_ids).
    for run, strategy in (("none",) * 2, ("mirrored",) * 2, ("encoded", "mirrored")):
        config = _config(tmp_path, {"strategy": strategy})
        config.train.encode_ids = run == "encoded"
        results[run] = train(config, tmp_path / run, train_rows=frame)
    for run in ("mirrored", "encoded"):
        model = results[run].model
        assert isinstance(model.distribute_strategy, tf.distribute.MirroredStrategy)
        for a, b in zip(
            results["none"].model.get_weights(), model.get_weights(), strict=True
        ):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    auc = {s: r.metrics["eval"]["ctr"]["auc"] for s, r in results.items()}
    assert auc["mirrored"] == pytest.approx(auc["none"], abs=1e-4)
    assert auc["encoded"] == pytest.approx(auc["none"], abs=1e-4)


TWO_REPLICAS = """
import json, sys
import mtrec  # the Keras switch first
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)
from mtrec.data.synthetic import generate_click_log
from mtrec.training import build_model, datasets, fit, load_config, prepare

raw = json.load(open(sys.argv[1]))
config = load_config(raw, in_memory=True)
frame = generate_click_log(3_000, seed=3, num_users=100, num_items=150)
prepared = prepare(config, train=frame)
# Whole batches only: an uneven last batch splits unevenly over the replicas.
config.train.steps_per_epoch = prepared.train_rows // config.train.batch_size
weights, losses = {}, {}
for name, strategy in [
    ("one", tf.distribute.get_strategy()),
    ("two", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])),
]:
    with strategy.scope():
        model = build_model(prepared, config)
        state = fit(model, datasets(prepared, config), config, sys.argv[2] + name)
    assert model.distribute_strategy.num_replicas_in_sync == (
        1 if name == "one" else 2
    )
    weights[name] = [v.numpy() for v in model.trainable_variables]
    losses[name] = {k: v[-1] for k, v in state.history.items() if "loss" in k}
diff = max(
    float(np.max(np.abs(a - b)))
    for a, b in zip(weights["one"], weights["two"], strict=True)
)
print(json.dumps({
    "max_abs_diff": diff,
    "steps": config.train.steps_per_epoch,
    "variables": len(weights["one"]),
    "losses": losses,
}))
"""


@pytest.mark.slow
def test_two_mirrored_replicas_train_as_one_process(tmp_path):
    """Two CPU replicas, each on half of every batch, make the updates of
    the mean loss over the whole batch (the loss is scaled per replica)."""
    raw = small_config(tmp_path, "unused.csv", export={"enabled": False})
    raw["data"].pop("train")
    raw["data"]["shuffle"] = False
    raw["train"].update({"batch_size": 256, "epochs": 1, "selection": {"metric": None}})
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(raw))
    done = subprocess.run(
        [sys.executable, "-c", TWO_REPLICAS, str(config_path), f"{tmp_path}/"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["steps"] >= 5 and result["variables"] >= 10
    assert result["max_abs_diff"] < 1e-5
    # The epoch's losses (total and per task) are means over the global
    # batches either way.
    one, two = result["losses"]["one"], result["losses"]["two"]
    assert {"loss", "ctr_loss"} <= one.keys() and one.keys() == two.keys()
    for key, value in one.items():
        assert two[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key


def test_batch_size_must_split_evenly_over_the_replicas(tmp_path):
    from mtrec.training.distribution import check_batch_size

    config = _config(tmp_path, {"strategy": "mirrored"})  # batch_size 256
    check_batch_size(config, 1)
    check_batch_size(config, 4)
    with pytest.raises(
        ConfigError,
        match=r"'train.batch_size' must be a multiple of the 3 replicas of "
        r"'train.distribution.strategy: mirrored'.*Received: 256",
    ):
        check_batch_size(config, 3)
