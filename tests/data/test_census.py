"""Tests of the census-income loader, labels, split and feature specs."""

import mtrec  # noqa: F401  (the Keras switch, before TensorFlow)

# isort: split
import gzip
import json

import numpy as np
import pandas as pd
import pytest
from shared_data import CENSUS_FILE
from shared_data import requires_census_file

from mtrec.data import CENSUS_INPUT_SETS
from mtrec.data import COLLEGE_EDUCATION
from mtrec.data import TASK_GROUPS
from mtrec.data import census_features
from mtrec.data import census_input_columns
from mtrec.data import census_labels
from mtrec.data import load_census_income
from mtrec.data import prepare_census_income
from mtrec.data.census_inputs import CENSUS_COLUMNS
from mtrec.data.census_inputs import NUMERIC_COLUMNS
from mtrec.data.census_inputs import REMOVED_COLUMNS
from mtrec.data.schema import DataError
from mtrec.features.feature_set import FeatureSet

# The first line of census-income.test, with its leading spaces.
LINE = (
    "38, Private, 6, 36, 1st 2nd 3rd or 4th grade, 0, Not in universe, "
    "Married-civilian spouse present, Manufacturing-durable goods, Machine operators "
    "assmblrs & inspctrs, White, Mexican (Mexicano), Female, Not in universe, Not in "
    "universe, Full-time schedules, 0, 0, 0, Joint one under 65 & one 65+, Not in "
    "universe, Not in universe, Spouse of householder, Spouse of householder, "
    "1032.38, ?, ?, ?, Not in universe under 1 year old, ?, 4, Not in universe, "
    "Mexico, Mexico, Mexico, Foreign born- Not a citizen of U S , 0, Not in universe, "
    "2, 12, 95, - 50000."
)
EDUCATION = ["Children", "High school graduate", "Bachelors degree(BA AB BS)"]
MARITAL = ["Never married", "Divorced", "Married-civilian spouse present"]


def raw_line(i: int) -> str:
    """Row ``i`` of a small fake file: ``instance_weight == i`` identifies it."""
    fields = LINE.split(",")
    fields[CENSUS_COLUMNS.index("age")] = f" {20 + i % 50}"
    fields[CENSUS_COLUMNS.index("education")] = f" {EDUCATION[i % 3]}"
    fields[CENSUS_COLUMNS.index("marital_stat")] = f" {MARITAL[i % 3]}"
    fields[CENSUS_COLUMNS.index("instance_weight")] = f" {i}"
    fields[CENSUS_COLUMNS.index("income_50k")] = (
        " 50000+." if i % 10 == 0 else " - 50000."
    )
    return ",".join(fields)


@pytest.fixture
def small_file(tmp_path):
    path = tmp_path / "census-small.gz"
    with gzip.open(path, "wt") as f:
        f.write("\n".join(raw_line(i) for i in range(200)) + "\n")
    return path


@pytest.fixture(scope="module")
def full_frame():
    return load_census_income(CENSUS_FILE)


def test_columns_are_the_42_of_source_md():
    assert len(CENSUS_COLUMNS) == 42 == len(set(CENSUS_COLUMNS))
    assert CENSUS_COLUMNS[:3] == ("age", "class_worker", "det_ind_code")
    assert CENSUS_COLUMNS[24] == "instance_weight"
    assert CENSUS_COLUMNS[-1] == "income_50k"


def test_parses_and_strips_values(small_file):
    frame = load_census_income(small_file)
    assert frame.shape == (200, 42)
    assert list(frame.columns) == list(CENSUS_COLUMNS)
    first = frame.iloc[0]
    assert first["class_worker"] == "Private"
    assert first["income_50k"] == "50000+."
    # Inner spaces are kept, surrounding ones (also trailing) stripped.
    assert first["citizenship"] == "Foreign born- Not a citizen of U S"
    assert first["det_ind_code"] == "6"  # nominal code: a string
    assert first["wage_per_hour"] == 0.0
    assert first["instance_weight"] == 0.0
    for column in NUMERIC_COLUMNS:
        assert frame[column].dtype == np.float64
    assert frame["age"].tolist()[:3] == [20.0, 21.0, 22.0]


