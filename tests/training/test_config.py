"""Run configs: YAML loading, overrides and errors that name the key."""

import re

import pytest

from mtrec import shipped_config
from mtrec.shipped import SHIPPED_CONFIGS
from mtrec.training import ConfigError
from mtrec.training import load_config
from mtrec.training.builders import build_feature_set
from mtrec.training.builders import build_tasks

BASE = {
    "features": [{"name": "city"}],
    "tasks": [{"name": "ctr", "label": "click"}],
    "data": {"train": "x.csv"},
}


@pytest.mark.parametrize("name", SHIPPED_CONFIGS)
def test_every_shipped_config_parses_and_builds(name):
    config = load_config(shipped_config(name))
    assert len(build_feature_set(config)) > 0
    assert build_tasks(config)


def test_overrides_parse_yaml_values_and_nested_keys():
    config = load_config(
        BASE,
        [
            "train.epochs=3",
            "model.backbone_args.units=[32, 16]",
            "data.label_requires={conversion: click}",
            "train.learning_rate=1e-2",
        ],
    )
    assert config.train.epochs == 3
    assert config.model.backbone_args == {"units": [32, 16]}
    assert config.data.label_requires == {"conversion": "click"}
    assert config.train.learning_rate == 0.01


def test_features_path_is_relative_to_the_config_file(tmp_path):
    (tmp_path / "f.yaml").write_text("- {name: a}\n")
    (tmp_path / "run.yaml").write_text(
        "features: f.yaml\ntasks: [{name: ctr, label: click}]\ndata: {train: x.csv}\n"
    )
    config = load_config(tmp_path / "run.yaml")
    assert config.features == str(tmp_path / "f.yaml")


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["trian.epochs=2"], r"unknown key\(s\) \['trian'\]"),
        (
            ["train.epoch=2"],
            r"unknown key\(s\) \['train.epoch'\]; valid keys under 'train'",
        ),
        (["train.epochs=two"], "'train.epochs' must be int. Received: 'two'"),
        (["train.batch_size=0"], "'train.batch_size' must be >= 1"),
        (
            ["train.learning_rate=0"],
            r"'train.learning_rate' must be a number > 0. Received: 0",
        ),
        (
            ["train.learning_rate=-0.01"],
            r"'train.learning_rate' must be a number > 0. Received: -0.01",
        ),
        (
            ["train.learning_rate=.nan"],
            r"'train.learning_rate' must be a number > 0. Received: nan",
        ),
        (
            ["train.embedding_learning_rate=0"],
            r"'train.embedding_learning_rate' must be a number > 0",
        ),
        (
            ["train.lr_final_fraction=1.5"],
            r"'train.lr_final_fraction' must be a number in \(0, 1\]. Received: 1.5",
        ),
        (["data.eval_fraction=1.5"], "'data.eval_fraction' must be in"),
        (["tasks=[]"], "'tasks' must list at least one task"),
        (["data.train=''"], "'data.train' must name the click log"),
        (["data.train="], "'data.train' must be str. Received: None"),
        (["train.epochs"], "--set expects key=value"),
        (["train.epochs=2", "train.epochs.x=1"], "'train.epochs' is not a section"),
    ],
)
def test_bad_configs_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(BASE, overrides)


def test_missing_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="'features': file not found"):
        load_config({**BASE, "features": "missing.yaml"})
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(bad)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["features=[]"],
            "'features' must be a non-empty list or the path of a YAML file",
        ),
        (
            ["data.format=xls"],
            "'data.format' must be one of ['auto', 'csv', 'parquet']. Received: 'xls'",
        ),
        (
            ["data.on_label_violation=skip"],
            "'data.on_label_violation' must be one of ['error', 'drop']. "
            "Received: 'skip'",
        ),
        (["data.chunk_rows=0"], "'data.chunk_rows' must be an int >= 1. Received: 0"),
        (
            ["train.training_metrics=1"],
            "'train.training_metrics' must be bool. Received: 1",
        ),
        # Two bad values: the one checked first is reported.
        (["tasks=[]", "data.eval_fraction=2"], "'tasks' must list at least one task"),
        (
            ["train.batch_size=0", "data.format=xls"],
            "'data.format' must be one of ['auto', 'csv', 'parquet']. Received: 'xls'",
        ),
        (
            ["train.learning_rate=0", "train.batch_size=0"],
            "'train.batch_size' must be >= 1. Received: 0",
        ),
        (
            ["train.tensorboard_update_freq=0", "train.steps_per_execution=0"],
            "'train.steps_per_execution' must be an int >= 1. Received: 0",
        ),
        (
            ["train.selection.mode=best", "train.tensorboard_update_freq=0"],
            "'train.tensorboard_update_freq' must be 'epoch' or an int >= 1. "
            "Received: 0",
        ),
    ],
)
def test_the_first_bad_value_gives_its_exact_message(overrides, message):
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        load_config(BASE, overrides)


def test_prepared_dir_must_not_be_a_file(tmp_path):
    path = tmp_path / "prepared"
    path.write_text("")
    message = f"'data.prepared_dir' must be a directory; {path} is a file"
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        load_config(BASE, [f"data.prepared_dir={path}"])
