"""UCI Census-Income (KDD): the raw file and its task labels.

:func:`load_census_income` reads the raw file (every bad line or value named
by file, line and column) and :func:`census_labels` derives the MMoE paper's
three labels (``mtrec.data.census_inputs``).
"""

import gzip
import os
import pathlib

import numpy as np
import pandas as pd

from mtrec.data.census_inputs import CENSUS_COLUMNS
from mtrec.data.census_inputs import COLLEGE_EDUCATION
from mtrec.data.census_inputs import INCOME_POSITIVE
from mtrec.data.census_inputs import NEVER_MARRIED
from mtrec.data.census_inputs import NUMERIC_COLUMNS
from mtrec.data.schema import DataError


def load_census_income(path: str | os.PathLike) -> pd.DataFrame:
    """Reads the raw census-income file (``.gz`` or plain text).

    Every line must have exactly 42 comma-separated fields; surrounding spaces
    are stripped from every value, empty lines are skipped. The
    :data:`NUMERIC_COLUMNS` are parsed as float64, the other columns are kept
    as strings (labels included: ``income_50k`` is ``"50000+."`` or
    ``"- 50000."``).

    Args:
      path: the file, e.g. ``../shared/data/census-income/census-income.test.gz``.

    Returns:
      A DataFrame with the :data:`CENSUS_COLUMNS`, one row per line.

    Raises:
      FileNotFoundError: the file does not exist.
      DataError: the file is empty, truncated (broken gzip stream), not text,
        has a line without 42 fields, or a non-numeric value in a numeric
        column; the message names the file, the line and the column.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"census-income file not found: {path} (expected the UCI "
            "census-income KDD file, see ../shared/data/census-income/SOURCE.md)"
        )
    rows, line_numbers = _read_rows(path)
    if not rows:
        raise DataError(f"{path}: the file has no rows")
    frame = pd.DataFrame(rows, columns=list(CENSUS_COLUMNS))
    for column in NUMERIC_COLUMNS:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = np.flatnonzero(~np.isfinite(values.to_numpy(dtype=np.float64)))
        if bad.size:
            row = int(bad[0])
            raise DataError(
                f"{path}, line {line_numbers[row]}, column {column!r}: expected a "
                f"number, got {frame[column].iloc[row]!r}"
            )
        frame[column] = values.astype(np.float64)
    return frame


def _read_rows(path: pathlib.Path) -> tuple[list[list[str]], list[int]]:
    opener = gzip.open if path.suffix == ".gz" else open
    rows: list[list[str]] = []
    line_numbers: list[int] = []
    expected = len(CENSUS_COLUMNS)
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as f:
            for number, line in enumerate(f, start=1):
                line = line.rstrip("\r\n")
                if not line.strip():
                    continue
                fields = line.split(",")
                if len(fields) != expected:
                    raise DataError(
                        f"{path}, line {number}: expected {expected} comma-separated "
                        f"fields, got {len(fields)}: {_clip(line)!r}"
                    )
                rows.append([field.strip() for field in fields])
                line_numbers.append(number)
    except (EOFError, gzip.BadGzipFile, UnicodeDecodeError) as err:
        raise DataError(
            f"{path}: cannot read the file after {len(rows)} rows (truncated or "
            f"not a census-income text file): {err}"
        ) from err
    return rows, line_numbers


def _clip(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def census_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """The three task labels (int8 0/1) of a frame from :func:`load_census_income`.

    ``income_50k = income == "50000+."``, ``never_married = marital_stat ==
    "Never married"``, ``education_college = education in COLLEGE_EDUCATION``.
    """
    return pd.DataFrame(
        {
            "income_50k": (frame["income_50k"] == INCOME_POSITIVE).astype(np.int8),
            "never_married": (frame["marital_stat"] == NEVER_MARRIED).astype(np.int8),
            "education_college": frame["education"]
            .isin(COLLEGE_EDUCATION)
            .astype(np.int8),
        },
        index=frame.index,
    )