def test_labels_in_closed_form(small_file):
    labels = census_labels(load_census_income(small_file))
    i = np.arange(200)
    np.testing.assert_array_equal(labels["income_50k"], (i % 10 == 0).astype(int))
    np.testing.assert_array_equal(labels["never_married"], (i % 3 == 0).astype(int))
    np.testing.assert_array_equal(labels["education_college"], (i % 3 == 2).astype(int))


def test_college_values_exist_in_the_data_description():
    assert "Some college but no degree" not in COLLEGE_EDUCATION
    assert "High school graduate" not in COLLEGE_EDUCATION
    assert "Bachelors degree(BA AB BS)" in COLLEGE_EDUCATION
    assert len(COLLEGE_EDUCATION) == 6


@requires_census_file
def test_full_file_label_rates_match_source_md(full_frame):
    assert len(full_frame) == 99_762
    labels = census_labels(full_frame)
    assert int(labels["income_50k"].sum()) == 6_186
    assert labels["income_50k"].mean() == pytest.approx(0.0620, abs=5e-5)
    assert labels["never_married"].mean() == pytest.approx(0.4325, abs=5e-5)
    assert int(labels["education_college"].sum()) == 19_456
    # Every education value is a known category: none silently unmatched.
    assert set(COLLEGE_EDUCATION) <= set(full_frame["education"])
    assert full_frame["education"].nunique() == 17


@requires_census_file
def test_full_file_has_no_surrounding_spaces(full_frame):
    for column in CENSUS_COLUMNS:
        if column not in NUMERIC_COLUMNS:
            values = full_frame[column]
            assert not (values.str.strip() != values).any(), column


def read_split(paths) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(path) for name, path in paths.items()}


def test_split_is_deterministic_disjoint_with_fractions(small_file, tmp_path):
    first = read_split(
        prepare_census_income(small_file, tmp_path / "a", group=1, seed=3)
    )
    again = read_split(
        prepare_census_income(small_file, tmp_path / "b", group=1, seed=3)
    )
    other = read_split(
        prepare_census_income(small_file, tmp_path / "c", group=1, seed=4)
    )
    for name in ("train", "val", "test"):
        pd.testing.assert_frame_equal(first[name], again[name])
    assert not first["train"].equals(other["train"])
    ids = {name: set(frame["instance_weight"]) for name, frame in first.items()}
    assert {name: len(frame) for name, frame in first.items()} == {
        "train": 100,
        "val": 50,
        "test": 50,
    }
    assert ids["train"].isdisjoint(ids["val"])
    assert ids["train"].isdisjoint(ids["test"])
    assert ids["val"].isdisjoint(ids["test"])
    assert ids["train"] | ids["val"] | ids["test"] == set(range(200))


def test_split_other_fractions(small_file, tmp_path):
    frames = read_split(
        prepare_census_income(
            small_file, tmp_path, group=2, seed=0, fractions=(0.8, 0.1, 0.1)
        )
    )
    assert [len(frames[n]) for n in ("train", "val", "test")] == [160, 20, 20]


@pytest.mark.parametrize("group", [1, 2])
def test_split_columns_per_group(small_file, tmp_path, group):
    frames = read_split(
        prepare_census_income(small_file, tmp_path, group=group, seed=0)
    )
    columns = set(frames["train"].columns)
    assert set(TASK_GROUPS[group]) <= columns
    assert "marital_stat" not in columns
    # Group 1's files hold education (an input of its wider input sets);
    # group 2's do not: education is its label's source.
    assert ("education" in columns) == (group == 1)
    other_labels = {"income_50k", "education_college"} - set(TASK_GROUPS[group])
    assert not other_labels & columns
    inputs = ["paper", "education", "peers"] if group == 1 else ["paper"]
    for name in inputs:
        feature_names = {s["name"] for s in census_features(inputs=name, group=group)}
        assert feature_names <= columns
    for label in TASK_GROUPS[group]:
        assert set(frames["train"][label].unique()) <= {0, 1}
    # Labels follow the raw rows: row i has instance_weight i.
    train = frames["train"]
    i = train["instance_weight"].to_numpy().astype(int)
    np.testing.assert_array_equal(train["never_married"], (i % 3 == 0).astype(int))


