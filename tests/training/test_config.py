"""Run configs: YAML loading, overrides and errors that name the key."""

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
