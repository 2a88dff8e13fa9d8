"""Delimited text read in chunks, every bad cell located by file, line and column.

The public data sets ship as large comma-separated files (Ali-CCP's processed
``ctr_cvr.train`` has 38M lines). :func:`read_chunks` streams such a file
(plain or ``.gz``) in chunks of ``chunk_rows`` lines, checks the number of
fields of every line and keeps each row's physical line number, so the
converters (:func:`parse_ints`, :func:`parse_floats`, :func:`parse_binary`)
can name the line and column of the first bad value. Memory is bounded by
one chunk.

Example:

>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "log.csv"
>>> _ = path.write_text("click,price\\n1,2.5\\n0,x\\n")
>>> chunk = next(read_chunks(path, header=True))
>>> chunk.lines.tolist()
[2, 3]
>>> parse_floats(chunk, "price")
Traceback (most recent call last):
...
mtrec.data.schema.DataError: ...log.csv, line 3, column 'price': expected a number, ...
"""

import csv
import dataclasses
import gzip
import os
import pathlib
from collections.abc import Iterator
from collections.abc import Sequence

import numpy as np
import pandas as pd

from mtrec.data.schema import DataError

#: Lines per chunk by default: a few tens of MB of strings for 80 columns.
DEFAULT_CHUNK_ROWS = 200_000


@dataclasses.dataclass(frozen=True)
class TextChunk:
    """Consecutive rows of a delimited file, as strings.

    Attributes:
      path: the file.
      frame: one string column per field, named after the header (or the
        ``columns`` given to :func:`read_chunks`).
      lines: the 1-based physical line number of every row.
    """

    path: pathlib.Path
    frame: pd.DataFrame
    lines: np.ndarray

    def error(self, row: int, column: str, message: str) -> DataError:
        """A ``DataError`` naming the file, the line of ``row`` and ``column``."""
        return DataError(
            f"{self.path}, line {int(self.lines[row])}, column {column!r}: {message}"
        )


def open_text(path: str | os.PathLike):
    """Opens a plain or gzip-compressed text file for reading (UTF-8)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    return opener(path, "rt", encoding="utf-8", newline="")


def read_chunks(
    path: str | os.PathLike,
    *,
    header: bool,
    columns: Sequence[str] | None = None,
    delimiter: str = ",",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Iterator[TextChunk]:
    """Yields the rows of a delimited file in chunks of ``chunk_rows`` lines.

    Empty lines are skipped. Every other line must have as many fields as the
    header (or ``columns``).

    Args:
      path: the file (``.gz`` is decompressed on the fly).
      header: the first line names the columns.
      columns: the column names when ``header`` is False; with a header, the
        names the header must equal, if given.
      delimiter: the field separator.
      chunk_rows: the most rows per chunk.

    Raises:
      FileNotFoundError: no such file.
      DataError: an empty file, a header other than ``columns``, a line with
        another number of fields (naming the file, the line and the first
        missing or extra column), or a file that is not UTF-8 text.
    """
    if not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise ValueError(
            "`chunk_rows` must be an integer >= 1. "
            f"Received: `chunk_rows={chunk_rows!r}`"
        )
    if not header and not columns:
        raise ValueError("`columns` are required when the file has no header.")
    path = pathlib.Path(path)
    with open_text(path) as f:
        reader = csv.reader(f, delimiter=delimiter)
        try:
            names = _header(path, reader, header, columns)
            yield from _chunks(path, reader, names, chunk_rows)
        except (EOFError, OSError, UnicodeDecodeError, csv.Error) as err:
            raise DataError(
                f"{path}, line {reader.line_num}: cannot read the file (truncated, "
                f"compressed or not {delimiter!r}-delimited text): {err}"
            ) from err


def _header(path, reader, header: bool, columns) -> list[str]:
    if not header:
        return list(columns)
    names = next(reader, None)
    if names is None:
        raise DataError(f"{path}: the file is empty (expected a header line)")
    names = [name.strip() for name in names]
    if columns is not None and names != list(columns):
        raise DataError(
            f"{path}, line 1: expected the header {','.join(columns)!r}, "
            f"got {','.join(names)!r}"
        )
    return names


def _chunks(path, reader, names: list[str], chunk_rows: int) -> Iterator[TextChunk]:
    rows: list[list[str]] = []
    lines: list[int] = []
    width = len(names)
    for row in reader:
        if not row:
            continue
        if len(row) != width:
            raise _width_error(path, reader.line_num, names, len(row))
        rows.append(row)
        lines.append(reader.line_num)
        if len(rows) == chunk_rows:
            yield _chunk(path, rows, lines, names)
            rows, lines = [], []
    if rows:
        yield _chunk(path, rows, lines, names)


def _chunk(path, rows, lines, names) -> TextChunk:
    frame = pd.DataFrame(rows, columns=names, dtype=object)
    return TextChunk(path, frame, np.asarray(lines, dtype=np.int64))


def _width_error(path, line: int, names: list[str], got: int) -> DataError:
    width = len(names)
    if got < width:
        where = f"column {names[got]!r} (field {got + 1}) is missing"
    else:
        where = f"column {width + 1} is extra (after {names[-1]!r})"
    return DataError(
        f"{path}, line {line}, {where}: expected {width} fields, got {got}"
    )


def parse_floats(chunk: TextChunk, column: str) -> np.ndarray:
    """The column as finite float64; an empty or non-numeric cell is an error."""
    raw = chunk.frame[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        row = int(bad[0])
        raise chunk.error(row, column, f"expected a number, got {raw.iloc[row]!r}")
    return values


def parse_ints(chunk: TextChunk, column: str) -> np.ndarray:
    """The column as int64; a non-integer cell (``"1.5"``, ``""``) is an error.

    Integral floats (``"3.0"``) are accepted: some exports write ids that way.
    """
    raw = chunk.frame[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(values) | (values != np.round(values))
    bad = np.flatnonzero(bad | (np.abs(np.nan_to_num(values)) > 2**53))
    if bad.size:
        row = int(bad[0])
        raise chunk.error(row, column, f"expected an integer, got {raw.iloc[row]!r}")
    return values.astype(np.int64)


def parse_binary(chunk: TextChunk, column: str) -> np.ndarray:
    """A 0/1 label column as int8; any other value is an error."""
    raw = chunk.frame[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero((values != 0) & (values != 1))
    if bad.size:
        row = int(bad[0])
        raise chunk.error(row, column, f"expected a 0/1 label, got {raw.iloc[row]!r}")
    return values.astype(np.int8)


def parse_strings(chunk: TextChunk, column: str) -> np.ndarray:
    """The column as stripped strings (an empty cell stays ``""``)."""
    return chunk.frame[column].str.strip().to_numpy(dtype=object)
