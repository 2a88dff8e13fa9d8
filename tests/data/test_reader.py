"""Tests of the streaming, validating click-log reader."""

import mtrec  # noqa: F401  (the Keras switch, before TensorFlow)

# isort: split
import collections
import gzip
import logging
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from mtrec.data import arrow_read
from mtrec.data.reader import ReadStats
from mtrec.data.reader import Split
from mtrec.data.reader import iter_chunks
from mtrec.data.reader import make_dataset
from mtrec.data.reader import output_signature
from mtrec.data.reader import read_frame
from mtrec.data.schema import ColumnSchema
from mtrec.data.schema import DataError

SCHEMA = ColumnSchema(
    string_columns=("user_id", "category"),
    int_columns=("item_id",),
    float_columns={"price": 0.5, "age": None},
    label_columns=("click", "conversion"),
    regression_label_columns=("dwell",),
    passthrough_columns={"true_ctr": "float", "session": "string"},
    label_requires={"conversion": "click"},
)
DROP_SCHEMA = ColumnSchema(
    string_columns=("user_id",),
    label_columns=("click", "conversion"),
    label_requires={"conversion": "click"},
    on_label_violation="drop",
)
SMALL_SCHEMA = ColumnSchema(
    string_columns=("user_id",), int_columns=("item_id",), label_columns=("click",)
)

HEADER = "user_id,category,item_id,price,age,click,conversion,dwell,true_ctr,extra"
GOOD_ROW = "u0,c0,1,1.0,30,0,0,0.5,0.1,x"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def log_with(rows: dict[int, str], total: int = 6) -> str:
    """A SCHEMA click log of ``total`` good rows, some replaced by ``rows``."""
    lines = [HEADER] + [rows.get(i, GOOD_ROW) for i in range(total)]
    return "\n".join(lines) + "\n"


def small_log(path: Path, rows: int, start: int = 0) -> Path:
    """A SMALL_SCHEMA log whose item_id numbers the rows from ``start``."""
    body = "".join(f"u{i % 7},{i},{i % 2}\n" for i in range(start, start + rows))
    return write(path, "user_id,item_id,click\n" + body)


def concat(chunks) -> dict[str, np.ndarray]:
    chunks = list(chunks)
    return {name: np.concatenate([c[name] for c in chunks]) for name in chunks[0]}


def error_pattern(path: Path, where: str, column: str | None = None) -> str:
    pattern = re.escape(path.name) + r".*" + re.escape(where)
    if column is not None:
        pattern += r".*column '" + re.escape(column) + "'"
    return pattern


# --------------------------------------------------------------------------- #
# Round trips
# --------------------------------------------------------------------------- #

EXPECTED = {
    "user_id": np.array(["u1", "NA", "", "null"], dtype=object),
    "category": np.array(["c1", "c2", "c3", ""], dtype=object),
    "item_id": np.array([1, 2, 3, 9_007_199_254_740_993], dtype=np.int64),
    "price": np.array([1.5, 0.5, 0.5, -2.0], dtype=np.float32),
    "age": np.array([30.0, 41.0, 52.0, 63.0], dtype=np.float32),
    "click": np.array([1.0, 0.0, 1.0, 0.0], dtype=np.float32),
    "conversion": np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32),
    "dwell": np.array([2.5, 0.0, -1.0, 3.0], dtype=np.float32),
    "true_ctr": np.array([0.25, np.nan, 0.5, 0.75], dtype=np.float32),
}
ROWS = [
    "u1,c1,1,1.5,30,1,1,2.5,0.25,a",
    "NA,c2,2.0,,41,0,0,0,,b",
    ",c3, 3 ,NA,52,1,0,-1,0.5,c",
    "null,,9007199254740993,-2, 63 ,0,0,3e0,0.75,d",
]


