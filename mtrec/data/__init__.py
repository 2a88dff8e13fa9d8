"""Click-log readers, validation and synthetic generators."""

from mtrec.data.reader import ReadStats
from mtrec.data.reader import Split
from mtrec.data.reader import iter_chunks
from mtrec.data.reader import make_dataset
from mtrec.data.reader import read_frame
from mtrec.data.schema import ColumnSchema
from mtrec.data.schema import DataError
from mtrec.data.synthetic import generate_click_log
from mtrec.data.synthetic import write_table

__all__ = [
    "ColumnSchema",
    "DataError",
    "ReadStats",
    "Split",
    "iter_chunks",
    "generate_click_log",
    "make_dataset",
    "read_frame",
    "write_table",
]
