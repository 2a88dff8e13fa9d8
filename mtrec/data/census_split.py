"""UCI Census-Income (KDD): the seeded train/val/test Parquet split.

The paper trains on ``census-income.data`` (199,523 rows) and splits
``census-income.test`` (99,762 rows) 1:1 into validation and test. Only the test
file is available offline (``../shared/data/census-income/census-income.test.gz``,
see its ``SOURCE.md``), so :func:`prepare_census_income` splits that one file,
by default 50/25/25 into train/val/test.

Example::

    paths = prepare_census_income(
        "../shared/data/census-income/census-income.test.gz",
        "data/census-income", group=1, seed=0,
    )
    # {"train": Path(".../train.parquet"), "val": ..., "test": ...}
    features = census_features()      # mtrec feature specs (38 inputs)
    # Group 1 with education and the weight, as the public MMoE examples:
    peers = census_features(inputs="peers")   # 40 inputs
"""

import hashlib
import json
import logging
import math
import os
import pathlib
from collections.abc import Sequence

import numpy as np

from mtrec.data.census import census_labels
from mtrec.data.census import load_census_income
from mtrec.data.census_inputs import TASK_GROUPS
from mtrec.data.census_inputs import census_input_columns
from mtrec.data.census_inputs import check_census_group
from mtrec.json_file import write_json

logger = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "val", "test")
#: File written beside the split files, recording how they were made.
SPLIT_INFO_FILE = "split.json"
#: Bumped when the prepared files change for the same parameters.
_FORMAT_VERSION = 2


def prepare_census_income(
    path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    group: int,
    seed: int,
    fractions: Sequence[float] = (0.5, 0.25, 0.25),
) -> dict[str, pathlib.Path]:
    """Writes ``train``/``val``/``test`` Parquet files with one task group's labels.

    Rows are permuted with ``numpy.random.default_rng(seed)`` and cut into
    consecutive parts of ``round(f * rows)`` rows (the test part takes the
    remainder), so the split depends only on the file, the seed and the
    fractions (not on ``group``). Each file holds the input columns of the
    widest input set the group may use (:func:`census_input_columns`: ``peers``
    for group 1, so ``education`` and ``instance_weight`` too; ``paper`` for
    group 2, plus ``instance_weight``; strings and float64) and the group's two
    int8 label columns (:data:`TASK_GROUPS`). :func:`census_features` picks the
    features among them.

    The parameters and the source's SHA-256 are recorded in ``split.json``
    beside the files; when it matches, the existing files are reused and
    nothing is written. Files are written under temporary names and renamed,
    ``split.json`` last.

    Args:
      path: the raw census-income file.
      out_dir: directory of the three files (created if missing).
      group: 1 (income, never married) or 2 (education, never married).
      seed: seed of the permutation.
      fractions: train, val and test fractions; positive, summing to 1.

    Returns:
      ``{"train": path, "val": path, "test": path}``.

    Raises:
      ValueError: invalid ``group`` or ``fractions``.
      FileNotFoundError, DataError: see :func:`load_census_income`.
    """
    check_census_group(group)
    fractions = _checked_fractions(fractions)
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"census-income file not found: {path}")
    out_dir = pathlib.Path(out_dir)
    paths = {split: out_dir / f"{split}.parquet" for split in SPLITS}
    info = _split_info(path, group=group, seed=seed, fractions=fractions)
    info_path = out_dir / SPLIT_INFO_FILE
    if _split_is_current(info_path, paths, info):
        logger.info("reusing the census-income split in %s", out_dir)
        return paths

    table = _labelled_table(path, group)
    parts = _split_rows(len(table), seed=seed, fractions=fractions)
    out_dir.mkdir(parents=True, exist_ok=True)
    info_path.unlink(missing_ok=True)
    rows, label_rates = _write_parts(table, parts, paths, TASK_GROUPS[group])
    info["rows"] = rows
    info["label_rates"] = label_rates
    write_json(info_path, info)
    logger.info("wrote the census-income split %s to %s", info["rows"], out_dir)
    return paths


def _checked_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    """The fractions as floats; raises unless 3 positive numbers summing to 1."""
    fractions = tuple(float(f) for f in fractions)
    if (
        len(fractions) != 3
        or any(not f > 0 for f in fractions)
        or not math.isclose(sum(fractions), 1.0, abs_tol=1e-9)
    ):
        raise ValueError(
            "`fractions` must be 3 positive numbers (train, val, test) summing to 1. "
            f"Received: `fractions={fractions}`"
        )
    return fractions


def _split_info(
    path: pathlib.Path, *, group: int, seed: int, fractions: tuple[float, ...]
) -> dict:
    """The parameters of a split and its source's SHA-256, as ``split.json``
    records them (before the rows and label rates are added)."""
    return {
        "format_version": _FORMAT_VERSION,
        "source": str(path.resolve()),
        "source_sha256": _sha256(path),
        "group": group,
        "labels": list(TASK_GROUPS[group]),
        "seed": seed,
        "fractions": list(fractions),
    }


def _split_is_current(
    info_path: pathlib.Path, paths: dict[str, pathlib.Path], info: dict
) -> bool:
    """Whether all the files exist and ``split.json`` records the same ``info``."""
    if not (info_path.is_file() and all(p.is_file() for p in paths.values())):
        return False
    try:
        recorded = json.loads(info_path.read_text())
    except json.JSONDecodeError:
        recorded = {}
    return {k: recorded.get(k) for k in info} == info


def _labelled_table(path: pathlib.Path, group: int):
    """The census file's columns for a group's split files plus its two labels."""
    frame = load_census_income(path)
    labels = census_labels(frame)
    table = frame[_file_columns(group)].copy()
    for label in TASK_GROUPS[group]:
        table[label] = labels[label]
    return table


def _split_rows(
    num_rows: int, *, seed: int, fractions: tuple[float, ...]
) -> dict[str, np.ndarray]:
    """The row indices of each split: a seeded permutation cut into consecutive
    parts of ``round(f * num_rows)`` rows, the test part taking the remainder."""
    order = np.random.default_rng(seed).permutation(num_rows)
    n_train = round(fractions[0] * num_rows)
    n_val = round(fractions[1] * num_rows)
    return {
        "train": order[:n_train],
        "val": order[n_train : n_train + n_val],
        "test": order[n_train + n_val :],
    }


def _write_parts(
    table,
    parts: dict[str, np.ndarray],
    paths: dict[str, pathlib.Path],
    labels: Sequence[str],
) -> tuple[dict[str, int], dict[str, dict[str, float]]]:
    """Writes each split's rows, in file order, to its Parquet file (through a
    temporary name); returns the row counts and the label rates per split."""
    rows = {}
    label_rates = {}
    for split, index in parts.items():
        part = table.iloc[np.sort(index)].reset_index(drop=True)
        tmp = paths[split].with_suffix(".parquet.tmp")
        part.to_parquet(tmp, index=False)
        os.replace(tmp, paths[split])
        rows[split] = len(part)
        label_rates[split] = {
            label: round(float(part[label].mean()), 4) for label in labels
        }
    return rows, label_rates


def _file_columns(group: int) -> list[str]:
    """The input columns a group's split files hold: the widest input set the
    group may use (``peers`` for group 1, ``paper`` plus the weight for 2)."""
    widest = "peers" if group == 1 else "paper"
    columns = census_input_columns(widest, group=group)
    return columns if "instance_weight" in columns else columns + ["instance_weight"]


def _sha256(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
