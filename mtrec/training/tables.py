"""In-memory tables (pandas, numpy, Arrow) read through the click-log reader.

An in-memory table is validated exactly as a file is: it is written to a
temporary Parquet file and read back with ``mtrec.data.reader.iter_chunks``, so
every value goes through the same conversion and a bad value is reported by
row (0-based position in the table) and column.
"""

import math
import pathlib
import tempfile
from collections.abc import Iterator
from collections.abc import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mtrec.data.reader import ColumnSchema
from mtrec.data.reader import DataError
from mtrec.data.reader import ReadStats
from mtrec.data.reader import Split
from mtrec.data.reader import iter_chunks

#: What ``prepare`` accepts as rows besides files.
Table = pd.DataFrame | Mapping[str, np.ndarray] | pa.Table

Columns = dict[str, np.ndarray]


def to_arrow(table: Table, name: str) -> pa.Table:
    """``table`` as an Arrow table, one column per key or DataFrame column.

    A column Arrow cannot type as a whole (e.g. numbers mixed with text in an
    object column) is kept as text, so the reader reports the offending cell.

    Raises:
      TypeError: not a DataFrame, a mapping of 1-D arrays or an Arrow table.
      ValueError: a column is not 1-D, or the columns differ in length.
    """
    if isinstance(table, pa.Table):
        return table
    if isinstance(table, pd.DataFrame):
        columns = {str(column): table[column] for column in table.columns}
    elif isinstance(table, Mapping):
        columns = dict(table)
    else:
        raise TypeError(
            f"in-memory table `{name}` must be a pandas DataFrame, a dict of 1-D "
            f"numpy arrays or a pyarrow Table. Received: {type(table).__name__}"
        )
    if not columns:
        raise ValueError(f"in-memory table `{name}` has no columns")
    arrays = {}
    for column, values in columns.items():
        if not isinstance(values, (pd.Series, pa.Array, pa.ChunkedArray)):
            values = np.asarray(values)
            if values.ndim != 1:
                raise ValueError(
                    f"in-memory table `{name}`, column {column!r}: must be 1-D. "
                    f"Received shape {values.shape}"
                )
        arrays[str(column)] = _arrow_column(values)
    lengths = {column: len(values) for column, values in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(
            f"in-memory table `{name}`: columns differ in length: {lengths}"
        )
    return pa.table(arrays)


def _arrow_column(values) -> pa.Array | pa.ChunkedArray:
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values
    try:
        return pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return pa.array([_text(v) for v in values], type=pa.string())


def _text(value) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def read_table(
    table: Table,
    schema: ColumnSchema,
    name: str,
    *,
    split: Split | None = None,
    stats: ReadStats | None = None,
    chunk_rows: int = 65_536,
) -> Columns:
    """Validates and converts an in-memory table as the reader does a file.

    Args:
      table: the rows.
      schema: the columns to read and how to validate them.
      name: what error messages call the table (``train``, ``eval``).
      split: keep one part of the deterministic train/eval split; the table
        is split as a single file would be (file index 0, row positions).
      stats: counters updated while reading.
      chunk_rows: rows converted at a time.

    Returns:
      ``{column: np.ndarray}`` as ``iter_chunks`` yields them (strings as
      object arrays of ``str``, ids int64, floats and labels float32), all rows.

    Raises:
      DataError: a missing column or a bad value, naming the table, the row
        (0-based position) and the column.
    """
    chunks = list(
        iter_table(table, schema, name, split=split, stats=stats, chunk_rows=chunk_rows)
    )
    if not chunks:
        raise DataError(f"in-memory table `{name}` has no rows in this split")
    return {
        column: np.concatenate([chunk[column] for chunk in chunks])
        for column in chunks[0]
    }


def iter_table(
    table: Table,
    schema: ColumnSchema,
    name: str,
    *,
    split: Split | None = None,
    stats: ReadStats | None = None,
    chunk_rows: int = 65_536,
) -> Iterator[Columns]:
    """:func:`read_table` chunk by chunk (what ``iter_chunks`` yields for a file)."""
    arrow = to_arrow(table, name)
    if arrow.num_rows == 0:
        raise DataError(f"in-memory table `{name}` is empty (no rows)")
    with tempfile.TemporaryDirectory(prefix="mtrec-table-") as tmp:
        path = pathlib.Path(tmp) / f"{name}.parquet"
        pq.write_table(arrow, path)
        try:
            yield from iter_chunks(
                str(path),
                schema,
                chunk_rows=chunk_rows,
                file_format="parquet",
                split=split,
                stats=stats,
            )
        except DataError as err:
            # The reader names the file it read; here that is the temporary
            # copy of the table, so name the table instead.
            message = str(err).replace(str(path), f"in-memory table `{name}`")
            raise DataError(message) from None
