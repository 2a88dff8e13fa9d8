"""Ali-CCP: the processed CSV forms and PaddleRec's slot form, on the shared samples."""

import re

import pandas as pd
import pytest
import yaml
from loader_helpers import edited_copy
from loader_helpers import requires
from shared_data import SHARED_DATA

from mtrec import shipped_config
from mtrec.data.loaders import ALICCP_SCHEMAS
from mtrec.data.loaders import aliccp_features
from mtrec.data.loaders import detect_aliccp_form
from mtrec.data.loaders import prepare_aliccp
from mtrec.data.schema import DataError
from mtrec.features.feature_set import FeatureSet

ALICCP = SHARED_DATA / "ali-ccp"
TORCHREC_TRAIN = ALICCP / "torchrechub_ali_ccp_train_sample.csv"
TORCHREC_VAL = ALICCP / "torchrechub_ali_ccp_val_sample.csv"
AITM_TRAIN = ALICCP / "paddlerec_aitm_ctr_cvr_train_sample.csv"
AITM_TEST = ALICCP / "paddlerec_aitm_ctr_cvr_test_sample.csv"
SLOT = ALICCP / "paddlerec_esmm_slot_small.txt"
pytestmark = requires("ali-ccp")


@pytest.mark.parametrize(
    "path, form",
    [
        (TORCHREC_TRAIN, ("torchrechub", True)),
        (ALICCP / "scenariowiserec_ali_ccp_test_sample.csv", ("torchrechub", True)),
        (AITM_TRAIN, ("aitm", True)),
        (AITM_TEST, ("aitm", False)),
        (SLOT, ("slot", False)),
    ],
)
def test_every_shared_sample_form_is_detected(path, form):
    assert detect_aliccp_form(path) == form


def test_processed_torchrechub_form(tmp_path):
    (out,) = prepare_aliccp(TORCHREC_TRAIN, tmp_path)
    assert out == tmp_path / "torchrechub_ali_ccp_train_sample.parquet"
    frame = pd.read_parquet(out)
    source = pd.read_csv(TORCHREC_TRAIN)
    assert frame.shape == (100, 33)
    names = [spec["name"] for spec in aliccp_features("torchrechub")]
    assert list(frame.columns) == ["click", "purchase", *names]
    # Rates of SOURCE.md: 7 clicks, 1 purchase.
    assert (frame["click"].sum(), frame["purchase"].sum()) == (7, 1)
    assert frame["f205"].tolist() == source["205"].tolist()
    assert frame["d508"].tolist() == pytest.approx(source["D508"].tolist())
    assert str(frame["f101"].dtype) == "int64" and str(frame["click"].dtype) == "int8"


def test_processed_aitm_form_with_and_without_header(tmp_path):
    train, test = prepare_aliccp(
        [AITM_TRAIN, AITM_TEST], tmp_path, on_purchase_without_click="drop"
    )
    names = ["click", "purchase", *(s["name"] for s in aliccp_features())]
    for path, rows in ((train, 48 - 2), (test, 50 - 3)):
        frame = pd.read_parquet(path)
        assert list(frame.columns) == names
        assert len(frame) == rows
        assert not ((frame["purchase"] == 1) & (frame["click"] == 0)).any()
    assert pd.read_parquet(test)["f101"].iloc[0] == 180467  # the first line's id


@pytest.mark.parametrize("path, count, first", [(AITM_TRAIN, 2, 9), (AITM_TEST, 3, 7)])
def test_purchase_without_click_is_reported_with_count_and_first_line(
    tmp_path, caplog, path, count, first
):
    """The AITM samples hold such rows (SOURCE.md notes the train file's 2)."""
    with pytest.raises(DataError) as err:
        prepare_aliccp(path, tmp_path)
    assert str(err.value).startswith(
        f"{path}, line {first}, column 'purchase': {count} row(s) have purchase=1 "
        f"with click=0 (the first on line {first})"
    )
    assert list(tmp_path.iterdir()) == []  # nothing half-written
    prepare_aliccp(path, tmp_path, on_purchase_without_click="drop")
    assert f"{count} row(s) have purchase=1 with click=0" in caplog.text


