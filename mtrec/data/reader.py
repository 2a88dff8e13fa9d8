"""Streams click logs (CSV, TSV, Parquet) into validated numpy chunks and tf.data.

The reader turns files into flat ``{column: np.ndarray}`` chunks, validating
every row against a :class:`~mtrec.data.schema.ColumnSchema` on the way: a bad
value raises :class:`~mtrec.data.schema.DataError` naming the file, the line
(CSV, 1-based, the header is line 1) or row (Parquet, 0-based), the column and
the value. Nothing is ever silently coerced: ``1.0`` is a valid int but ``1.5``
is not, a non-numeric float is an error, a binary label is 0 or 1.

Memory does not grow with the file: CSV is parsed block by block with
``pyarrow.csv.open_csv`` and re-cut into chunks of ``chunk_rows`` rows, Parquet
is read with ``ParquetFile.iter_batches(batch_size=chunk_rows)``.

Example:

>>> import pathlib, tempfile
>>> logs = pathlib.Path(tempfile.mkdtemp())
>>> _ = (logs / "day1.csv").write_text("user_id,click\\nu1,0\\nu2,1\\nu3,0\\n")
>>> schema = ColumnSchema(string_columns=("user_id",), label_columns=("click",))
>>> for chunk in iter_chunks(f"{logs}/*.csv", schema, chunk_rows=65_536):
...     print(list(chunk["user_id"]), chunk["click"].tolist())
['u1', 'u2', 'u3'] [0.0, 1.0, 0.0]
>>> ds = make_dataset(logs, schema, batch_size=4096, shuffle=True, seed=1)
>>> sorted(next(iter(ds)))
['click', 'user_id']
"""

import contextlib
import csv
import dataclasses
import glob
import io
import itertools
import logging
import math
import os
import re
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import tensorflow as tf

from mtrec.data.schema import ColumnSchema
from mtrec.data.schema import DataError

logger = logging.getLogger(__name__)

PathsLike = str | os.PathLike | Sequence[str | os.PathLike]
#: Columns of a chunk or batch inside the reader: string columns may still be
#: Arrow arrays (see ``_stream``); everything public is numpy.
_Columns = dict[str, np.ndarray | pa.Array]

#: Cells that mean "missing" in a numeric column (pandas' default NA strings).
#: String columns never treat them as missing: a category "NA" stays "NA".
_MISSING_TOKENS = (
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
)
_INT_PATTERN = r"^[+-]?[0-9]+$"
#: Largest magnitude below which every integer is exact in a float64.
_MAX_EXACT_FLOAT_INT = 2**53
_FLOAT32_MAX = float(np.finfo(np.float32).max)

_CSV_SUFFIXES = {".csv": ",", ".csv.gz": ",", ".tsv": "\t", ".tsv.gz": "\t"}
_PARQUET_SUFFIXES = (".parquet", ".pq")
_FILE_FORMATS = ("auto", "csv", "parquet")

#: Bytes per CSV parser block. Arrow reads a bounded number of blocks ahead
#: (about 40), so this, not the file size, bounds the raw text held in memory.
_CSV_BLOCK_BYTES = 1 << 18
#: A block holds at least this many mean-length lines.
_MIN_LINES_PER_BLOCK = 64
_PEEK_BYTES = 1 << 16

_MASK64 = (1 << 64) - 1
_GOLDEN64 = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)

# Column kinds: how a column is validated and converted.
_STRING = "string"
_INT = "int"
_FLOAT = "float"
_LABEL = "label"
_REGRESSION = "regression label"
_PASSTHROUGH_FLOAT = "passthrough float"
_PASSTHROUGH_STRING = "passthrough string"


# --------------------------------------------------------------------------- #
# Public API
# --------------------------------------------------------------------------- #


@dataclasses.dataclass(frozen=True)
class Split:
    """Deterministic train/eval split of rows by a hash of (seed, file index, row).

    A row goes to ``"eval"`` iff ``h(seed, file_index, row_index) / 2**64 <
    eval_fraction``, where ``h`` is a splitmix64 hash computed with numpy uint64
    arithmetic, ``file_index`` is the file's position in the expanded, sorted
    path list and ``row_index`` the 0-based data row in the file (for CSV,
    ``line - 2``). A row's part therefore depends on nothing but its position:
    not on ``chunk_rows``, not on other rows, not on file shuffling. The two parts
    are disjoint and together cover every row.

    The split is applied after validation (a bad row is an error in either part)
    and before ``label_requires`` drops, so ``ReadStats.rows_dropped`` counts the
    violations inside the selected part only.

    Attributes:
      part: ``"train"`` or ``"eval"``: which side of the split to keep.
      eval_fraction: expected fraction of rows in ``"eval"``, in ``(0, 1)``.
      seed: hash seed; the same seed gives the same split on every machine.

    Example:

    >>> train = Split("train", eval_fraction=0.1, seed=7)
    >>> evaluation = Split("eval", eval_fraction=0.1, seed=7)
    """

    part: str
    eval_fraction: float
    seed: int

    def __post_init__(self):
        if self.part not in ("train", "eval"):
            raise ValueError(
                f"`part` must be 'train' or 'eval'. Received: `part={self.part!r}`"
            )
        if isinstance(self.eval_fraction, bool) or not (
            isinstance(self.eval_fraction, int | float) and 0 < self.eval_fraction < 1
        ):
            raise ValueError(
                "`eval_fraction` must be a number in (0, 1). "
                f"Received: `eval_fraction={self.eval_fraction!r}`"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer):
            raise ValueError(f"`seed` must be an int. Received: `seed={self.seed!r}`")

    def mask(self, file_index: int, row_indices: np.ndarray) -> np.ndarray:
        """Which rows belong to this part.

        Args:
          file_index: the file's position in the expanded path list.
          row_indices: 0-based data row indices within the file.

        Returns:
          A bool array, True for the rows in ``self.part``.
        """
        hashed = _split_hash(self.seed, file_index, row_indices)
        threshold = np.uint64(math.ceil(math.ldexp(float(self.eval_fraction), 64)))
        in_eval = hashed < threshold
        return in_eval if self.part == "eval" else ~in_eval


