"""AliExpress in MTReclib's form, on the shared torch-rechub and FuxiCTR samples."""

import re

import pandas as pd
import pytest
import yaml
from loader_helpers import edited_copy
from loader_helpers import requires
from shared_data import SHARED_DATA

from mtrec import shipped_config
from mtrec.data.loaders import ALIEXPRESS_COLUMNS
from mtrec.data.loaders import aliexpress_features
from mtrec.data.loaders import prepare_aliexpress
from mtrec.data.schema import DataError

ALIEXPRESS = SHARED_DATA / "aliexpress"
TRAIN = ALIEXPRESS / "torchrechub_aliexpress_train_sample.csv"
FUXI_TEST = ALIEXPRESS / "fuxictr_tiny_mtl_test.csv"
pytestmark = requires("aliexpress")


@pytest.mark.parametrize(
    "name, rows, clicks, conversions",
    [
        ("torchrechub_aliexpress_train_sample.csv", 100, 60, 2),
        ("torchrechub_aliexpress_test_sample.csv", 20, 10, 2),
        ("fuxictr_tiny_mtl_train.csv", 100, 3, 2),
        ("fuxictr_tiny_mtl_test.csv", 100, 6, 1),
    ],
)
def test_samples_keep_rows_columns_and_the_rates_of_source_md(
    tmp_path, name, rows, clicks, conversions
):
    (out,) = prepare_aliexpress(ALIEXPRESS / name, tmp_path)
    frame = pd.read_parquet(out)
    assert list(frame.columns) == list(ALIEXPRESS_COLUMNS)
    assert len(frame) == rows
    assert (frame["click"].sum(), frame["conversion"].sum()) == (clicks, conversions)
    source = pd.read_csv(ALIEXPRESS / name)
    assert frame["categorical_7"].tolist() == source["categorical_7"].tolist()
    assert frame["numerical_63"].tolist() == pytest.approx(source["numerical_63"])


def replace_field(index, value):
    def edit(fields):
        fields[index] = value
        return fields

    return edit


CONVERSION = ALIEXPRESS_COLUMNS.index("conversion")
CLICK = ALIEXPRESS_COLUMNS.index("click")


@pytest.mark.parametrize(
    "line, edit, message",
    [
        (3, lambda f: f[:40], r"line 3, column 'numerical_24' \(field 41\) is missing"),
        (4, lambda f: f + ["1"], r"line 4, column 83 is extra \(after 'conversion'\)"),
        (
            5,
            replace_field(CLICK, "0.5"),
            "line 5, column 'click': expected a 0/1 label",
        ),
        (6, replace_field(1, "abc"), "line 6, column 'categorical_1': expected an int"),
        (7, replace_field(20, ""), "line 7, column 'numerical_4': expected a number"),
        (
            8,
            lambda f: [*f[:CLICK], "0", "1"],
            r"line 8, column 'conversion': 1 row\(s\) have conversion=1 with click=0",
        ),
    ],
)
def test_malformed_rows_name_file_line_and_column(tmp_path, line, edit, message):
    bad = edited_copy(FUXI_TEST, tmp_path / "test.csv", line, edit)
    with pytest.raises(DataError) as err:
        prepare_aliexpress(bad, tmp_path / "out")
    assert str(err.value).startswith(f"{bad}, line {line}, column ")
    assert re.search(message, str(err.value)), str(err.value)


def test_conversion_without_click_can_be_dropped(tmp_path, caplog):
    bad = edited_copy(
        FUXI_TEST, tmp_path / "test.csv", 8, lambda f: [*f[:-2], "0", "1"]
    )
    (out,) = prepare_aliexpress(bad, tmp_path, on_conversion_without_click="drop")
    assert len(pd.read_parquet(out)) == 99
    assert "line 8, column 'conversion': 1 row(s)" in caplog.text


def test_another_header_is_refused(tmp_path):
    bad = edited_copy(FUXI_TEST, tmp_path / "test.csv", 1, replace_field(0, "query"))
    with pytest.raises(DataError, match=r"test.csv, line 1: expected the header"):
        prepare_aliexpress(bad, tmp_path)


def test_features_are_those_of_the_shipped_config():
    config = yaml.safe_load(shipped_config("aliexpress").read_text())
    features_file = shipped_config("aliexpress").parent / config["features"]
    assert yaml.safe_load(features_file.read_text())["features"] == (
        aliexpress_features()
    )
    assert {task["label"] for task in config["tasks"]} == {"click", "conversion"}