def test_split_is_reused_and_rewritten_when_parameters_change(small_file, tmp_path):
    paths = prepare_census_income(small_file, tmp_path, group=1, seed=0)
    stamps = {name: path.stat().st_mtime_ns for name, path in paths.items()}
    info = json.loads((tmp_path / "split.json").read_text())
    assert info["seed"] == 0 and info["group"] == 1
    assert info["fractions"] == [0.5, 0.25, 0.25]
    assert info["rows"] == {"train": 100, "val": 50, "test": 50}
    prepare_census_income(small_file, tmp_path, group=1, seed=0)
    assert {n: p.stat().st_mtime_ns for n, p in paths.items()} == stamps
    prepare_census_income(small_file, tmp_path, group=2, seed=0)
    assert json.loads((tmp_path / "split.json").read_text())["group"] == 2
    assert "education_college" in pd.read_parquet(paths["train"]).columns


@requires_census_file
def test_full_file_split_sizes(tmp_path):
    paths = prepare_census_income(CENSUS_FILE, tmp_path, group=1, seed=0)
    frames = read_split(paths)
    assert {n: len(f) for n, f in frames.items()} == {
        "train": 49_881,
        "val": 24_940,
        "test": 24_941,
    }
    assert frames["train"]["income_50k"].mean() == pytest.approx(0.062, abs=0.005)


def test_features_exclude_removed_columns():
    specs = census_features()
    names = [spec["name"] for spec in specs]
    assert len(names) == 38 == len(set(names))
    assert not set(REMOVED_COLUMNS) & set(names)
    assert not {"never_married", "education_college"} & set(names)
    kinds = {spec["name"]: spec["kind"] for spec in specs}
    assert {n for n, k in kinds.items() if k == "dense"} == set(NUMERIC_COLUMNS) - {
        "instance_weight"
    }
    log1p = {spec["name"] for spec in specs if spec.get("log1p")}
    assert log1p == {
        "wage_per_hour",
        "capital_gains",
        "capital_losses",
        "stock_dividends",
    }
    assert kinds["det_ind_code"] == kinds["year"] == "categorical"
    feature_set = FeatureSet.from_dicts(specs, source="census_features()")
    assert len(feature_set.names) == 38


def test_input_sets_put_back_education_then_the_weight():
    names = {
        inputs: [spec["name"] for spec in census_features(inputs=inputs)]
        for inputs in CENSUS_INPUT_SETS
    }
    assert [len(names[k]) for k in ("paper", "education", "peers")] == [38, 39, 40]
    assert set(names["education"]) - set(names["paper"]) == {"education"}
    assert set(names["peers"]) - set(names["education"]) == {"instance_weight"}
    # File order, as the paper set.
    assert names["peers"] == [c for c in CENSUS_COLUMNS if c in set(names["peers"])]
    peers = {spec["name"]: spec for spec in census_features(inputs="peers")}
    assert peers["education"]["kind"] == "categorical"
    # By default a numeric column is its z-score and its quantile bucket.
    assert peers["instance_weight"] == {
        "name": "instance_weight",
        "kind": "dense",
        "log1p": True,
        "normalization": "zscore",
        "num_buckets": 64,
        "keep_value": True,
        "embedding_dim": 4,
    }
    # numeric="value": the z-score alone (the inputs of the runs before).
    values = census_features(embedding_dim=8, inputs="peers", numeric="value")
    assert {spec["name"]: spec for spec in values}["instance_weight"] == {
        "name": "instance_weight",
        "kind": "dense",
        "log1p": True,
        "normalization": "zscore",
    }
    assert [s["name"] for s in values] == names["peers"]
    assert {s["embedding_dim"] for s in values if s["kind"] == "categorical"} == {8}
    # Neither label source of group 1 is ever an input.
    assert not {"marital_stat", "income_50k"} & set(names["peers"])
    assert census_features(group=2) == census_features()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"inputs": "all"}, r"`inputs` must be one of \['education', 'paper', "),
        ({"inputs": "education", "group": 2}, "source of group 2's label"),
        ({"inputs": "peers", "group": 2}, "group 2 takes `inputs='paper'`"),
        ({"group": 3}, r"`group` must be one of \[1, 2\]. Received: `group=3`"),
    ],
)
def test_bad_input_set_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        census_features(**kwargs)
    with pytest.raises(ValueError, match=message):
        census_input_columns(**kwargs)