def assert_expected(chunk: dict[str, np.ndarray]) -> None:
    assert list(chunk) == [*SCHEMA.required_columns, "true_ctr"]
    for name, expected in EXPECTED.items():
        assert chunk[name].dtype == expected.dtype, name
        if expected.dtype == object:
            assert all(type(value) is str for value in chunk[name]), name
            assert chunk[name].tolist() == expected.tolist(), name
        else:
            np.testing.assert_array_equal(chunk[name], expected, err_msg=name)


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".tsv"])
def test_csv_round_trip(tmp_path, suffix):
    sep = "\t" if suffix == ".tsv" else ","
    text = "\n".join([HEADER, *ROWS]).replace(",", sep) + "\n"
    path = tmp_path / f"log{suffix}"
    if suffix.endswith(".gz"):
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        write(path, text)
    stats = ReadStats()
    chunk = concat(iter_chunks(path, SCHEMA, stats=stats))
    assert_expected(chunk)
    assert stats == ReadStats(rows_read=4, rows_yielded=4, rows_dropped=0, files=1)


def test_parquet_round_trip(tmp_path):
    table = pa.table(
        {
            "user_id": pa.array(["u1", "NA", None, "null"]),
            "category": pa.array(["c1", "c2", "c3", ""]),
            "item_id": pa.array([1, 2, 3, 9_007_199_254_740_993], pa.int64()),
            "price": pa.array([1.5, None, float("nan"), -2.0]),
            "age": pa.array([30, 41, 52, 63], pa.int32()),
            "click": pa.array([True, False, True, False]),
            "conversion": pa.array([1, 0, 0, 0], pa.int8()),
            "dwell": pa.array([2.5, 0.0, -1.0, 3.0], pa.float32()),
            "true_ctr": pa.array([0.25, None, 0.5, 0.75]),
            "extra": pa.array(["a", "b", "c", "d"]),
        }
    )
    path = tmp_path / "log.parquet"
    pq.write_table(table, path)
    assert_expected(concat(iter_chunks(path, SCHEMA)))


def test_read_frame(tmp_path):
    path = write(tmp_path / "log.csv", "\n".join([HEADER, *ROWS]) + "\n")
    frame = read_frame(path, SCHEMA)
    assert list(frame.columns) == [*SCHEMA.required_columns, "true_ctr"]
    assert frame["user_id"].tolist() == ["u1", "NA", "", "null"]
    assert frame["item_id"].dtype == np.int64
    assert frame["price"].dtype == np.float32
    assert len(frame) == 4
    evaluation = read_frame(path, SCHEMA, split=Split("eval", 0.5, seed=3))
    train = read_frame(path, SCHEMA, split=Split("train", 0.5, seed=3))
    assert len(evaluation) + len(train) == 4
    assert list(evaluation.columns) == list(frame.columns)


def _session_schema() -> ColumnSchema:
    return ColumnSchema(
        string_columns=("user_id",),
        int_columns=("item_id",),
        label_columns=("click",),
        passthrough_columns={"session": "string"},
    )


def test_extra_columns_are_ignored_and_passthrough_is_optional(tmp_path):
    path = write(tmp_path / "log.csv", "zzz,click,user_id,item_id\nq,1,u,7\n")
    (chunk,) = iter_chunks(path, SMALL_SCHEMA)
    assert list(chunk) == ["user_id", "item_id", "click"]
    (chunk,) = iter_chunks(path, _session_schema())
    assert list(chunk) == ["user_id", "item_id", "click"]


def test_csv_quoting_crlf_and_byte_order_mark(tmp_path):
    text = '\ufeffuser_id,item_id,click\r\n"a,b",1,1\r\n"say ""hi""",2,0\r\n'
    path = tmp_path / "log.csv"
    path.write_bytes(text.encode())
    chunk = concat(iter_chunks(path, SMALL_SCHEMA))
    assert chunk["user_id"].tolist() == ["a,b", 'say "hi"']
    assert chunk["item_id"].tolist() == [1, 2]


def test_parquet_integer_ids_in_a_string_column(tmp_path):
    path = tmp_path / "log.pq"
    table = pa.table(
        {"user_id": pa.array([7, None]), "item_id": [1, 2], "click": [1.0, 0.0]}
    )
    pq.write_table(table, path)
    chunk = concat(iter_chunks(path, SMALL_SCHEMA))
    assert chunk["user_id"].tolist() == ["7", ""]
    batches = list(make_dataset(path, SMALL_SCHEMA, batch_size=1, shuffle=False))
    assert [b["item_id"].numpy().tolist() for b in batches] == [[1], [2]]