def test_slot_form(tmp_path):
    (out,) = prepare_aliccp(SLOT, tmp_path)
    frame = pd.read_parquet(out)
    names = ["click", "purchase", *(s["name"] for s in aliccp_features("slot"))]
    assert list(frame.columns) == names
    assert len(frame) == 10
    first = frame.iloc[0]
    assert (first["click"], first["purchase"], first["f101"]) == (1, 1, "12")
    assert first["f210"].split("|")[:2] == ["1", "2"]
    assert len(first["f150_14"].split("|")) == 191
    assert frame["f126"].eq("").all()  # absent from every line: empty lists
    FeatureSet.from_dicts(aliccp_features("slot"))


def replace_field(index, value):
    def edit(fields):
        fields[index] = value
        return fields

    return edit


@pytest.mark.parametrize(
    "source, line, edit, message",
    [
        (
            TORCHREC_TRAIN,
            5,
            lambda fields: fields[:-1],
            r"line 5, column 'D853' \(field 33\) is missing: expected 33 fields",
        ),
        (
            TORCHREC_TRAIN,
            4,
            replace_field(0, "yes"),
            "line 4, column 'click': expected",
        ),
        (
            TORCHREC_TRAIN,
            6,
            replace_field(1, "1"),  # a purchase on a row without click
            r"line 6, column 'purchase': 1 row\(s\) have purchase=1 with click=0",
        ),
        (TORCHREC_TRAIN, 7, replace_field(11, "x"), "line 7, column '205': expected"),
        (
            TORCHREC_TRAIN,
            8,
            replace_field(30, "nan"),
            "line 8, column 'D509': expected",
        ),
        (
            AITM_TEST,
            3,
            lambda fields: fields + ["0"],
            r"line 3, column 21 is extra \(after '301'\)",
        ),
        (SLOT, 2, replace_field(2, "2"), "line 2, column 'purchase': expected a 0/1"),
        (SLOT, 3, replace_field(5, "210"), "line 3, column 6: expected 'field:id'"),
        (SLOT, 4, replace_field(4, "999:1"), "line 4, column 5: expected 'field:id'"),
        (
            SLOT,
            5,
            lambda fields: fields + ["101:77"],
            "line 5, column 'f101': field 101 holds one id per row, got 2",
        ),
    ],
)
def test_malformed_rows_name_file_line_and_column(
    tmp_path, source, line, edit, message
):
    bad = edited_copy(source, tmp_path / source.name, line, edit)
    with pytest.raises(DataError) as err:
        prepare_aliccp(bad, tmp_path / "out")
    assert str(err.value).startswith(str(bad))
    assert re.search(message, str(err.value)), str(err.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_file_of_no_known_form_is_refused(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(DataError, match=r"x.csv, line 1: not an Ali-CCP file"):
        prepare_aliccp(path, tmp_path)


def test_features_are_those_of_the_shipped_config():
    config = yaml.safe_load(shipped_config("aliccp").read_text())
    features_file = shipped_config("aliccp").parent / config["features"]
    shipped = yaml.safe_load(features_file.read_text())["features"]
    assert shipped == aliccp_features("aitm")
    labels = {task["label"] for task in config["tasks"]}
    assert labels == {"click", "purchase"}
    # The aitm fields are in every processed form.
    assert set(ALICCP_SCHEMAS["aitm"]) <= set(ALICCP_SCHEMAS["torchrechub"])
    with pytest.raises(ValueError, match="Received: `schema='raw'`"):
        aliccp_features("raw")


def test_the_shipped_config_trains_one_epoch_on_the_prepared_sample(tmp_path):
    from mtrec.training import load_config
    from mtrec.training import train

    train_path, eval_path = prepare_aliccp([TORCHREC_TRAIN, TORCHREC_VAL], tmp_path)
    config = load_config(
        shipped_config("aliccp"),
        [
            f"data.train={train_path}",
            f"data.eval={eval_path}",
            f"runs_dir={tmp_path / 'runs'}",
            "train.epochs=1",
            "train.batch_size=32",
            "train.progress=false",
            "train.selection.metric=null",
            "model.backbone_args.units=[8]",
            "model.tower_units=[4]",
            "eval.plots=false",
            "export.enabled=false",
        ],
    )
    result = train(config, run_dir=tmp_path / "runs" / "aliccp")
    assert result.feature_set.names == [s["name"] for s in aliccp_features()]
    assert set(result.metrics["eval"]) >= {"ctr", "cvr", "ctcvr"}
    assert len(result.metrics["train"]["ctr_loss"]) == 1
