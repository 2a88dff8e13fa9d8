"""Click-log paths, formats and headers: resolving and inspecting files."""

import csv
import dataclasses
import glob
import io
import os
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mtrec.data.columns import _column_kinds
from mtrec.data.schema import ColumnSchema
from mtrec.data.schema import DataError

PathsLike = str | os.PathLike | Sequence[str | os.PathLike]

_CSV_SUFFIXES = {".csv": ",", ".csv.gz": ",", ".tsv": "\t", ".tsv.gz": "\t"}
_PARQUET_SUFFIXES = (".parquet", ".pq")
_FILE_FORMATS = ("auto", "csv", "parquet")
_PEEK_BYTES = 1 << 16


@dataclasses.dataclass(frozen=True)
class _FileInfo:
    """A click-log file whose header has been read."""

    path: Path
    index: int
    is_csv: bool
    delimiter: str
    columns: tuple[str, ...]
    mean_line_bytes: int = 1

    def where(self, row: int) -> str:
        """``line N`` (CSV, header is line 1) or ``row N`` (Parquet, 0-based)."""
        return f"line {row + 2}" if self.is_csv else f"row {row}"

    def error(self, row: int, column: str, message: str) -> DataError:
        return DataError(
            f"{self.path}, {self.where(row)}, column {column!r}: {message}"
        )


def _check_file_format(file_format: str) -> None:
    if file_format not in _FILE_FORMATS:
        raise ValueError(
            f"`file_format` must be one of {_FILE_FORMATS}. "
            f"Received: `file_format={file_format!r}`"
        )


def _suffix_format(path: Path) -> str | None:
    """``"csv"``, ``"parquet"`` or None, from the file name."""
    name = path.name.lower()
    if any(name.endswith(suffix) for suffix in _CSV_SUFFIXES):
        return "csv"
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    return None


def _resolve_paths(paths: PathsLike, file_format: str) -> list[Path]:
    """Expands files, directories and glob patterns into a list of files."""
    if isinstance(paths, str | os.PathLike):
        items = [paths]
    else:
        items = list(paths)
        if not items:
            raise DataError("No click-log files given: `paths` is an empty sequence")
    files: list[Path] = []
    for item in items:
        text = os.fspath(item)
        path = Path(text)
        if path.is_dir():
            found = sorted(
                child
                for child in path.iterdir()
                if child.is_file()
                and not child.name.startswith((".", "_"))
                and (file_format != "auto" or _suffix_format(child) is not None)
            )
            if not found:
                raise DataError(f"No click-log files in directory {text!r}")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        elif glob.has_magic(text):
            found = sorted(Path(p) for p in glob.glob(text, recursive=True))
            found = [p for p in found if p.is_file()]
            if not found:
                raise DataError(f"No click-log files match the pattern {text!r}")
            files.extend(found)
        else:
            raise DataError(f"{text}: no such file or directory")
    return files


#: The first bytes of every Parquet file.
_PARQUET_MAGIC = b"PAR1"