@dataclasses.dataclass
class ReadStats:
    """Counters a reader updates while it streams (they accumulate over epochs).

    Attributes:
      rows_read: data rows parsed from files (both parts of a split).
      rows_yielded: rows that passed validation and the split, i.e. returned.
      rows_dropped: rows of the selected part dropped for ``label_requires``
        violations (``on_label_violation="drop"``).
      files: files opened.
    """

    rows_read: int = 0
    rows_yielded: int = 0
    rows_dropped: int = 0
    files: int = 0


def iter_chunks(
    paths: PathsLike,
    schema: ColumnSchema,
    *,
    chunk_rows: int = 65_536,
    file_format: str = "auto",
    split: Split | None = None,
    stats: ReadStats | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """Reads click logs chunk by chunk, validating every row.

    Each chunk is a flat ``{column: np.ndarray}`` with at most ``chunk_rows``
    rows: every required column of ``schema``, then every passthrough column
    found in the first file. String columns are object arrays of ``str`` (a
    missing cell is ``""``; a literal ``"NA"`` stays ``"NA"``), int columns
    int64, float columns float32 (a missing cell takes the fill value), binary
    and regression labels float32, passthrough floats float32 (missing is NaN)
    and passthrough strings object ``str``. _Columns the schema does not mention
    are ignored. Chunks left empty by the split or by drops are skipped.

    Paths and arguments are checked when this is called; files are then read
    one after another as the iterator is consumed, and each file's header is
    checked when the reader reaches it. Errors are reported for the first
    offending row in file order.

    Args:
      paths: a file, a directory (its click-log files, sorted), a glob pattern
        (sorted matches), or a sequence of those (order kept).
      schema: the columns to read and how to validate them.
      chunk_rows: maximum rows per chunk; memory use is proportional to it.
      file_format: ``"auto"`` (by suffix: ``.csv``, ``.csv.gz``, ``.tsv``,
        ``.tsv.gz``, ``.parquet``, ``.pq``), ``"csv"`` (tab-separated if the
        name ends in ``.tsv``/``.tsv.gz``, else comma) or ``"parquet"``.
      split: keep only one part of a deterministic train/eval split.
      stats: counters to update while reading.

    Returns:
      An iterator of ``{column: np.ndarray of shape (n,)}`` with
      ``1 <= n <= chunk_rows``.

    Raises:
      DataError: a file is missing, empty, lacks required columns, is malformed
        or holds an invalid value.
      ValueError: an invalid argument.
    """
    _check_positive_int("chunk_rows", chunk_rows)
    _check_file_format(file_format)
    _column_kinds(schema, passthrough=())  # validates the schema early
    files = _resolve_paths(paths, file_format)
    # Headers are read lazily, when the stream reaches each file.
    infos = (_inspect(path, index, file_format) for index, path in enumerate(files))
    return _stream(
        infos,
        schema,
        chunk_rows=chunk_rows,
        split=split,
        stats=stats,
        passthrough=None,
        num_files=len(files),
    )


def output_signature(
    schema: ColumnSchema, passthrough: Sequence[str] = ()
) -> dict[str, tf.TensorSpec]:
    """The ``tf.TensorSpec`` of every column a reader yields, batch-first.

    Args:
      schema: the column schema.
      passthrough: the passthrough columns present (a subset of
        ``schema.passthrough_columns``).

    Returns:
      ``{column: tf.TensorSpec(shape=(None,), dtype)}`` in output order:
      tf.string for string columns, tf.int64 for int columns, tf.float32 for
      everything else.

    Raises:
      ValueError: a passthrough name that the schema does not declare.
    """
    dtypes = {
        _STRING: tf.string,
        _INT: tf.int64,
        _FLOAT: tf.float32,
        _LABEL: tf.float32,
        _REGRESSION: tf.float32,
        _PASSTHROUGH_FLOAT: tf.float32,
        _PASSTHROUGH_STRING: tf.string,
    }
    kinds = _column_kinds(schema, passthrough)
    return {
        name: tf.TensorSpec(shape=(None,), dtype=dtypes[kind], name=name)
        for name, kind in kinds.items()
    }


def make_dataset(
    paths: PathsLike,
    schema: ColumnSchema,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int | None = None,
    shuffle_buffer_rows: int = 262_144,
    chunk_rows: int = 65_536,
    file_format: str = "auto",
    split: Split | None = None,
    drop_remainder: bool = False,
    stats: ReadStats | None = None,
) -> tf.data.Dataset:
    """A ``tf.data.Dataset`` of flat dict batches streamed from click logs.

    Every file header is checked before the dataset is built, so an empty file
    or missing columns raise :class:`DataError` here. Value errors are found
    while streaming: tf.data then raises ``tf.errors.InvalidArgumentError`` (or
    ``UnknownError``) whose message contains the ``DataError`` text.

    Batching is done in numpy. With ``shuffle=True`` the file order is permuted
    and rows are shuffled within windows of about ``shuffle_buffer_rows`` rows;
    every new iteration (epoch) draws a new order from ``(seed, epoch)``, so two
    datasets built with the same seed give the same sequence of epochs. With
    ``shuffle=False`` file and row order are kept exactly.

    Args:
      paths: files, a directory or a glob pattern (see :func:`iter_chunks`).
      schema: the columns to read and how to validate them.
      batch_size: rows per batch.
      shuffle: shuffle files and rows.
      seed: seed of the shuffle; None draws fresh entropy (not reproducible).
      shuffle_buffer_rows: rows shuffled together.
      chunk_rows: rows read per chunk.
      file_format: ``"auto"``, ``"csv"`` or ``"parquet"``.
      split: keep only one part of a deterministic train/eval split.
      drop_remainder: drop the last, smaller batch; batches then have the static
        shape ``(batch_size,)``.
      stats: counters updated while the dataset is iterated.

    Returns:
      A dataset of ``{column: tensor of shape (batch,)}`` (see
      :func:`output_signature`), prefetched.

    Raises:
      DataError: no file matches, or a file is empty or lacks columns.
      ValueError: an invalid argument.
    """
    _check_positive_int("batch_size", batch_size)
    _check_positive_int("shuffle_buffer_rows", shuffle_buffer_rows)
    _check_positive_int("chunk_rows", chunk_rows)
    _check_file_format(file_format)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"`seed` must be an int or None. Received: `seed={seed!r}`")
    infos, passthrough = _prepare(paths, schema, file_format)
    signature = output_signature(schema, passthrough)
    epochs = itertools.count()

    def generate() -> Iterator[dict[str, np.ndarray]]:
        epoch = next(epochs)
        if shuffle:
            entropy = None if seed is None else [seed % 2**64, epoch]
            rng = np.random.default_rng(entropy)
            order = [infos[i] for i in rng.permutation(len(infos))]
        else:
            rng = None
            order = list(infos)
        logger.debug("Dataset epoch %d over %d file(s)", epoch, len(order))
        chunks = _stream(
            order,
            schema,
            chunk_rows=chunk_rows,
            split=split,
            stats=stats,
            passthrough=passthrough,
            num_files=len(order),
            strings_as_arrow=True,
        )
        if rng is None:
            batches = _batches(chunks, batch_size, drop_remainder)
        else:
            batches = _shuffled_batches(
                chunks, batch_size, drop_remainder, shuffle_buffer_rows, rng
            )
        for batch in batches:
            yield {name: _to_numpy(values) for name, values in batch.items()}

    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    if drop_remainder:
        dataset = dataset.map(
            lambda batch: {
                k: tf.ensure_shape(v, (batch_size,)) for k, v in batch.items()
            }
        )
    return dataset.prefetch(tf.data.AUTOTUNE)


