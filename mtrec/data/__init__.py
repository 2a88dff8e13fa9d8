"""Click-log readers, validation, the prepare pass and synthetic generators."""

from mtrec.data.native import native_dataset
from mtrec.data.prepare import PreparedData
from mtrec.data.prepare import PreparedPart
from mtrec.data.prepare import load_prepared
from mtrec.data.prepare import prepare_data
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
    "PreparedData",
    "PreparedPart",
    "ReadStats",
    "Split",
    "iter_chunks",
    "generate_click_log",
    "load_prepared",
    "make_dataset",
    "native_dataset",
    "prepare_data",
    "read_frame",
    "write_table",
]
