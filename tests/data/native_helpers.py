"""Click logs with every column kind, shared by the prepare and native-path tests."""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mtrec.data.schema import ColumnSchema

#: Every column kind: string ids, a multi-valued string, int64 ids, floats with
#: and without a fill value, two binary labels, a regression label and both
#: kinds of passthrough column.
SCHEMA = ColumnSchema(
    string_columns=("user_id", "tags"),
    int_columns=("item_id",),
    float_columns={"price": 0.5, "age": None},
    label_columns=("click", "conversion"),
    regression_label_columns=("dwell",),
    passthrough_columns={"true_ctr": "float", "session": "string"},
    label_requires={"conversion": "click"},
)
DROP_SCHEMA = ColumnSchema(
    string_columns=SCHEMA.string_columns,
    int_columns=SCHEMA.int_columns,
    float_columns=SCHEMA.float_columns,
    label_columns=SCHEMA.label_columns,
    regression_label_columns=SCHEMA.regression_label_columns,
    passthrough_columns=SCHEMA.passthrough_columns,
    label_requires=SCHEMA.label_requires,
    on_label_violation="drop",
)


def click_table(rows: int, start: int = 0, seed: int = 0, violations: bool = False):
    """Rows numbered by ``item_id`` from ``start``, with missing cells.

    Missing: ``user_id`` (-> ""), ``price`` (-> 0.5), ``true_ctr`` (-> NaN),
    ``session`` (-> ""). With ``violations`` some rows convert without a click.
    """
    rng = np.random.default_rng(seed)
    click = rng.random(rows) < 0.4
    conversion = click & (rng.random(rows) < 0.5)
    if violations:
        conversion |= ~click & (rng.random(rows) < 0.2)
    users = [f"u{k}" if k % 6 else None for k in rng.integers(0, 40, rows)]
    tags = [
        "|".join(f"t{t}" for t in rng.integers(0, 9, k))
        for k in rng.integers(0, 4, rows)
    ]
    price = np.round(rng.normal(size=rows), 3)
    ctr = np.round(rng.random(rows), 4)
    return pa.table(
        {
            "user_id": pa.array(users, pa.string()),
            "tags": pa.array(tags),
            "item_id": pa.array(np.arange(start, start + rows) * 1_000_003),
            "price": pa.array(
                [None if i % 5 == 1 else float(p) for i, p in enumerate(price)]
            ),
            "age": pa.array(rng.integers(18, 80, rows).astype(float)),
            "click": pa.array(click.astype(np.int64)),
            "conversion": pa.array(conversion.astype(np.int64)),
            "dwell": pa.array(np.round(rng.exponential(20.0, rows), 2)),
            "true_ctr": pa.array(
                [None if i % 7 == 3 else float(c) for i, c in enumerate(ctr)]
            ),
            "session": pa.array([None if i % 4 == 0 else f"s{i}" for i in range(rows)]),
            "ignored": pa.array(np.zeros(rows, np.int64)),
        }
    )


def write_log(path: Path, table: pa.Table) -> Path:
    """Writes ``table`` as CSV (empty cells for nulls) or Parquet, by suffix."""
    if path.suffix == ".parquet":
        pq.write_table(table, path)
        return path
    frame = table.to_pandas()
    frame.to_csv(path, index=False, na_rep="")
    return path


def two_logs(directory: Path, suffix: str, violations: bool = False) -> Path:
    """``directory`` with two logs of 37 and 40 rows (item ids 0..76, scaled)."""
    directory.mkdir(parents=True, exist_ok=True)
    write_log(directory / f"a{suffix}", click_table(37, 0, 1, violations))
    write_log(directory / f"b{suffix}", click_table(40, 37, 2, violations))
    return directory


def rows_of(batches) -> list[tuple]:
    """Every row of a list of batches as a tuple of Python values (NaN -> None)."""
    rows = []
    for batch in batches:
        columns = {}
        for name, values in batch.items():
            array = values.numpy() if hasattr(values, "numpy") else values
            if array.dtype == object:
                columns[name] = [
                    v.decode() if isinstance(v, bytes) else v for v in array
                ]
            else:
                columns[name] = [None if v != v else v.item() for v in array]
        names = sorted(columns)
        rows.extend(zip(*(columns[name] for name in names), strict=True))
    return rows


def assert_same_batches(actual: list[dict], expected: list[dict]) -> None:
    """Batch by batch: the same keys, dtypes and values (NaN equal to NaN)."""
    assert [len(b["item_id"]) for b in actual] == [len(b["item_id"]) for b in expected]
    for got, want in zip(actual, expected, strict=True):
        assert sorted(got) == sorted(want)
        for name in want:
            assert got[name].dtype == want[name].dtype, name
            np.testing.assert_array_equal(
                got[name].numpy(), want[name].numpy(), err_msg=name
            )
