"""Reading click-log files as Arrow tables: CSV blocks and Parquet batches."""

from collections.abc import Iterator
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from mtrec.data.files import _FileInfo
from mtrec.data.schema import DataError

#: Bytes per CSV parser block. Arrow reads a bounded number of blocks ahead
#: (about 40), so this, not the file size, bounds the raw text held in memory.
_CSV_BLOCK_BYTES = 1 << 18
#: A block holds at least this many mean-length lines.
_MIN_LINES_PER_BLOCK = 64


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

    rechunker = _Rechunker(chunk_rows)
    failure: DataError | None = None
    try:
        with pa.input_stream(str(info.path)) as stream:
            reader = pcsv.open_csv(
                stream, **_csv_options(info, columns, on_invalid_row)
            )
            for batch in _batches_before_bad_row(reader, bad_rows):
                yield from rechunker.add(batch)
    except (OSError, pa.ArrowException) as err:
        failure = DataError(f"{info.path}: cannot parse as CSV: {err}")
    yield from rechunker.flush()
    if bad_rows:
        raise _malformed_row_error(info, bad_rows[0])
    if failure is not None:
        raise failure


def _csv_options(
    info: _FileInfo, columns: Sequence[str], on_invalid_row
) -> dict[str, object]:
    """``pcsv.open_csv``'s options for one file: one thread, blocks of at least
    ``_MIN_LINES_PER_BLOCK`` lines, blank lines kept, ``columns`` as
    non-null strings, invalid rows passed to ``on_invalid_row``."""
    block = max(_CSV_BLOCK_BYTES, _MIN_LINES_PER_BLOCK * info.mean_line_bytes)
    return {
        "read_options": pcsv.ReadOptions(use_threads=False, block_size=block),
        "parse_options": pcsv.ParseOptions(
            delimiter=info.delimiter,
            ignore_empty_lines=False,
            invalid_row_handler=on_invalid_row,
        ),
        "convert_options": pcsv.ConvertOptions(
            include_columns=list(columns),
            column_types={name: pa.string() for name in columns},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    }


def _batches_before_bad_row(
    reader: pcsv.CSVStreamingReader, bad_rows: list
) -> Iterator[pa.RecordBatch]:
    """The reader's batches up to the first malformed row once ``bad_rows``
    holds it (the batch it falls in is cut before it, the rest not read)."""
    rows_seen = 0
    for batch in reader:
        if bad_rows:
            number = bad_rows[0].number
            bad_data_row = rows_seen if number is None else number - 2
            if rows_seen + batch.num_rows > bad_data_row:
                yield batch.slice(0, bad_data_row - rows_seen)
                return
        rows_seen += batch.num_rows
        yield batch


def _malformed_row_error(info: _FileInfo, row) -> DataError:
    """The error for a row with the wrong number of fields, naming the file
    and (when Arrow knows it) the line."""
    line = "" if row.number is None else f", line {row.number}"
    return DataError(
        f"{info.path}{line}: malformed CSV row: expected {row.expected_columns} "
        f"fields, got {row.actual_columns}: {_clip(row.text)!r}"
    )


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
