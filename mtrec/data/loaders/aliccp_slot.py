"""Ali-CCP in PaddleRec's slot form: the raw skeleton joined with common features.

PaddleRec's ESMM example (``models/multitask/esmm``) trains on Ali-CCP after
joining each ``sample_skeleton`` row with its ``common_features`` row; each
line is::

    sample_id,click,ctcvr,field:feature_id,field:feature_id,...

with the 23 fields of :data:`SLOT_FIELDS` (a field may repeat: behaviour
sequences and cross features hold several ids, and a field may be absent).
``ctcvr`` is click-and-purchase, written as ``purchase``.

:func:`mtrec.data.loaders.prepare_aliccp` detects this form and writes
``click``, ``purchase`` (int8) and one string column ``f<field>`` per field:
the field's ids joined by ``|`` (empty when absent). A field of
:data:`SINGLE_FIELDS` with several ids is an error.

Example:

>>> specs = aliccp_slot_features()
>>> specs[0]["name"], specs[0]["kind"]
('f101', 'categorical')
>>> [s["name"] for s in specs if s["kind"] == "multi_valued"][:3]
['f109_14', 'f110_14', 'f127_14']
"""

import logging
import os
from collections.abc import Iterator

import numpy as np
import pandas as pd

from mtrec.data.loaders.delimited import open_text
from mtrec.data.loaders.label_rule import LabelRule
from mtrec.data.schema import DataError

logger = logging.getLogger(__name__)

#: The fields of PaddleRec's ESMM reader, in its order.
SLOT_FIELDS: tuple[str, ...] = (
    "101", "109_14", "110_14", "127_14", "150_14", "121", "122", "124", "125",
    "126", "127", "128", "129", "205", "206", "207", "210", "216", "508", "509",
    "702", "853", "301",
)  # fmt: skip
#: Fields with at most one id per row (user profile, item, shop, scenario).
SINGLE_FIELDS: frozenset[str] = frozenset(
    {"101", "121", "122", "124", "125", "126", "127", "128", "129"}
    | {"205", "206", "207", "216", "301"}
)


def aliccp_slot_features(embedding_dim: int = 8) -> list[dict]:
    """Feature specs of the slot form: string ids, mean-pooled id lists.

    Args:
      embedding_dim: width of every id embedding. Default 8.
    """
    specs = []
    for field in SLOT_FIELDS:
        spec = {"name": f"f{field}", "embedding_dim": embedding_dim}
        if field in SINGLE_FIELDS:
            spec["kind"] = "categorical"
        else:
            spec.update(kind="multi_valued", pooling="mean")
        specs.append(spec)
    return specs


def slot_frames(
    path: str | os.PathLike, rule: LabelRule, chunk_rows: int
) -> Iterator[pd.DataFrame]:
    """Yields the prepared rows of a slot-form file, ``chunk_rows`` at a time.

    Raises:
      DataError: a line with fewer than 3 fields, a label other than 0/1, a
        feature without ``field:id``, an unknown field or a repeated single
        field; the message names the file, the line and the column.
    """
    rows: list[dict] = []
    lines: list[int] = []
    with open_text(path) as f:
        for number, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            rows.append(_parse_line(path, number, line))
            lines.append(number)
            if len(rows) == chunk_rows:
                yield _frame(rows, lines, rule)
                rows, lines = [], []
    if rows:
        yield _frame(rows, lines, rule)


def _parse_line(path, number: int, line: str) -> dict:
    parts = line.split(",")
    if len(parts) < 3:
        raise DataError(
            f"{path}, line {number}, column 'click' (field 2) is missing: expected "
            f"'sample_id,click,ctcvr,field:id,...', got {line[:120]!r}"
        )
    row: dict = {}
    for column, value in (("click", parts[1]), ("purchase", parts[2])):
        if value.strip() not in ("0", "1"):
            raise DataError(
                f"{path}, line {number}, column {column!r}: expected a 0/1 label, "
                f"got {value!r}"
            )
        row[column] = int(value)
    ids: dict[str, list[str]] = {}
    for position, item in enumerate(parts[3:], start=4):
        field, sep, feature = item.partition(":")
        if not sep or field not in SLOT_FIELDS or not feature:
            raise DataError(
                f"{path}, line {number}, column {position}: expected 'field:id' "
                f"with a field of {list(SLOT_FIELDS)}, got {item!r}"
            )
        ids.setdefault(field, []).append(feature.strip())
    for field, values in ids.items():
        if field in SINGLE_FIELDS and len(values) > 1:
            raise DataError(
                f"{path}, line {number}, column 'f{field}': field {field} holds one "
                f"id per row, got {len(values)}: {values[:5]}"
            )
    row.update({f"f{field}": "|".join(ids.get(field, ())) for field in SLOT_FIELDS})
    return row


def _frame(rows: list[dict], lines: list[int], rule: LabelRule) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame["click"] = frame["click"].astype(np.int8)
    frame["purchase"] = frame["purchase"].astype(np.int8)
    keep = rule.check(
        frame["click"].to_numpy(), frame["purchase"].to_numpy(), np.asarray(lines)
    )
    return frame[keep]
