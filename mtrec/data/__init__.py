"""Click-log readers, validation and synthetic generators."""

from mtrec.data.reader import ReadStats
from mtrec.data.reader import Split
from mtrec.data.reader import iter_chunks
from mtrec.data.reader import make_dataset
from mtrec.data.reader import read_frame
from mtrec.data.schema import ColumnSchema
from mtrec.data.schema import DataError

__all__ = [
    "ColumnSchema",
    "DataError",
    "ReadStats",
    "Split",
    "iter_chunks",
    "make_dataset",
    "read_frame",
]