def read_frame(
    paths: PathsLike,
    schema: ColumnSchema,
    *,
    file_format: str = "auto",
    split: Split | None = None,
) -> pd.DataFrame:
    """Reads and validates whole click logs into one DataFrame (small data only).

    _Columns and dtypes are those of :func:`iter_chunks` (string columns use
    pandas' string dtype); rows keep file order, with a fresh RangeIndex.

    Args:
      paths: files, a directory or a glob pattern (see :func:`iter_chunks`).
      schema: the columns to read and how to validate them.
      file_format: ``"auto"``, ``"csv"`` or ``"parquet"``.
      split: keep only one part of a deterministic train/eval split.

    Returns:
      The validated rows.

    Raises:
      DataError: as :func:`iter_chunks`.
    """
    _check_file_format(file_format)
    infos, passthrough = _prepare(paths, schema, file_format)
    kinds = _column_kinds(schema, passthrough)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in kinds}
    chunks = _stream(
        infos,
        schema,
        chunk_rows=65_536,
        split=split,
        stats=None,
        passthrough=passthrough,
        num_files=len(infos),
    )
    for chunk in chunks:
        for name, values in chunk.items():
            parts[name].append(values)
    columns = {}
    for name, kind in kinds.items():
        if parts[name]:
            values = np.concatenate(parts[name])
        else:
            values = np.empty(0, dtype=_numpy_dtype(kind))
        if kind in (_STRING, _PASSTHROUGH_STRING):
            columns[name] = pd.Series(values, dtype="str")
        else:
            columns[name] = pd.Series(values)
    return pd.DataFrame(columns)


# --------------------------------------------------------------------------- #
# Paths, formats and headers
# --------------------------------------------------------------------------- #


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


def _check_positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be an int >= 1. Received: `{name}={value!r}`")


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
    if not header.strip():
        raise DataError(f"{path} is empty (no header)")
    if not rest.strip():
        raise DataError(f"{path} is empty (a header but no data rows)")
    text = header.decode("utf-8-sig", errors="replace").rstrip("\r\n")
    columns = tuple(next(csv.reader(io.StringIO(text), delimiter=delimiter)))
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


