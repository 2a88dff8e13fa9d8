"""The loaders' shared parts: chunked reading, the label rule, the Parquet sink."""

import gzip

import pandas as pd
import pytest

from mtrec.data.loaders.delimited import parse_binary
from mtrec.data.loaders.delimited import parse_floats
from mtrec.data.loaders.delimited import parse_ints
from mtrec.data.loaders.delimited import read_chunks
from mtrec.data.loaders.label_rule import LabelRule
from mtrec.data.loaders.parquet_sink import ParquetSink
from mtrec.data.schema import DataError


@pytest.fixture
def log(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("click,id,price\n1,7,0.5\n\n0,8,1.5\n1,9,2\n0,10,3\n")
    return path


def test_chunks_keep_physical_line_numbers_across_blank_lines(log):
    chunks = list(read_chunks(log, header=True, chunk_rows=2))
    assert [c.lines.tolist() for c in chunks] == [[2, 4], [5, 6]]
    assert parse_ints(chunks[1], "id").tolist() == [9, 10]
    assert parse_floats(chunks[0], "price").tolist() == [0.5, 1.5]
    assert parse_binary(chunks[0], "click").tolist() == [1, 0]


def test_gzip_and_headerless_files(tmp_path):
    path = tmp_path / "log.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write("1,2\n3,4\n")
    (chunk,) = read_chunks(path, header=False, columns=["a", "b"])
    assert parse_ints(chunk, "b").tolist() == [2, 4]
    assert chunk.lines.tolist() == [1, 2]


@pytest.mark.parametrize(
    "line, message",
    [
        ("1,7", r"log.csv, line 3, column 'price' \(field 3\) is missing: expected 3 "),
        ("1,7,0.5,9", r"log.csv, line 3, column 4 is extra \(after 'price'\)"),
    ],
)
def test_a_wrong_field_count_names_file_line_and_column(tmp_path, line, message):
    path = tmp_path / "log.csv"
    path.write_text(f"click,id,price\n1,7,0.5\n{line}\n")
    with pytest.raises(DataError, match=message):
        list(read_chunks(path, header=True))


@pytest.mark.parametrize(
    "parse, column, value, expected",
    [
        (parse_ints, "id", "7.5", "expected an integer, got '7.5'"),
        (parse_ints, "id", "", "expected an integer, got ''"),
        (parse_floats, "price", "inf", "expected a number, got 'inf'"),
        (parse_binary, "click", "2", "expected a 0/1 label, got '2'"),
        (parse_binary, "click", "yes", "expected a 0/1 label, got 'yes'"),
    ],
)
def test_bad_values_name_file_line_and_column(tmp_path, parse, column, value, expected):
    row = {"click": "1", "id": "7", "price": "0.5", column: value}
    path = tmp_path / "log.csv"
    path.write_text("click,id,price\n1,1,1\n" + ",".join(row.values()) + "\n")
    (chunk,) = read_chunks(path, header=True)
    with pytest.raises(DataError) as err:
        parse(chunk, column)
    assert str(err.value) == f"{path}, line 3, column {column!r}: {expected}"


def test_header_mismatch_and_empty_file(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("click,idx\n1,2\n")
    with pytest.raises(DataError, match="line 1: expected the header 'click,id'"):
        list(read_chunks(path, header=True, columns=["click", "id"]))
    path.write_text("")
    with pytest.raises(DataError, match="the file is empty"):
        list(read_chunks(path, header=True))
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        list(read_chunks(tmp_path / "missing.csv", header=True))
    with pytest.raises(ValueError, match="Received: `chunk_rows=0`"):
        list(read_chunks(path, header=True, chunk_rows=0))


def test_label_rule_counts_over_chunks_and_reports_the_first_line():
    rule = LabelRule("purchase", "click", "drop")
    keep = rule.check(pd.Series([1, 0]), pd.Series([1, 1]), pd.Series([2, 3]))
    assert keep.tolist() == [True, False]
    rule.check(pd.Series([0]), pd.Series([1]), pd.Series([9]))
    assert (rule.count, rule.first_line) == (2, 3)
    assert rule.finish("f.csv") == 2
    rule.on_violation = "error"
    with pytest.raises(DataError) as err:
        rule.finish("f.csv")
    assert str(err.value).startswith(
        "f.csv, line 3, column 'purchase': 2 row(s) have purchase=1 with click=0"
    )
    with pytest.raises(ValueError, match="Received: `on_violation='keep'`"):
        LabelRule("purchase", "click", "keep")


def test_sink_leaves_no_file_after_an_error(tmp_path):
    path = tmp_path / "out.parquet"
    with pytest.raises(RuntimeError):
        with ParquetSink(path) as sink:
            sink.write(pd.DataFrame({"a": [1]}))
            raise RuntimeError("boom")
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []
