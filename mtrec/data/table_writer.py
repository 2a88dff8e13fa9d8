"""Writing a DataFrame as a CSV or Parquet file, the formats mtrec reads."""

import logging
import os
import pathlib
import time

import pandas as pd

logger = logging.getLogger(__name__)

_TABLE_FORMATS = ("csv", "parquet")


def write_table(
    df: pd.DataFrame,
    path: str | os.PathLike,
    file_format: str | None = None,
) -> pathlib.Path:
    """Writes a DataFrame as CSV (without the index) or Parquet.

    Args:
      df: the frame to write.
      path: the output file; missing parent directories are created.
      file_format: ``"csv"`` or ``"parquet"``; ``None`` (default) infers it from
        the suffix: ``.csv``, ``.csv.gz`` (gzip-compressed CSV) or ``.parquet``.

    Returns:
      The path written.

    Raises:
      ValueError: for an unknown format or, with ``file_format=None``, a suffix
        that names no format.
    """
    path = pathlib.Path(path)
    if file_format is None:
        name = path.name.lower()
        if name.endswith((".csv", ".csv.gz")):
            file_format = "csv"
        elif name.endswith(".parquet"):
            file_format = "parquet"
        else:
            raise ValueError(
                "Cannot infer the format from the suffix of `path`; use .csv, "
                ".csv.gz or .parquet, or pass `file_format`. "
                f"Received: `path={str(path)!r}`"
            )
    elif file_format not in _TABLE_FORMATS:
        raise ValueError(
            f"`file_format` must be one of {_TABLE_FORMATS} or None. "
            f"Received: `file_format={file_format!r}`"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if file_format == "csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)
    logger.info(
        "Wrote %d rows to %s (%s) in %.1fs",
        len(df),
        path,
        file_format,
        time.perf_counter() - start,
    )
    return path