def test_passthrough_missing_from_a_later_file(tmp_path):
    write(tmp_path / "a.csv", "user_id,item_id,click,session\nu,1,1,s\n")
    write(tmp_path / "b.csv", "user_id,item_id,click\nu,2,0\n")
    chunks = list(iter_chunks(tmp_path / "a.csv", _session_schema()))
    assert chunks[0]["session"].tolist() == ["s"]
    with pytest.raises(DataError, match=r"b\.csv is missing passthrough.*'session'"):
        list(iter_chunks(tmp_path, _session_schema()))
    with pytest.raises(DataError, match=r"b\.csv is missing passthrough.*'session'"):
        make_dataset(tmp_path, _session_schema(), batch_size=2, shuffle=False)


def test_output_signature():
    signature = output_signature(SCHEMA, ["true_ctr", "session"])
    assert list(signature) == [*SCHEMA.required_columns, "true_ctr", "session"]
    assert signature["user_id"] == tf.TensorSpec((None,), tf.string, "user_id")
    assert signature["item_id"].dtype == tf.int64
    assert signature["price"].dtype == tf.float32
    assert signature["click"].dtype == tf.float32
    assert signature["dwell"].dtype == tf.float32
    assert signature["session"].dtype == tf.string
    with pytest.raises(ValueError, match="'nope' is not declared"):
        output_signature(SCHEMA, ["nope"])


# --------------------------------------------------------------------------- #
# Paths and formats
# --------------------------------------------------------------------------- #


def test_glob_and_directory_are_sorted(tmp_path):
    small_log(tmp_path / "part-1.csv", 2, start=10)
    small_log(tmp_path / "part-0.csv", 2, start=0)
    write(tmp_path / "_SUCCESS", "")
    stats = ReadStats()
    by_glob = concat(iter_chunks(str(tmp_path / "part-*.csv"), SMALL_SCHEMA))
    by_dir = concat(iter_chunks(tmp_path, SMALL_SCHEMA, stats=stats))
    assert by_glob["item_id"].tolist() == [0, 1, 10, 11]
    assert by_dir["item_id"].tolist() == [0, 1, 10, 11]
    assert stats.files == 2
    listed = [tmp_path / "part-1.csv", tmp_path / "part-0.csv"]
    in_order = concat(iter_chunks(listed, SMALL_SCHEMA))
    assert in_order["item_id"].tolist() == [10, 11, 0, 1]


def test_no_match_names_the_pattern(tmp_path):
    pattern = str(tmp_path / "nothing-*.csv")
    with pytest.raises(DataError, match=re.escape(pattern)):
        iter_chunks(pattern, SMALL_SCHEMA)
    with pytest.raises(DataError, match="no such file"):
        iter_chunks(tmp_path / "absent.csv", SMALL_SCHEMA)


def test_file_format(tmp_path):
    path = small_log(tmp_path / "log.txt", 3)
    with pytest.raises(DataError, match=r"log\.txt: cannot tell the file format"):
        list(iter_chunks(path, SMALL_SCHEMA))
    chunk = concat(iter_chunks(path, SMALL_SCHEMA, file_format="csv"))
    assert chunk["item_id"].tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="`file_format` must be one of"):
        iter_chunks(path, SMALL_SCHEMA, file_format="xls")


# --------------------------------------------------------------------------- #
# Errors
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("text", ["", "user_id,item_id,click\n", "user_id\n\n \n"])
def test_empty_file(tmp_path, text):
    path = write(tmp_path / "click_log.csv", text)
    with pytest.raises(DataError, match=r"click_log\.csv is empty"):
        list(iter_chunks(path, SMALL_SCHEMA))
    with pytest.raises(DataError, match=r"click_log\.csv is empty"):
        make_dataset(path, SMALL_SCHEMA, batch_size=2, shuffle=False)


def test_empty_parquet(tmp_path):
    path = tmp_path / "click_log.parquet"
    pq.write_table(pa.table({"user_id": pa.array([], pa.string())}), path)
    with pytest.raises(DataError, match=r"click_log\.parquet is empty"):
        list(iter_chunks(path, SMALL_SCHEMA))


