"""UCI Census-Income (KDD): loader, MMoE task labels, train/val/test Parquet split.

The MMoE paper (Ma et al., KDD 2018) builds two multi-task problems from this
data set by turning two of its columns into labels and removing them from the
inputs:

- group 1: ``income_50k`` (``income == "50000+."``) and ``never_married``
  (``marital_stat == "Never married"``);
- group 2: ``education_college`` (education at least college, see
  :data:`COLLEGE_EDUCATION`) and ``never_married``.

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

import gzip
import hashlib
import json
import logging
import math
import os
import pathlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from mtrec.data.schema import DataError

logger = logging.getLogger(__name__)

#: The 42 columns of the raw file, in file order (no header in the file).
CENSUS_COLUMNS: tuple[str, ...] = (
    "age",
    "class_worker",
    "det_ind_code",
    "det_occ_code",
    "education",
    "wage_per_hour",
    "hs_college",
    "marital_stat",
    "major_ind_code",
    "major_occ_code",
    "race",
    "hisp_origin",
    "sex",
    "union_member",
    "unemp_reason",
    "full_or_part_emp",
    "capital_gains",
    "capital_losses",
    "stock_dividends",
    "tax_filer_stat",
    "region_prev_res",
    "state_prev_res",
    "det_hh_fam_stat",
    "det_hh_summ",
    "instance_weight",
    "mig_chg_msa",
    "mig_chg_reg",
    "mig_move_reg",
    "mig_same",
    "mig_prev_sunbelt",
    "num_emp",
    "fam_under_18",
    "country_father",
    "country_mother",
    "country_self",
    "citizenship",
    "own_or_self",
    "vet_question",
    "vet_benefits",
    "weeks_worked",
    "year",
    "income_50k",
)

#: Continuous columns (UCI: "continuous"), parsed as float64. The integer codes
#: ``det_ind_code``, ``det_occ_code``, ``own_or_self``, ``vet_benefits`` and
#: ``year`` are nominal in the UCI description and stay strings.
NUMERIC_COLUMNS: tuple[str, ...] = (
    "age",
    "wage_per_hour",
    "capital_gains",
    "capital_losses",
    "stock_dividends",
    "instance_weight",
    "num_emp",
    "weeks_worked",
)

#: Heavy-tailed (mostly zero, up to 99,999) numeric inputs that get ``log1p``;
#: so does ``instance_weight`` (37 to 18,656) in the ``peers`` input set.
LOG1P_COLUMNS: tuple[str, ...] = (
    "wage_per_hour",
    "capital_gains",
    "capital_losses",
    "stock_dividends",
    "instance_weight",
)

#: Columns that are never model inputs: the two label sources the paper removes
#: (``education``, ``marital_stat``), the income label and the sampling weight.
REMOVED_COLUMNS: tuple[str, ...] = (
    "education",
    "marital_stat",
    "income_50k",
    "instance_weight",
)

#: Input sets of :func:`census_input_columns`: the :data:`REMOVED_COLUMNS` each
#: one puts back.
#:
#: - ``paper`` (default, both groups): none; the 38 inputs left when both
#:   groups' label sources and the sampling weight are removed, the same for
#:   both groups.
#: - ``education`` (group 1 only): ``education`` (39 inputs). Education is the
#:   source of group 2's label only; group 1 may use it.
#: - ``peers`` (group 1 only): ``education`` and ``instance_weight`` (40
#:   inputs): every column but the two label sources, what the public MMoE
#:   census examples feed their models (keras-mmoe's ``census_income_demo.py``,
#:   DeepCTR's ``examples/run_mtl.py``). UCI's description of the data says the
#:   weight should not be used in classifiers; this set exists to compare with
#:   numbers measured that way.
CENSUS_INPUT_SETS: dict[str, tuple[str, ...]] = {
    "paper": (),
    "education": ("education",),
    "peers": ("education", "instance_weight"),
}

#: ``education`` values counted as "at least college": every completed
#: post-secondary degree (associate, bachelor, master, professional, doctorate),
#: 19,456 of 99,762 rows (0.1950) in ``census-income.test``. Not counted: "Some
#: college but no degree" (attended, no degree), "High school graduate", the
#: grade levels ("Less than 1st grade" ... "12th grade no diploma") and
#: "Children".
COLLEGE_EDUCATION: frozenset[str] = frozenset(
    {
        "Associates degree-occup /vocational",
        "Associates degree-academic program",
        "Bachelors degree(BA AB BS)",
        "Masters degree(MA MS MEng MEd MSW MBA)",
        "Prof school degree (MD DDS DVM LLB JD)",
        "Doctorate degree(PhD EdD)",
    }
)

#: ``income_50k`` value of the positive class (the other one is ``"- 50000."``).
INCOME_POSITIVE = "50000+."
#: ``marital_stat`` value of the positive class of ``never_married``.
NEVER_MARRIED = "Never married"

#: Label columns of each task group of the MMoE paper (main task first).
TASK_GROUPS: dict[int, tuple[str, str]] = {
    1: ("income_50k", "never_married"),
    2: ("education_college", "never_married"),
}

SPLITS: tuple[str, ...] = ("train", "val", "test")
#: File written beside the split files, recording how they were made.
SPLIT_INFO_FILE = "split.json"
#: Bumped when the prepared files change for the same parameters.
_FORMAT_VERSION = 2


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


def census_input_columns(inputs: str = "paper", *, group: int = 1) -> list[str]:
    """The model inputs of an input set, in file order.

    Args:
      inputs: a key of :data:`CENSUS_INPUT_SETS`: ``paper`` (default; every column but
        :data:`REMOVED_COLUMNS`, 38), ``education`` (39) or ``peers`` (40).
      group: the task group (:data:`TASK_GROUPS`) the inputs are for; group 2
        takes only ``paper``, since ``education`` is its label's source.

    Raises:
      ValueError: an unknown ``inputs`` or ``group``, or an input set that
        feeds a group its own label.
    """
    if inputs not in CENSUS_INPUT_SETS:
        raise ValueError(
            f"`inputs` must be one of {sorted(CENSUS_INPUT_SETS)}. "
            f"Received: `inputs={inputs!r}`"
        )
    _check_group(group)
    if group == 2 and "education" in CENSUS_INPUT_SETS[inputs]:
        raise ValueError(
            f"Input set {inputs!r} holds `education`, the source of group 2's "
            "label `education_college`; group 2 takes `inputs='paper'`. Received: "
            f"`inputs={inputs!r}`, `group={group}`"
        )
    kept = set(CENSUS_INPUT_SETS[inputs])
    return [c for c in CENSUS_COLUMNS if c not in REMOVED_COLUMNS or c in kept]


def _check_group(group: int) -> None:
    if group not in TASK_GROUPS:
        raise ValueError(
            f"`group` must be one of {sorted(TASK_GROUPS)}. Received: `group={group!r}`"
        )


def census_features(
    embedding_dim: int = 4, *, inputs: str = "paper", group: int = 1
) -> list[dict]:
    """mtrec feature specs of an input set's census inputs (38 by default).

    Categorical (string) features for the nominal columns, vocabularies fitted
    on the train split; dense features with a z-score for the numeric columns,
    after a signed ``log1p`` for the heavy-tailed :data:`LOG1P_COLUMNS`. With
    the default ``inputs="paper"`` the :data:`REMOVED_COLUMNS` (education,
    marital status, income, instance weight) are not features, whatever the
    task group.

    Args:
      embedding_dim: width of every categorical embedding. Default 4: the
        largest vocabulary has 52 values.
      inputs, group: the input set and task group, as in
        :func:`census_input_columns`.

    Raises:
      ValueError: as :func:`census_input_columns`.
    """
    specs = []
    for column in census_input_columns(inputs, group=group):
        if column in NUMERIC_COLUMNS:
            specs.append(
                {
                    "name": column,
                    "kind": "dense",
                    "log1p": column in LOG1P_COLUMNS,
                    "normalization": "zscore",
                }
            )
        else:
            specs.append(
                {"name": column, "kind": "categorical", "embedding_dim": embedding_dim}
            )
    return specs


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
    _check_group(group)
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
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"census-income file not found: {path}")
    out_dir = pathlib.Path(out_dir)
    paths = {split: out_dir / f"{split}.parquet" for split in SPLITS}
    info = {
        "format_version": _FORMAT_VERSION,
        "source": str(path.resolve()),
        "source_sha256": _sha256(path),
        "group": group,
        "labels": list(TASK_GROUPS[group]),
        "seed": seed,
        "fractions": list(fractions),
    }
    info_path = out_dir / SPLIT_INFO_FILE
    if info_path.is_file() and all(p.is_file() for p in paths.values()):
        try:
            recorded = json.loads(info_path.read_text())
        except json.JSONDecodeError:
            recorded = {}
        if {k: recorded.get(k) for k in info} == info:
            logger.info("reusing the census-income split in %s", out_dir)
            return paths

    frame = load_census_income(path)
    labels = census_labels(frame)
    table = frame[_file_columns(group)].copy()
    for label in TASK_GROUPS[group]:
        table[label] = labels[label]
    order = np.random.default_rng(seed).permutation(len(table))
    n_train = round(fractions[0] * len(table))
    n_val = round(fractions[1] * len(table))
    parts = {
        "train": order[:n_train],
        "val": order[n_train : n_train + n_val],
        "test": order[n_train + n_val :],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    info_path.unlink(missing_ok=True)
    info["rows"] = {}
    info["label_rates"] = {}
    for split, rows in parts.items():
        part = table.iloc[np.sort(rows)].reset_index(drop=True)
        tmp = paths[split].with_suffix(".parquet.tmp")
        part.to_parquet(tmp, index=False)
        os.replace(tmp, paths[split])
        info["rows"][split] = len(part)
        info["label_rates"][split] = {
            label: round(float(part[label].mean()), 4) for label in TASK_GROUPS[group]
        }
    tmp = info_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(info, indent=2) + "\n")
    os.replace(tmp, info_path)
    logger.info("wrote the census-income split %s to %s", info["rows"], out_dir)
    return paths


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
