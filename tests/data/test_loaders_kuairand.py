"""KuaiRand: the joined log of the shared Scenario-Wise-Rec sample."""

import re

import numpy as np
import pandas as pd
import pytest
import yaml
from loader_helpers import edited_copy
from loader_helpers import requires
from shared_data import SHARED_DATA

from mtrec import shipped_config
from mtrec.data.loaders import kuairand_features
from mtrec.data.loaders import prepare_kuairand
from mtrec.data.schema import DataError
from mtrec.features.feature_set import FeatureSet

SAMPLE = SHARED_DATA / "kuairand" / "scenariowiserec_kuairand_sample.csv"
pytestmark = requires("kuairand")
HEADER = SAMPLE.read_text().splitlines()[0].split(",") if SAMPLE.is_file() else []


def test_sample_labels_and_features(tmp_path):
    (out,) = prepare_kuairand(SAMPLE, tmp_path)
    frame = pd.read_parquet(out)
    source = pd.read_csv(SAMPLE)
    assert len(frame) == 200
    assert frame["click"].sum() == 32  # SOURCE.md: is_click rate 0.16
    play, duration = source["play_time_ms"], source["duration_ms"]
    threshold = np.where(duration > 0, np.minimum(duration, 18_000), 18_000)
    assert frame["long_view"].tolist() == (play >= threshold).astype(int).tolist()
    names = [spec["name"] for spec in kuairand_features()]
    assert set(names) | {"play_time_ms", "click", "long_view"} == set(frame.columns)
    # Float-written categories ("1.0") are written as their integer ("1").
    assert set(frame["onehot_feat4"]) == {str(int(v)) for v in source["onehot_feat4"]}
    FeatureSet.from_dicts(kuairand_features())


def test_behaviour_columns_become_labels(tmp_path):
    lines = SAMPLE.read_text().splitlines()
    rows = [f"{line},{i % 2},{i % 3 == 0:d}" for i, line in enumerate(lines[1:])]
    path = tmp_path / "log.csv"
    path.write_text("\n".join([lines[0] + ",is_like,long_view", *rows]) + "\n")
    (out,) = prepare_kuairand(path, tmp_path)
    frame = pd.read_parquet(out)
    assert frame["like"].tolist() == [i % 2 for i in range(200)]
    assert frame["long_view"].tolist() == [int(i % 3 == 0) for i in range(200)]


def set_column(column, value):
    def edit(fields):
        fields[HEADER.index(column)] = value
        return fields

    return edit


@pytest.mark.parametrize(
    "line, edit, message",
    [
        (3, lambda f: f[:-2], r"line 3, column 'server_width' \(field 41\) is missing"),
        (
            4,
            lambda f: f + ["9"],
            r"line 4, column 43 is extra \(after 'server_height'\)",
        ),
        (5, set_column("is_click", "2"), "column 'is_click': expected a 0/1 label"),
        (6, set_column("video_id", "v1"), "column 'video_id': expected an integer"),
        (7, set_column("fans_user_num", "x"), "column 'fans_user_num': expected a num"),
        (8, set_column("play_time_ms", ""), "column 'play_time_ms': expected a number"),
    ],
)
def test_malformed_rows_name_file_line_and_column(tmp_path, line, edit, message):
    bad = edited_copy(SAMPLE, tmp_path / "log.csv", line, edit)
    with pytest.raises(DataError) as err:
        prepare_kuairand(bad, tmp_path / "out")
    assert str(err.value).startswith(f"{bad}, line {line}, column ")
    assert re.search(message, str(err.value)), str(err.value)


def test_a_missing_column_is_named(tmp_path):
    bad = edited_copy(SAMPLE, tmp_path / "log.csv", 1, lambda f: ["uid", *f[1:]])
    with pytest.raises(DataError, match=r"log.csv, line 1, column 'user_id': missing"):
        prepare_kuairand(bad, tmp_path)


def test_features_and_tasks_are_those_of_the_shipped_config(tmp_path):
    config = yaml.safe_load(shipped_config("kuairand").read_text())
    features_file = shipped_config("kuairand").parent / config["features"]
    assert yaml.safe_load(features_file.read_text())["features"] == (
        kuairand_features()
    )
    (out,) = prepare_kuairand(SAMPLE, tmp_path)
    columns = set(pd.read_parquet(out).columns)
    assert {task["label"] for task in config["tasks"]} <= columns