def test_missing_columns(tmp_path):
    path = write(tmp_path / "click_log.csv", "user_id,other\nu,1\n")
    message = (
        r"click_log\.csv is missing required column\(s\) \['item_id', 'click'\]; "
        r"the file has columns \['user_id', 'other'\]"
    )
    with pytest.raises(DataError, match=message):
        list(iter_chunks(path, SMALL_SCHEMA))
    with pytest.raises(DataError, match=message):
        make_dataset(path, SMALL_SCHEMA, batch_size=2, shuffle=False)


def test_a_later_file_missing_columns_and_duplicates(tmp_path):
    small_log(tmp_path / "a.csv", 3)
    write(tmp_path / "b.csv", "user_id,click\nu,1\n")
    chunks = iter_chunks(tmp_path, SMALL_SCHEMA)
    assert len(next(chunks)["item_id"]) == 3
    with pytest.raises(DataError, match=r"b\.csv is missing required.*'item_id'"):
        next(chunks)
    path = write(tmp_path / "c.csv", "user_id,item_id,click,user_id\nu,1,1,v\n")
    with pytest.raises(DataError, match=r"c\.csv has duplicate column\(s\)"):
        list(iter_chunks(path, SMALL_SCHEMA))


@pytest.mark.parametrize(
    ("bad_row", "expected", "got"), [("u,1,0,9", 3, 4), ("u,1", 3, 2), ("", 3, 1)]
)
def test_malformed_row(tmp_path, bad_row, expected, got):
    text = "user_id,item_id,click\nu,1,0\nu,2,1\nu,3,0\n" + bad_row + "\nu,4,1\n"
    path = write(tmp_path / "click_log.csv", text)
    pattern = rf"click_log\.csv, line 5: malformed CSV row: expected {expected} "
    pattern += rf"fields, got {got}"
    if bad_row == "":
        # A blank line is a row of empty fields: the int column rejects it.
        pattern = error_pattern(path, "line 5", "item_id")
    with pytest.raises(DataError, match=pattern):
        list(iter_chunks(path, SMALL_SCHEMA, chunk_rows=2))


@pytest.mark.parametrize(
    ("column", "row", "message"),
    [
        ("price", "u0,c0,1,abc,30,0,0,0.5,0.1,x", "expected a number, got 'abc'"),
        ("price", "u0,c0,1,inf,30,0,0,0.5,0.1,x", "must be finite, got 'inf'"),
        ("price", "u0,c0,1,-1e39,30,0,0,0.5,0.1,x", "does not fit in float32"),
        ("age", "u0,c0,1,1,,0,0,0.5,0.1,x", "no fill value, got ''"),
        ("age", "u0,c0,1,1,NaN,0,0,0.5,0.1,x", "no fill value, got 'NaN'"),
        ("item_id", "u0,c0,1.5,1,30,0,0,0.5,0.1,x", "expected an integer, got '1.5'"),
        ("item_id", "u0,c0,,1,30,0,0,0.5,0.1,x", "missing value in an int column"),
        ("item_id", "u0,c0,x1,1,30,0,0,0.5,0.1,x", "expected an integer, got 'x1'"),
        ("item_id", "u0,c0,0x10,1,30,0,0,0.5,0.1,x", "expected an integer, got '0x"),
        ("item_id", "u0,c0,1e30,1,30,0,0,0.5,0.1,x", "expected an integer, got '1e3"),
        ("item_id", "u0,c0,99999999999999999999,1,30,0,0,0.5,0.1,x", "out of int64"),
        ("click", "u0,c0,1,1,30,2,0,0.5,0.1,x", "label must be 0 or 1, got '2'"),
        ("click", "u0,c0,1,1,30,0.5,0,0.5,0.1,x", "label must be 0 or 1, got '0.5'"),
        ("click", "u0,c0,1,1,30,yes,0,0.5,0.1,x", "label must be 0 or 1, got 'yes'"),
        ("click", "u0,c0,1,1,30,,0,0.5,0.1,x", "label must be 0 or 1, got ''"),
        ("click", "u0,c0,1,1,30,NaN,0,0.5,0.1,x", "label must be 0 or 1, got 'NaN'"),
        ("dwell", "u0,c0,1,1,30,0,0,NaN,0.1,x", "finite number, got 'NaN'"),
        ("dwell", "u0,c0,1,1,30,0,0,,0.1,x", "finite number, got ''"),
        ("dwell", "u0,c0,1,1,30,0,0,-inf,0.1,x", "finite number, got '-inf'"),
        ("true_ctr", "u0,c0,1,1,30,0,0,1,high,x", "expected a number, got 'high'"),
    ],
)
def test_invalid_value(tmp_path, column, row, message):
    path = write(tmp_path / "click_log.csv", log_with({3: row}))
    pattern = error_pattern(path, "line 5", column) + ": .*" + re.escape(message)
    with pytest.raises(DataError, match=pattern):
        list(iter_chunks(path, SCHEMA))