def test_an_unknown_numeric_encoding_is_refused():
    with pytest.raises(ValueError) as error:
        census_features(numeric="buckets")
    assert str(error.value) == (
        "`numeric` must be one of ['value_and_buckets', 'value']. "
        "Received: `numeric='buckets'`"
    )


@requires_census_file
def test_group_1_split_of_the_full_file_holds_the_peers_inputs(tmp_path):
    paths = prepare_census_income(CENSUS_FILE, tmp_path, group=1, seed=0)
    frame = pd.read_parquet(paths["val"])
    specs = census_features(inputs="peers")
    feature_set = FeatureSet.from_dicts(specs, source="census_features(peers)")
    assert set(feature_set.names) <= set(frame.columns)
    assert frame["education"].nunique() == 17
    assert frame["instance_weight"].min() > 0


def test_missing_file_names_it(tmp_path):
    missing = tmp_path / "nope.gz"
    with pytest.raises(FileNotFoundError, match="nope.gz"):
        load_census_income(missing)
    with pytest.raises(FileNotFoundError, match="nope.gz"):
        prepare_census_income(missing, tmp_path / "out", group=1, seed=0)


def test_truncated_gzip_is_a_data_error(small_file, tmp_path):
    truncated = tmp_path / "truncated.gz"
    truncated.write_bytes(small_file.read_bytes()[:-40])
    with pytest.raises(DataError, match=r"truncated\.gz.*truncated"):
        load_census_income(truncated)


def test_wrong_field_count_names_file_and_line(tmp_path):
    path = tmp_path / "short.csv"
    lines = [raw_line(i) for i in range(5)]
    lines[3] = lines[3].rsplit(",", 1)[0]  # 41 fields
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"short\.csv, line 4: expected 42 .* got 41"):
        load_census_income(path)


def test_non_numeric_value_names_line_and_column(tmp_path):
    path = tmp_path / "bad.csv"
    lines = [raw_line(i) for i in range(5)]
    fields = lines[1].split(",")
    fields[CENSUS_COLUMNS.index("weeks_worked")] = " many"
    lines[1] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"line 2, column 'weeks_worked'.*'many'"):
        load_census_income(path)


def test_empty_file_is_a_data_error(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("\n")
    with pytest.raises(DataError, match="empty.csv: the file has no rows"):
        load_census_income(path)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"group": 3, "seed": 0}, "`group` must be one of"),
        ({"group": 1, "seed": 0, "fractions": (0.5, 0.5)}, "`fractions` must be"),
        ({"group": 1, "seed": 0, "fractions": (0.5, 0.3, 0.3)}, "summing to 1"),
        ({"group": 1, "seed": 0, "fractions": (1.0, 0.0, 0.0)}, "positive"),
    ],
)
def test_bad_arguments(small_file, tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        prepare_census_income(small_file, tmp_path, **kwargs)
