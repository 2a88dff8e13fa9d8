"""A Parquet file written chunk by chunk, in place only once complete.

Example:

>>> import pathlib, tempfile
>>> import pandas as pd
>>> path = pathlib.Path(tempfile.mkdtemp()) / "part.parquet"
>>> with ParquetSink(path) as sink:
...     sink.write(pd.DataFrame({"click": [0, 1]}))
...     sink.write(pd.DataFrame({"click": [1]}))
>>> sink.rows, pd.read_parquet(path)["click"].tolist()
(3, [0, 1, 1])
"""

import os
import pathlib

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


class ParquetSink:
    """Writes DataFrames with the same columns to one Parquet file.

    Rows go to ``<path>.tmp``, renamed to ``path`` when the ``with`` block
    ends normally; an error inside the block deletes the temporary file, so
    ``path`` never holds a partial result.

    Args:
      path: the output file.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = pathlib.Path(path)
        self.rows = 0
        self._tmp = self.path.with_name(self.path.name + ".tmp")
        self._writer: pq.ParquetWriter | None = None

    def __enter__(self) -> "ParquetSink":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return self

    def write(self, frame: pd.DataFrame) -> None:
        """Appends the rows of ``frame``."""
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._tmp, table.schema)
        self._writer.write_table(table)
        self.rows += len(frame)

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._writer is not None:
            self._writer.close()
        if exc_type is not None or self._writer is None:
            self._tmp.unlink(missing_ok=True)
            return
        os.replace(self._tmp, self.path)