def test_label_requires_violation_is_an_error(tmp_path):
    path = write(
        tmp_path / "click_log.csv",
        log_with({4: GOOD_ROW.replace("0,0,0.5", "0,1,0.5")}),
    )
    with pytest.raises(DataError, match=r"line 6, column 'conversion'.*'click' is 0"):
        list(iter_chunks(path, SCHEMA))


def test_label_requires_drop_counts_and_logs(tmp_path, caplog):
    text = "user_id,click,conversion\na,1,1\nb,0,1\nc,0,0\nd,0,1\ne,1,0\n"
    path = write(tmp_path / "click_log.csv", text)
    stats = ReadStats()
    with caplog.at_level(logging.WARNING, logger="mtrec.data.stream"):
        chunk = concat(iter_chunks(path, DROP_SCHEMA, chunk_rows=2, stats=stats))
    assert chunk["user_id"].tolist() == ["a", "c", "e"]
    assert stats == ReadStats(rows_read=5, rows_yielded=3, rows_dropped=2, files=1)
    assert any(
        "click_log.csv" in r.message and "dropped 2 of 5" in r.message
        for r in caplog.records
    )


def test_first_offending_row_in_file_order(tmp_path):
    # A bad label on line 6, a bad price on line 4, a label_requires violation on
    # line 3 (all in one chunk): line 3 is reported.
    rows = {
        1: GOOD_ROW.replace("0,0,0.5", "0,1,0.5"),
        2: GOOD_ROW.replace("1.0", "abc"),
        4: GOOD_ROW.replace("0,0,0.5", "7,0,0.5"),
    }
    path = write(tmp_path / "click_log.csv", log_with(rows))
    with pytest.raises(DataError, match=r"line 3, column 'conversion'"):
        list(iter_chunks(path, SCHEMA))
    del rows[1]
    path = write(tmp_path / "click_log.csv", log_with(rows))
    with pytest.raises(DataError, match=r"line 4, column 'price'"):
        list(iter_chunks(path, SCHEMA))


def test_value_error_before_a_malformed_row_comes_first(tmp_path):
    text = "user_id,item_id,click\nu,1,0\nu,2,5\nu,3,0\nu,4,1,extra\nu,5,0\n"
    path = write(tmp_path / "click_log.csv", text)
    with pytest.raises(DataError, match=r"line 3, column 'click'"):
        list(iter_chunks(path, SMALL_SCHEMA))


def test_error_in_third_chunk_has_the_right_line(tmp_path):
    path = small_log(tmp_path / "click_log.csv", 12)
    lines = path.read_text().splitlines()
    lines[10] = "u,9,3"  # data row 9: the second row of the third 4-row chunk
    write(path, "\n".join(lines) + "\n")
    chunks = []
    with pytest.raises(DataError, match=error_pattern(path, "line 11", "click")):
        for chunk in iter_chunks(path, SMALL_SCHEMA, chunk_rows=4):
            chunks.append(chunk)
    assert [len(c["click"]) for c in chunks] == [4, 4]


