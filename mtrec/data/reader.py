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

The implementation lives in one module per concern; this module is the public
facade that re-exports the reader's API:

- :mod:`mtrec.data.files`: path resolution (files, directories, globs), formats
  and headers;
- :mod:`mtrec.data.arrow_read`: CSV blocks and Parquet batches as Arrow tables;
- :mod:`mtrec.data.columns`: column kinds and :func:`output_signature`;
- :mod:`mtrec.data.convert`: validation and conversion of each column;
- :mod:`mtrec.data.stream`: :func:`iter_chunks`, :func:`make_dataset`,
  :func:`read_frame` and batching;
- :mod:`mtrec.data.error_channel`: :func:`surface_data_errors`, the side
  channel that gives back a ``DataError`` tf.data wrapped;
- :mod:`mtrec.data.split`: the hash-based train/eval :class:`Split`.

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

from mtrec.data.columns import output_signature
from mtrec.data.error_channel import surface_data_errors
from mtrec.data.files import PathsLike
from mtrec.data.schema import ColumnSchema
from mtrec.data.schema import DataError
from mtrec.data.split import Split
from mtrec.data.stream import ReadStats
from mtrec.data.stream import iter_chunks
from mtrec.data.stream import make_dataset
from mtrec.data.stream import read_frame

__all__ = [
    "ColumnSchema",
    "DataError",
    "PathsLike",
    "ReadStats",
    "Split",
    "iter_chunks",
    "make_dataset",
    "output_signature",
    "read_frame",
    "surface_data_errors",
]