def _column_kinds(schema: ColumnSchema, passthrough: Sequence[str]) -> dict[str, str]:
    """``{column: kind}`` in output order: required columns, then passthrough."""
    kinds: dict[str, str] = {}
    groups = (
        (_STRING, schema.string_columns),
        (_INT, schema.int_columns),
        (_FLOAT, tuple(schema.float_columns)),
        (_LABEL, schema.label_columns),
        (_REGRESSION, schema.regression_label_columns),
    )
    for kind, names in groups:
        for name in names:
            if name in kinds and kinds[name] != kind:
                raise ValueError(
                    f"Column {name!r} is declared both as a {kinds[name]} column "
                    f"and as a {kind} column in the schema"
                )
            kinds[name] = kind
    for name in passthrough:
        if name not in schema.passthrough_columns:
            raise ValueError(
                f"Passthrough column {name!r} is not declared in the schema's "
                f"`passthrough_columns` {sorted(schema.passthrough_columns)}"
            )
        if name not in kinds:
            if schema.passthrough_columns[name] == "float":
                kinds[name] = _PASSTHROUGH_FLOAT
            else:
                kinds[name] = _PASSTHROUGH_STRING
    return kinds


def _numpy_dtype(kind: str) -> np.dtype:
    if kind in (_STRING, _PASSTHROUGH_STRING):
        return np.dtype(object)
    if kind == _INT:
        return np.dtype(np.int64)
    return np.dtype(np.float32)


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


# --------------------------------------------------------------------------- #
# Reading files as Arrow tables
# --------------------------------------------------------------------------- #


class _Rechunker:
    """Re-cuts a stream of record batches into tables of exactly ``rows`` rows."""

    def __init__(self, rows: int):
        self.rows = rows
        self.pending: list[pa.RecordBatch] = []
        self.pending_rows = 0

    def add(self, batch: pa.RecordBatch) -> Iterator[pa.Table]:
        if batch.num_rows == 0:
            return
        self.pending.append(batch)
        self.pending_rows += batch.num_rows
        while self.pending_rows >= self.rows:
            table = pa.Table.from_batches(self.pending)
            yield table.slice(0, self.rows)
            rest = table.slice(self.rows)
            self.pending = [b for b in rest.to_batches() if b.num_rows]
            self.pending_rows = rest.num_rows

    def flush(self) -> Iterator[pa.Table]:
        if self.pending_rows:
            yield pa.Table.from_batches(self.pending)
        self.pending, self.pending_rows = [], 0


def _read_tables(
    info: _FileInfo, columns: Sequence[str], chunk_rows: int
) -> Iterator[pa.Table | pa.RecordBatch]:
    if info.is_csv:
        return _read_csv_tables(info, columns, chunk_rows)
    return _read_parquet_batches(info, columns, chunk_rows)


def _read_parquet_batches(
    info: _FileInfo, columns: Sequence[str], chunk_rows: int
) -> Iterator[pa.RecordBatch]:
    try:
        parquet = pq.ParquetFile(info.path)
        for batch in parquet.iter_batches(batch_size=chunk_rows, columns=columns):
            if batch.num_rows:
                yield batch
    except (OSError, pa.ArrowException) as err:
        raise DataError(f"{info.path}: cannot read as Parquet: {err}") from err