def test_parquet_errors_name_the_row(tmp_path):
    path = tmp_path / "click_log.parquet"
    table = pa.table(
        {
            "user_id": ["a", "b", "c"],
            "item_id": pa.array([1.0, 2.0, 2.5]),
            "click": pa.array([0, 1, 1], pa.int64()),
        }
    )
    pq.write_table(table, path)
    with pytest.raises(DataError, match=error_pattern(path, "row 2", "item_id")):
        list(iter_chunks(path, SMALL_SCHEMA))
    pq.write_table(table.set_column(1, "item_id", pa.array([1, None, 3])), path)
    with pytest.raises(DataError, match=error_pattern(path, "row 1", "item_id")):
        list(iter_chunks(path, SMALL_SCHEMA))


# --------------------------------------------------------------------------- #
# Split and streaming
# --------------------------------------------------------------------------- #


def test_split_is_disjoint_covering_and_deterministic(tmp_path):
    small_log(tmp_path / "a.csv", 1500, start=0)
    small_log(tmp_path / "b.csv", 1500, start=1500)

    def ids(part: str, chunk_rows: int, seed: int = 5) -> list[int]:
        split = Split(part, eval_fraction=0.2, seed=seed)
        chunks = iter_chunks(tmp_path, SMALL_SCHEMA, split=split, chunk_rows=chunk_rows)
        return concat(chunks)["item_id"].tolist()

    evaluation, train = ids("eval", 4096), ids("train", 4096)
    assert not set(evaluation) & set(train)
    assert sorted(evaluation + train) == list(range(3000))
    assert ids("eval", 97) == evaluation  # independent of chunking
    assert ids("eval", 4096, seed=6) != evaluation
    assert abs(len(evaluation) / 3000 - 0.2) < 0.03
    rows = np.arange(200_000)
    fraction = Split("eval", 0.1, seed=1).mask(0, rows).mean()
    assert abs(fraction - 0.1) < 0.003
    assert not np.array_equal(
        Split("eval", 0.1, seed=1).mask(0, rows),
        Split("eval", 0.1, seed=1).mask(1, rows),
    )


def test_split_arguments():
    with pytest.raises(ValueError, match="`eval_fraction` must be a number in"):
        Split("eval", 1.0, seed=1)
    with pytest.raises(ValueError, match="`part` must be one of"):
        Split("test", 0.1, seed=1)
    with pytest.raises(ValueError, match=r"`validation_fraction` must be a number in"):
        Split("eval", 0.1, seed=1, validation_fraction=0.2)


def test_validation_part_is_cut_from_the_held_out_rows():
    rows = np.arange(50_000)
    plain = {p: Split(p, 0.2, seed=3).mask(1, rows) for p in ("train", "eval")}
    cut = {
        p: Split(p, 0.2, seed=3, validation_fraction=0.05).mask(1, rows)
        for p in ("train", "eval", "validation")
    }
    np.testing.assert_array_equal(cut["train"], plain["train"])
    np.testing.assert_array_equal(cut["eval"] | cut["validation"], plain["eval"])
    assert not (cut["eval"] & cut["validation"]).any()
    assert cut["validation"].mean() == pytest.approx(0.05, abs=0.005)
    assert cut["eval"].mean() == pytest.approx(0.15, abs=0.005)


def test_chunks_never_exceed_chunk_rows(tmp_path):
    path = small_log(tmp_path / "click_log.csv", 1000)
    sizes = [len(c["item_id"]) for c in iter_chunks(path, SMALL_SCHEMA, chunk_rows=64)]
    assert max(sizes) <= 64
    assert sum(sizes) == 1000
    assert len(sizes) == math.ceil(1000 / 64)


def test_streaming_memory_does_not_grow_with_the_file(tmp_path, monkeypatch):
    # Arrow parses CSV in blocks and reads a bounded number of blocks ahead;
    # with small blocks a 5 MB file must never be held whole in Arrow memory.
    monkeypatch.setattr(arrow_read, "_CSV_BLOCK_BYTES", 1 << 14)
    path = tmp_path / "big.csv"
    n = 400_000
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "user_id": rng.integers(0, 1000, n).astype(str),
            "item_id": np.arange(n),
            "click": rng.integers(0, 2, n),
        }
    )
    frame.to_csv(path, index=False)
    file_bytes = path.stat().st_size
    baseline = pa.total_allocated_bytes()
    peak = rows = 0
    for chunk in iter_chunks(path, SMALL_SCHEMA, chunk_rows=2048):
        peak = max(peak, pa.total_allocated_bytes() - baseline)
        rows += len(chunk["item_id"])
        assert len(chunk["item_id"]) <= 2048
    assert rows == n
    assert peak < file_bytes / 4, (peak, file_bytes)


