"""Click-log readers, validation and synthetic generators."""

from mtrec.data.schema import ColumnSchema
from mtrec.data.schema import DataError

__all__ = ["ColumnSchema", "DataError"]