def _read_csv_tables(
    info: _FileInfo, columns: Sequence[str], chunk_rows: int
) -> Iterator[pa.Table]:
    """Streams CSV rows as string tables of ``chunk_rows`` rows.

    Every field is read as a string (numbers are parsed and validated later) and
    an empty field stays ``""``. Blank lines are kept as rows of empty fields so
    that data row ``i`` is line ``i + 2`` (quoted fields spanning several lines
    would shift the count). A row with the wrong number of fields is an error
    reported after the valid rows before it have been yielded (and validated).
    """
    bad_rows: list = []

    def on_invalid_row(row) -> str:
        if not bad_rows:
            bad_rows.append(row)
        return "skip"

    block = max(_CSV_BLOCK_BYTES, _MIN_LINES_PER_BLOCK * info.mean_line_bytes)
    read_options = pcsv.ReadOptions(use_threads=False, block_size=block)
    parse_options = pcsv.ParseOptions(
        delimiter=info.delimiter,
        ignore_empty_lines=False,
        invalid_row_handler=on_invalid_row,
    )
    convert_options = pcsv.ConvertOptions(
        include_columns=list(columns),
        column_types={name: pa.string() for name in columns},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    rechunker = _Rechunker(chunk_rows)
    rows_seen = 0
    failure: DataError | None = None
    try:
        with pa.input_stream(str(info.path)) as stream:
            reader = pcsv.open_csv(
                stream,
                read_options=read_options,
                parse_options=parse_options,
                convert_options=convert_options,
            )
            for batch in reader:
                if bad_rows:
                    number = bad_rows[0].number
                    bad_data_row = rows_seen if number is None else number - 2
                    if rows_seen + batch.num_rows > bad_data_row:
                        batch = batch.slice(0, bad_data_row - rows_seen)
                        yield from rechunker.add(batch)
                        break
                rows_seen += batch.num_rows
                yield from rechunker.add(batch)
    except (OSError, pa.ArrowException) as err:
        failure = DataError(f"{info.path}: cannot parse as CSV: {err}")
    yield from rechunker.flush()
    if bad_rows:
        row = bad_rows[0]
        line = "" if row.number is None else f", line {row.number}"
        raise DataError(
            f"{info.path}{line}: malformed CSV row: expected {row.expected_columns} "
            f"fields, got {row.actual_columns}: {_clip(row.text)!r}"
        )
    if failure is not None:
        raise failure


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


# --------------------------------------------------------------------------- #
# Validation and conversion
# --------------------------------------------------------------------------- #


class _Problem(Exception):
    """The first invalid row of one column: (row index in chunk, message)."""

    def __init__(self, row: int, message: str):
        super().__init__(row, message)
        self.row = row
        self.message = message


def _first(mask: np.ndarray) -> int | None:
    """Index of the first True, or None."""
    index = int(np.argmax(mask)) if len(mask) else 0
    return index if len(mask) and mask[index] else None


def _show(value) -> str:
    """A cell value for an error message: ``'2'`` for CSV text, ``null`` for None."""
    return "null" if value is None else repr(value)


def _raise_first(candidates: list[tuple[int | None, Callable[[int], str]]]) -> None:
    """Raises a _Problem for the smallest row among (row, message(row)) pairs."""
    found = [(row, message) for row, message in candidates if row is not None]
    if found:
        row, message = min(found, key=lambda pair: pair[0])
        raise _Problem(row, message(row))


def _cast_prefix(values: pa.Array, target: pa.DataType) -> tuple[pa.Array, int | None]:
    """Casts ``values``; on failure casts the longest valid prefix.

    Returns:
      The cast values (possibly only a prefix) and the index of the first value
      that cannot be cast, or None.
    """
    try:
        return pc.cast(values, target), None
    except pa.ArrowInvalid:
        pass
    low, high = 0, len(values)  # values[:low] casts, values[:high] does not
    while high - low > 1:
        middle = (low + high) // 2
        try:
            pc.cast(values.slice(0, middle), target)
            low = middle
        except pa.ArrowInvalid:
            high = middle
    return pc.cast(values.slice(0, high - 1), target), high - 1


def _is_text(values: pa.Array) -> bool:
    return pa.types.is_string(values.type) or pa.types.is_large_string(values.type)


def _is_number(values: pa.Array) -> bool:
    kind = values.type
    return (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
    )


def _decode(values: pa.Array) -> pa.Array:
    if pa.types.is_dictionary(values.type):
        return values.dictionary_decode()
    return values


def _type_error(column: str, values: pa.Array, expected: str) -> DataError:
    return DataError(
        f"column {column!r} has Arrow type {values.type}; expected {expected}"
    )


def _parse_numbers(values: pa.Array) -> tuple[np.ndarray, np.ndarray, int | None]:
    """Parses text or numeric cells as float64.

    Returns:
      ``(numbers, missing, bad)``: float64 values (NaN where missing), a mask of
      missing cells (empty, an NA token such as ``"NA"``, null or NaN), and the
      index of the first non-numeric cell or None. When ``bad`` is set the arrays
      cover only the rows before it.
    """
    if _is_text(values):
        trimmed = pc.utf8_trim_whitespace(values)
        tokens = pa.array(_MISSING_TOKENS, type=values.type)
        missing = pc.or_(pc.is_null(trimmed), pc.is_in(trimmed, value_set=tokens))
        cleaned = pc.if_else(missing, pa.scalar(None, type=values.type), trimmed)
        parsed, bad = _cast_prefix(cleaned, pa.float64())
    elif _is_number(values) or pa.types.is_null(values.type):
        parsed, bad = pc.cast(values, pa.float64(), safe=False), None
    else:
        raise TypeError(values.type)
    numbers = parsed.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    return numbers, np.isnan(numbers), bad


def _convert_string(
    column: str, values: pa.Array, as_arrow: bool = False
) -> np.ndarray | pa.Array:
    values = _decode(values)
    if pa.types.is_integer(values.type):
        values = pc.cast(values, pa.string())
    elif not _is_text(values) and not pa.types.is_null(values.type):
        raise _type_error(column, values, "strings (or integer ids)")
    filled = pc.fill_null(pc.cast(values, pa.string()), "")
    if as_arrow:
        return filled
    return _to_numpy(filled)


def _to_numpy(values: np.ndarray | pa.Array) -> np.ndarray:
    """An Arrow string array as an object array of ``str``; numpy as is."""
    if isinstance(values, np.ndarray):
        return values
    return values.to_numpy(zero_copy_only=False).astype(object, copy=False)


def _convert_float(
    column: str, values: pa.Array, fill: float | None, *, finite: bool = True
) -> np.ndarray:
    values = _decode(values)
    if not (_is_text(values) or _is_number(values) or pa.types.is_null(values.type)):
        raise _type_error(column, values, "numbers")
    numbers, missing, bad = _parse_numbers(values)
    # Only the first problem matters: all checks run on the rows before `bad`.
    with np.errstate(over="ignore", invalid="ignore"):
        narrowed = numbers.astype(np.float32)
    candidates = [(bad, lambda i: f"expected a number, got {_show(values[i].as_py())}")]
    if fill is None:
        candidates.append(
            (
                _first(missing),
                lambda i: (
                    "missing value (empty or NaN) and the column has no fill "
                    f"value, got {_show(values[i].as_py())}"
                ),
            )
        )
    if finite:
        candidates.append(
            (
                _first(np.isinf(numbers)),
                lambda i: f"value must be finite, got {_show(values[i].as_py())}",
            )
        )
    candidates.append(
        (
            _first(np.isinf(narrowed) & np.isfinite(numbers)),
            lambda i: f"value does not fit in float32, got {_show(values[i].as_py())}",
        )
    )
    _raise_first(candidates)
    if fill is not None:
        narrowed[missing] = fill
    return narrowed


def _convert_int(column: str, values: pa.Array) -> np.ndarray:
    values = _decode(values)

    def shown(i: int) -> str:
        return _show(values[i].as_py())

    def missing_value(i: int) -> str:
        return f"missing value in an int column, got {shown(i)}"

    def not_integer(i: int) -> str:
        return f"expected an integer, got {shown(i)}"

    def out_of_range(i: int) -> str:
        return f"integer out of int64 range, got {shown(i)}"

    if pa.types.is_integer(values.type):
        nulls = pc.is_null(values).to_numpy(zero_copy_only=False)
        _raise_first([(_first(nulls), missing_value)])
        converted, bad = _cast_prefix(values, pa.int64())
        _raise_first([(bad, out_of_range)])
        return converted.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    if pa.types.is_floating(values.type) or pa.types.is_decimal(values.type):
        numbers, missing, _ = _parse_numbers(values)
        with np.errstate(invalid="ignore"):
            inexact = ~missing & (
                ~np.isfinite(numbers)
                | (np.floor(numbers) != numbers)
                | (np.abs(numbers) >= 2.0**63)
            )
        _raise_first([(_first(missing), missing_value), (_first(inexact), not_integer)])
        return numbers.astype(np.int64)
    if not _is_text(values):
        raise _type_error(column, values, "integers")
    # Plain digits are cast exactly (int64 ids above 2**53 stay exact); other
    # numbers ("1.0", "1e3") must equal an integer that a float64 holds exactly.
    trimmed = pc.utf8_trim_whitespace(values)
    digits = pc.fill_null(pc.match_substring_regex(trimmed, _INT_PATTERN), False)
    signless = pc.utf8_ltrim(trimmed, characters="+")
    if pc.all(digits).as_py():
        converted, bad = _cast_prefix(signless, pa.int64())
        _raise_first([(bad, out_of_range)])
        return converted.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    no_text = pa.scalar(None, type=values.type)
    numbers, missing, bad_number = _parse_numbers(pc.if_else(digits, no_text, values))
    integers, bad_integer = _cast_prefix(
        pc.if_else(digits, signless, no_text), pa.int64()
    )
    digits_mask = digits.to_numpy(zero_copy_only=False)
    limit = min(len(numbers), len(integers))
    numbers = numbers[:limit]
    missing = missing[:limit] & ~digits_mask[:limit]
    other = ~digits_mask[:limit] & ~missing
    with np.errstate(invalid="ignore"):
        inexact = other & (
            ~np.isfinite(numbers)
            | (np.floor(numbers) != numbers)
            | (np.abs(numbers) > _MAX_EXACT_FLOAT_INT)
        )
    _raise_first(
        [
            (_first(missing), missing_value),
            (bad_number, not_integer),
            (_first(inexact), not_integer),
            (bad_integer, out_of_range),
        ]
    )
    exact = pc.fill_null(integers, 0).to_numpy(zero_copy_only=False)
    rounded = np.where(other, numbers, 0.0).astype(np.int64)
    return np.where(digits_mask, exact, rounded).astype(np.int64, copy=False)


def _convert_label(column: str, values: pa.Array) -> np.ndarray:
    values = _decode(values)
    if pa.types.is_boolean(values.type):
        values = pc.cast(values, pa.int8())
    if not (_is_text(values) or _is_number(values) or pa.types.is_null(values.type)):
        raise _type_error(column, values, "0/1 labels")
    numbers, missing, bad = _parse_numbers(values)
    invalid = missing | ((numbers != 0) & (numbers != 1))

    def message(i: int) -> str:
        return f"label must be 0 or 1, got {_show(values[i].as_py())}"

    _raise_first([(bad, message), (_first(invalid), message)])
    return numbers.astype(np.float32)


def _convert_regression(column: str, values: pa.Array) -> np.ndarray:
    values = _decode(values)
    if not (_is_text(values) or _is_number(values) or pa.types.is_null(values.type)):
        raise _type_error(column, values, "numbers")
    numbers, missing, bad = _parse_numbers(values)
    with np.errstate(over="ignore"):
        narrowed = numbers.astype(np.float32)
    invalid = missing | ~np.isfinite(narrowed)

    def message(i: int) -> str:
        shown = _show(values[i].as_py())
        return f"regression label must be a finite number, got {shown}"

    _raise_first([(bad, message), (_first(invalid), message)])
    return narrowed


def _convert_column(
    name: str,
    kind: str,
    values: pa.Array,
    schema: ColumnSchema,
    strings_as_arrow: bool = False,
) -> np.ndarray | pa.Array:
    if kind in (_STRING, _PASSTHROUGH_STRING):
        return _convert_string(name, values, strings_as_arrow)
    if kind == _INT:
        return _convert_int(name, values)
    if kind == _FLOAT:
        return _convert_float(name, values, schema.float_columns[name])
    if kind == _LABEL:
        return _convert_label(name, values)
    if kind == _REGRESSION:
        return _convert_regression(name, values)
    return _convert_float(name, values, float("nan"), finite=False)


def _requires_violations(
    arrays: dict[str, np.ndarray], schema: ColumnSchema
) -> np.ndarray:
    """Rows where some child label is 1 while its parent is 0."""
    rows = len(next(iter(arrays.values()))) if arrays else 0
    violated = np.zeros(rows, dtype=bool)
    for child, parent in schema.label_requires.items():
        violated |= (arrays[child] == 1) & (arrays[parent] == 0)
    return violated


def _first_violation(
    arrays: dict[str, np.ndarray], schema: ColumnSchema
) -> tuple[int, str, str] | None:
    """(row, child, parent) of the first ``label_requires`` violation, or None."""
    best = None
    for child, parent in schema.label_requires.items():
        row = _first((arrays[child] == 1) & (arrays[parent] == 0))
        if row is not None and (best is None or row < best[0]):
            best = (row, child, parent)
    return best


def _violation_error(info: _FileInfo, row: int, child: str, parent: str) -> DataError:
    return info.error(
        row,
        child,
        f"{child!r} is 1 but {parent!r} is 0; label_requires says a row with "
        f"{child} == 1 must have {parent} == 1 (set on_label_violation='drop' to "
        "drop such rows)",
    )


def _column_array(table: pa.Table | pa.RecordBatch, name: str) -> pa.Array:
    column = table.column(name)
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return column


def _convert_table(
    table: pa.Table | pa.RecordBatch,
    info: _FileInfo,
    start: int,
    kinds: dict[str, str],
    schema: ColumnSchema,
    strings_as_arrow: bool = False,
) -> dict[str, np.ndarray | pa.Array]:
    """Validates and converts one chunk; raises DataError for its first bad row.

    ``start`` is the file row index of the chunk's first row. With
    ``strings_as_arrow`` string columns stay Arrow arrays (see :func:`_stream`).
    """
    arrays: _Columns = {}
    problems: dict[str, _Problem] = {}
    for name, kind in kinds.items():
        try:
            arrays[name] = _convert_column(
                name, kind, _column_array(table, name), schema, strings_as_arrow
            )
        except _Problem as problem:
            problems[name] = problem
        except DataError as err:  # a column of the wrong Arrow type
            raise DataError(f"{info.path}, {err}") from None
    check_requires = schema.on_label_violation == "error" and schema.label_requires
    if problems:
        name, problem = min(problems.items(), key=lambda item: item[1].row)
        if check_requires and problem.row > 0:
            # A label_requires violation before the first bad value comes first.
            prefix = table.slice(0, problem.row)
            labels = {
                label: _convert_label(label, _column_array(prefix, label))
                for label in schema.label_columns
            }
            violation = _first_violation(labels, schema)
            if violation is not None:
                row, child, parent = violation
                raise _violation_error(info, start + row, child, parent)
        raise info.error(start + problem.row, name, problem.message)
    if check_requires:
        violation = _first_violation(arrays, schema)
        if violation is not None:
            row, child, parent = violation
            raise _violation_error(info, start + row, child, parent)
    return arrays


# --------------------------------------------------------------------------- #
# Streaming and batching
# --------------------------------------------------------------------------- #


def _stream(
    infos: Iterable[_FileInfo],
    schema: ColumnSchema,
    *,
    chunk_rows: int,
    split: Split | None,
    stats: ReadStats | None,
    passthrough: Sequence[str] | None,
    num_files: int,
    strings_as_arrow: bool = False,
) -> Iterator[dict[str, np.ndarray | pa.Array]]:
    """Validated, split and filtered chunks of every file in turn.

    With ``strings_as_arrow`` string columns stay Arrow string arrays: shuffling
    them with ``take`` and making Python strings per batch is about twice as
    fast as gathering object arrays whose strings lie all over the heap.
    """
    stats = stats if stats is not None else ReadStats()
    totals = ReadStats()
    drop = schema.on_label_violation == "drop" and bool(schema.label_requires)
    kinds: dict[str, str] | None = None
    for position, info in enumerate(infos):
        if passthrough is None:
            passthrough = _passthrough_of(info, schema)
        if kinds is None:
            kinds = _column_kinds(schema, passthrough)
        _check_columns(info, schema, passthrough)
        columns = list(kinds)
        stats.files += 1
        totals.files += 1
        logger.debug(
            "Reading %s (file %d of %d, index %d)",
            info.path,
            position + 1,
            num_files,
            info.index,
        )
        read = yielded = dropped = 0
        for table in _read_tables(info, columns, chunk_rows):
            rows = table.num_rows
            arrays = _convert_table(table, info, read, kinds, schema, strings_as_arrow)
            keep = None
            count = 0
            if split is not None:
                keep = split.mask(info.index, np.arange(read, read + rows))
            if drop:
                violated = _requires_violations(arrays, schema)
                if keep is not None:
                    violated &= keep
                count = int(violated.sum())
                dropped += count
                if count:
                    keep = ~violated if keep is None else keep & ~violated
            read += rows
            stats.rows_read += rows
            stats.rows_dropped += count
            if keep is not None:
                arrays = {
                    name: _select(values, keep) for name, values in arrays.items()
                }
            kept = len(arrays[columns[0]])
            if kept:
                yielded += kept
                stats.rows_yielded += kept
                yield arrays
        totals.rows_read += read
        totals.rows_yielded += yielded
        totals.rows_dropped += dropped
        if read == 0:
            raise DataError(f"{info.path} is empty (no data rows)")
        if dropped:
            logger.warning(
                "%s: dropped %d of %d rows violating label_requires %s",
                info.path,
                dropped,
                read,
                dict(schema.label_requires),
            )
        logger.debug(
            "Read %s: %d rows, %d yielded, %d dropped",
            info.path,
            read,
            yielded,
            dropped,
        )
    logger.info(
        "Read %d rows from %d file(s): %d yielded, %d dropped",
        totals.rows_read,
        totals.files,
        totals.rows_yielded,
        totals.rows_dropped,
    )


def _select(values: np.ndarray | pa.Array, keep: np.ndarray) -> np.ndarray | pa.Array:
    if isinstance(values, pa.Array):
        return values.filter(pa.array(keep, type=pa.bool_()))
    return values[keep]


def _take(values: np.ndarray | pa.Array, order: np.ndarray) -> np.ndarray | pa.Array:
    if isinstance(values, pa.Array):
        return values.take(pa.array(order))
    return values[order]


def _concat(parts: list[_Columns]) -> _Columns:
    if len(parts) == 1:
        return parts[0]
    merged: _Columns = {}
    for name, first in parts[0].items():
        pieces = [part[name] for part in parts]
        if isinstance(first, pa.Array):
            merged[name] = pa.concat_arrays(pieces)
        else:
            merged[name] = np.concatenate(pieces)
    return merged


def _size(arrays: _Columns) -> int:
    return len(next(iter(arrays.values())))


def _batches(
    chunks: Iterable[_Columns], batch_size: int, drop_remainder: bool
) -> Iterator[_Columns]:
    """Batches of ``batch_size`` rows in order, across chunk and file boundaries."""
    pending: list[_Columns] = []
    pending_rows = 0
    for chunk in chunks:
        pending.append(chunk)
        pending_rows += _size(chunk)
        if pending_rows < batch_size:
            continue
        data = _concat(pending)
        full = pending_rows - pending_rows % batch_size
        for start in range(0, full, batch_size):
            yield {k: v[start : start + batch_size] for k, v in data.items()}
        pending = (
            [{k: v[full:] for k, v in data.items()}] if full < pending_rows else []
        )
        pending_rows -= full
    if pending_rows and not drop_remainder:
        yield _concat(pending)


def _shuffled_batches(
    chunks: Iterable[_Columns],
    batch_size: int,
    drop_remainder: bool,
    buffer_rows: int,
    rng: np.random.Generator,
) -> Iterator[_Columns]:
    """Shuffles windows of about ``buffer_rows`` rows, then batches them.

    Chunks are gathered until the buffer holds ``buffer_rows`` rows; the buffer
    is permuted and emitted as full batches; the rows that do not fill a batch
    stay in the buffer and are shuffled again with the next window.
    """
    pending: list[_Columns] = []
    pending_rows = 0

    def emit(final: bool) -> Iterator[_Columns]:
        nonlocal pending, pending_rows
        data = _concat(pending)
        order = rng.permutation(pending_rows)
        data = {k: _take(v, order) for k, v in data.items()}
        full = pending_rows - pending_rows % batch_size
        for start in range(0, full, batch_size):
            yield {k: v[start : start + batch_size] for k, v in data.items()}
        rest = pending_rows - full
        if final:
            if rest and not drop_remainder:
                yield {k: v[full:] for k, v in data.items()}
            pending, pending_rows = [], 0
        else:
            pending = [{k: v[full:] for k, v in data.items()}] if rest else []
            pending_rows = rest

    for chunk in chunks:
        pending.append(chunk)
        pending_rows += _size(chunk)
        if pending_rows >= buffer_rows and pending_rows >= batch_size:
            yield from emit(final=False)
    if pending_rows:
        yield from emit(final=True)


# --------------------------------------------------------------------------- #
# Split hashing
# --------------------------------------------------------------------------- #


def _mix64(z: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def _split_hash(seed: int, file_index: int, rows: np.ndarray) -> np.ndarray:
    """splitmix64 of (seed, file index, row index) as uint64.

    ``state = mix(mix(seed') ^ file') + (row + 1) * golden``, ``h = mix(state)``:
    row ``r`` of a file gets the ``r``-th output of a splitmix64 stream whose
    start depends on the seed and the file index.
    """
    with np.errstate(over="ignore"):
        seed_word = np.array([int(seed) & _MASK64], dtype=np.uint64)
        file_word = np.array([(int(file_index) + 1) & _MASK64], dtype=np.uint64)
        base = _mix64(
            _mix64(seed_word * _GOLDEN64 + _GOLDEN64) ^ (file_word * _GOLDEN64)
        )
        counters = np.asarray(rows, dtype=np.uint64) + np.uint64(1)
        return _mix64(base + counters * _GOLDEN64)


_WRAPPED_DATA_ERROR = re.compile(r"DataError: (.+?)(?:\n|$)")


@contextlib.contextmanager
def surface_data_errors() -> Iterator[None]:
    """Re-raises a ``DataError`` that tf.data wrapped into an ``OpError``.

    A ``DataError`` raised while a :func:`make_dataset` dataset streams reaches
    the caller as ``tf.errors.InvalidArgumentError`` with the text inside; in
    this context it comes out as the original ``DataError`` message again.
    """
    try:
        yield
    except tf.errors.OpError as err:
        match = _WRAPPED_DATA_ERROR.search(err.message or "")
        if match is None:
            raise
        raise DataError(match.group(1).strip()) from None