# --------------------------------------------------------------------------- #
# make_dataset
# --------------------------------------------------------------------------- #


def batches_of(dataset: tf.data.Dataset) -> list[list[int]]:
    return [batch["item_id"].numpy().tolist() for batch in dataset]


@pytest.fixture
def two_files(tmp_path) -> Path:
    small_log(tmp_path / "a.csv", 23, start=0)
    small_log(tmp_path / "b.csv", 30, start=23)
    return tmp_path


def test_make_dataset_in_order(two_files):
    stats = ReadStats()
    dataset = make_dataset(
        two_files, SMALL_SCHEMA, batch_size=10, shuffle=False, chunk_rows=7, stats=stats
    )
    batches = batches_of(dataset)
    assert [len(b) for b in batches] == [10, 10, 10, 10, 10, 3]
    assert sum(batches, []) == list(range(53))
    assert stats.rows_yielded == 53
    first = next(iter(dataset))
    assert first["user_id"].dtype == tf.string
    assert first["click"].dtype == tf.float32
    dropped = make_dataset(
        two_files, SMALL_SCHEMA, batch_size=10, shuffle=False, drop_remainder=True
    )
    assert [len(b) for b in batches_of(dropped)] == [10] * 5
    assert dropped.element_spec["item_id"].shape == (10,)


def test_make_dataset_shuffled(two_files):
    def make() -> tf.data.Dataset:
        return make_dataset(
            two_files,
            SMALL_SCHEMA,
            batch_size=8,
            shuffle=True,
            seed=11,
            shuffle_buffer_rows=16,
            chunk_rows=5,
        )

    dataset = make()
    first_epoch, second_epoch = batches_of(dataset), batches_of(dataset)
    assert collections.Counter(sum(first_epoch, [])) == collections.Counter(range(53))
    assert sorted(sum(second_epoch, [])) == list(range(53))
    assert all(len(b) == 8 for b in first_epoch[:-1]) and len(first_epoch[-1]) == 5
    assert first_epoch != second_epoch
    assert sum(first_epoch, []) != list(range(53))
    fresh = make()
    assert batches_of(fresh) == first_epoch
    assert batches_of(fresh) == second_epoch


def test_make_dataset_with_split(two_files):
    split = Split("eval", 0.3, seed=2)
    expected = concat(iter_chunks(two_files, SMALL_SCHEMA, split=split))["item_id"]
    dataset = make_dataset(
        two_files, SMALL_SCHEMA, batch_size=4, shuffle=True, seed=1, split=split
    )
    assert sorted(sum(batches_of(dataset), [])) == sorted(expected.tolist())


def test_make_dataset_error_in_a_later_chunk_surfaces(tmp_path):
    path = small_log(tmp_path / "click_log.csv", 40)
    lines = path.read_text().splitlines()
    lines[31] = "u,30,yes"
    write(path, "\n".join(lines) + "\n")
    dataset = make_dataset(
        path, SMALL_SCHEMA, batch_size=4, shuffle=False, chunk_rows=8
    )
    message = (
        r"click_log\.csv, line 32, column 'click': label must be 0 or 1, got 'yes'"
    )
    seen = []
    with pytest.raises(
        (tf.errors.InvalidArgumentError, tf.errors.UnknownError)
    ) as info:
        for batch in dataset:
            seen.append(len(batch["item_id"]))
    assert re.search(message, str(info.value))
    assert "DataError" in str(info.value)
    assert sum(seen) <= 24


def test_make_dataset_arguments(two_files):
    with pytest.raises(ValueError, match="`batch_size` must be an int >= 1"):
        make_dataset(two_files, SMALL_SCHEMA, batch_size=0, shuffle=False)
    with pytest.raises(ValueError, match="`chunk_rows` must be an int >= 1"):
        iter_chunks(two_files, SMALL_SCHEMA, chunk_rows=0)