def _inspect(path: Path, index: int, file_format: str) -> _FileInfo:
    """Reads the header of one file; raises if it is empty or unreadable."""
    fmt = _suffix_format(path) if file_format == "auto" else file_format
    if fmt is None:
        raise DataError(
            f"{path}: cannot tell the file format from its name; expected a suffix "
            f"in {[*_CSV_SUFFIXES, *_PARQUET_SUFFIXES]}, or pass "
            "`file_format='csv'` or `file_format='parquet'`"
        )
    if fmt == "parquet":
        try:
            parquet = pq.ParquetFile(path)
        except (OSError, pa.ArrowException) as err:
            raise DataError(f"{path}: cannot read as Parquet: {err}") from err
        if parquet.metadata.num_rows == 0:
            raise DataError(f"{path} is empty (no data rows)")
        return _FileInfo(path, index, False, "", tuple(parquet.schema_arrow.names))
    delimiter = "\t" if path.name.lower().endswith((".tsv", ".tsv.gz")) else ","
    header, rest, line_bytes = _peek_csv(path)
    if header.startswith(_PARQUET_MAGIC):
        raise DataError(
            f"{path}: this is a Parquet file (it starts with {_PARQUET_MAGIC!r}) "
            "named like a CSV file; rename it to .parquet or set the format to "
            "'parquet' (config key data.format)"
        )
    if b"\x00" in header:
        raise DataError(f"{path}, line 1: not a text CSV file (it holds NUL bytes)")
    if not header.strip():
        raise DataError(f"{path} is empty (no header)")
    if not rest.strip():
        raise DataError(f"{path} is empty (a header but no data rows)")
    text = header.decode("utf-8-sig", errors="replace").rstrip("\r\n")
    try:
        columns = tuple(next(csv.reader(io.StringIO(text), delimiter=delimiter)))
    except csv.Error as err:
        raise DataError(f"{path}, line 1: cannot parse the header: {err}") from err
    return _FileInfo(path, index, True, delimiter, columns, line_bytes)


def _peek_csv(path: Path) -> tuple[bytes, bytes, int]:
    """The (decompressed) header line, a sample of what follows, mean line bytes.

    The mean line length of the sample sizes the parser's blocks later, so that
    a block holds many rows even when lines are long.
    """
    try:
        with pa.input_stream(str(path)) as stream:
            buffer = b""
            while b"\n" not in buffer:
                piece = stream.read(_PEEK_BYTES)
                if not piece:
                    break
                buffer += piece
            header, _, rest = buffer.partition(b"\n")
            while not rest.strip():
                piece = stream.read(_PEEK_BYTES)
                if not piece:
                    break
                rest += piece
            if len(rest) < _PEEK_BYTES:
                rest += stream.read(_PEEK_BYTES - len(rest))
    except (OSError, pa.ArrowException) as err:
        raise DataError(f"{path}: cannot read: {err}") from err
    lines = rest.count(b"\n")
    mean_line = max(1, len(rest) // lines) if lines else max(1, len(rest))
    return header, rest, mean_line


def _passthrough_of(info: _FileInfo, schema: ColumnSchema) -> tuple[str, ...]:
    """The passthrough columns present in a file (the first file decides)."""
    required = set(schema.required_columns)
    return tuple(
        name
        for name in schema.passthrough_columns
        if name in info.columns and name not in required
    )


def _check_columns(
    info: _FileInfo, schema: ColumnSchema, passthrough: Sequence[str]
) -> None:
    """Raises if a file lacks a required or an expected passthrough column."""
    missing = [name for name in schema.required_columns if name not in info.columns]
    missing = list(dict.fromkeys(missing))
    if missing:
        raise DataError(
            f"{info.path} is missing required column(s) {missing}; "
            f"the file has columns {list(info.columns)}"
        )
    absent = [name for name in passthrough if name not in info.columns]
    if absent:
        raise DataError(
            f"{info.path} is missing passthrough column(s) {absent} that the first "
            f"file has; every file must have the same passthrough columns. The file "
            f"has columns {list(info.columns)}"
        )
    needed = [*schema.required_columns, *passthrough]
    duplicated = sorted({name for name in needed if info.columns.count(name) > 1})
    if duplicated:
        raise DataError(f"{info.path} has duplicate column(s) {duplicated}")


def _prepare(
    paths: PathsLike, schema: ColumnSchema, file_format: str
) -> tuple[list[_FileInfo], tuple[str, ...]]:
    """Resolves and inspects every file eagerly; returns them and the passthrough."""
    files = _resolve_paths(paths, file_format)
    infos = [_inspect(path, index, file_format) for index, path in enumerate(files)]
    passthrough = _passthrough_of(infos[0], schema)
    _column_kinds(schema, passthrough)
    for info in infos:
        _check_columns(info, schema, passthrough)
    return infos, passthrough
