"""Validation and conversion of Arrow columns into numpy arrays."""

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mtrec.data.columns import _FLOAT
from mtrec.data.columns import _INT
from mtrec.data.columns import _LABEL
from mtrec.data.columns import _PASSTHROUGH_STRING
from mtrec.data.columns import _REGRESSION
from mtrec.data.columns import _STRING
from mtrec.data.files import _FileInfo
from mtrec.data.schema import ColumnSchema
from mtrec.data.schema import DataError

#: Columns of a chunk or batch inside the reader: string columns may still be
#: Arrow arrays (see ``_stream``); everything public is numpy.
_Columns = dict[str, np.ndarray | pa.Array]

#: Cells that mean "missing" in a numeric column (pandas' default NA strings).
#: String columns never treat them as missing: a category "NA" stays "NA".
_MISSING_TOKENS = (
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
)
_INT_PATTERN = r"^[+-]?[0-9]+$"
#: Largest magnitude below which every integer is exact in a float64.
_MAX_EXACT_FLOAT_INT = 2**53


class _Problem(Exception):
    """The first invalid row of one column: (row index in chunk, message)."""

    def __init__(self, row: int, message: str):
        super().__init__(row, message)
        self.row = row
        self.message = message


def _first(mask: np.ndarray) -> int | None:
    """Index of the first True, or None."""
    index = int(np.argmax(mask)) if len(mask) else 0
    return index if len(mask) and mask[index] else None


def _show(value) -> str:
    """A cell value for an error message: ``'2'`` for CSV text, ``null`` for None."""
    return "null" if value is None else repr(value)


def _raise_first(candidates: list[tuple[int | None, Callable[[int], str]]]) -> None:
    """Raises a _Problem for the smallest row among (row, message(row)) pairs."""
    found = [(row, message) for row, message in candidates if row is not None]
    if found:
        row, message = min(found, key=lambda pair: pair[0])
        raise _Problem(row, message(row))


def _cast_prefix(values: pa.Array, target: pa.DataType) -> tuple[pa.Array, int | None]:
    """Casts ``values``; on failure casts the longest valid prefix.

    Returns:
      The cast values (possibly only a prefix) and the index of the first value
      that cannot be cast, or None.
    """
    try:
        return pc.cast(values, target), None
    except pa.ArrowInvalid:
        pass
    low, high = 0, len(values)  # values[:low] casts, values[:high] does not
    while high - low > 1:
        middle = (low + high) // 2
        try:
            pc.cast(values.slice(0, middle), target)
            low = middle
        except pa.ArrowInvalid:
            high = middle
    return pc.cast(values.slice(0, high - 1), target), high - 1


def _is_text(values: pa.Array) -> bool:
    return pa.types.is_string(values.type) or pa.types.is_large_string(values.type)


def _is_number(values: pa.Array) -> bool:
    kind = values.type
    return (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
    )


def _decode(values: pa.Array) -> pa.Array:
    if pa.types.is_dictionary(values.type):
        return values.dictionary_decode()
    return values


def _type_error(column: str, values: pa.Array, expected: str) -> DataError:
    return DataError(
        f"column {column!r} has Arrow type {values.type}; expected {expected}"
    )


def _parse_numbers(values: pa.Array) -> tuple[np.ndarray, np.ndarray, int | None]:
    """Parses text or numeric cells as float64.

    Returns:
      ``(numbers, missing, bad)``: float64 values (NaN where missing), a mask of
      missing cells (empty, an NA token such as ``"NA"``, null or NaN), and the
      index of the first non-numeric cell or None. When ``bad`` is set the arrays
      cover only the rows before it.
    """
    if _is_text(values):
        trimmed = pc.utf8_trim_whitespace(values)
        tokens = pa.array(_MISSING_TOKENS, type=values.type)
        missing = pc.or_(pc.is_null(trimmed), pc.is_in(trimmed, value_set=tokens))
        cleaned = pc.if_else(missing, pa.scalar(None, type=values.type), trimmed)
        parsed, bad = _cast_prefix(cleaned, pa.float64())
    elif _is_number(values) or pa.types.is_null(values.type):
        parsed, bad = pc.cast(values, pa.float64(), safe=False), None
    else:
        raise TypeError(values.type)
    numbers = parsed.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    return numbers, np.isnan(numbers), bad


def _convert_string(
    column: str, values: pa.Array, as_arrow: bool = False
) -> np.ndarray | pa.Array:
    values = _decode(values)
    if pa.types.is_integer(values.type):
        values = pc.cast(values, pa.string())
    elif not _is_text(values) and not pa.types.is_null(values.type):
        raise _type_error(column, values, "strings (or integer ids)")
    filled = pc.fill_null(pc.cast(values, pa.string()), "")
    if as_arrow:
        return filled
    return _to_numpy(filled)


def _to_numpy(values: np.ndarray | pa.Array) -> np.ndarray:
    """An Arrow string array as an object array of ``str``; numpy as is."""
    if isinstance(values, np.ndarray):
        return values
    return values.to_numpy(zero_copy_only=False).astype(object, copy=False)


def _convert_float(
    column: str, values: pa.Array, fill: float | None, *, finite: bool = True
) -> np.ndarray:
    values = _decode(values)
    if not (_is_text(values) or _is_number(values) or pa.types.is_null(values.type)):
        raise _type_error(column, values, "numbers")
    numbers, missing, bad = _parse_numbers(values)
    # Only the first problem matters: all checks run on the rows before `bad`.
    with np.errstate(over="ignore", invalid="ignore"):
        narrowed = numbers.astype(np.float32)
    candidates = [(bad, lambda i: f"expected a number, got {_show(values[i].as_py())}")]
    if fill is None:
        candidates.append(
            (
                _first(missing),
                lambda i: (
                    "missing value (empty or NaN) and the column has no fill "
                    f"value, got {_show(values[i].as_py())}"
                ),
            )
        )
    if finite:
        candidates.append(
            (
                _first(np.isinf(numbers)),
                lambda i: f"value must be finite, got {_show(values[i].as_py())}",
            )
        )
    candidates.append(
        (
            _first(np.isinf(narrowed) & np.isfinite(numbers)),
            lambda i: f"value does not fit in float32, got {_show(values[i].as_py())}",
        )
    )
    _raise_first(candidates)
    if fill is not None:
        narrowed[missing] = fill
    return narrowed


class _IntMessages:
    """Error messages of an int column, by row index of its (decoded) cells."""

    def __init__(self, values: pa.Array):
        self.values = values

    def shown(self, i: int) -> str:
        return _show(self.values[i].as_py())

    def missing_value(self, i: int) -> str:
        return f"missing value in an int column, got {self.shown(i)}"

    def not_integer(self, i: int) -> str:
        return f"expected an integer, got {self.shown(i)}"

    def out_of_range(self, i: int) -> str:
        return f"integer out of int64 range, got {self.shown(i)}"


def _convert_int(column: str, values: pa.Array) -> np.ndarray:
    values = _decode(values)
    messages = _IntMessages(values)
    if pa.types.is_integer(values.type):
        nulls = pc.is_null(values).to_numpy(zero_copy_only=False)
        _raise_first([(_first(nulls), messages.missing_value)])
        return _cast_int64(values, messages)
    if pa.types.is_floating(values.type) or pa.types.is_decimal(values.type):
        return _ints_from_floats(values, messages)
    if not _is_text(values):
        raise _type_error(column, values, "integers")
    return _ints_from_text(values, messages)


def _cast_int64(values: pa.Array, messages: _IntMessages) -> np.ndarray:
    """Casts integers or digit strings to int64; raises for the first overflow."""
    converted, bad = _cast_prefix(values, pa.int64())
    _raise_first([(bad, messages.out_of_range)])
    return converted.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)


def _ints_from_floats(values: pa.Array, messages: _IntMessages) -> np.ndarray:
    """Float or decimal cells as int64: each must be a whole number in range."""
    numbers, missing, _ = _parse_numbers(values)
    with np.errstate(invalid="ignore"):
        inexact = ~missing & (
            ~np.isfinite(numbers)
            | (np.floor(numbers) != numbers)
            | (np.abs(numbers) >= 2.0**63)
        )
    _raise_first(
        [
            (_first(missing), messages.missing_value),
            (_first(inexact), messages.not_integer),
        ]
    )
    return numbers.astype(np.int64)


def _ints_from_text(values: pa.Array, messages: _IntMessages) -> np.ndarray:
    """Text cells as int64.

    Plain digits are cast exactly (int64 ids above 2**53 stay exact); other
    numbers ("1.0", "1e3") must equal an integer that a float64 holds exactly.
    """
    trimmed = pc.utf8_trim_whitespace(values)
    digits = pc.fill_null(pc.match_substring_regex(trimmed, _INT_PATTERN), False)
    signless = pc.utf8_ltrim(trimmed, characters="+")
    if pc.all(digits).as_py():
        return _cast_int64(signless, messages)
    return _ints_from_mixed_text(values, digits, signless, messages)


def _ints_from_mixed_text(
    values: pa.Array, digits: pa.Array, signless: pa.Array, messages: _IntMessages
) -> np.ndarray:
    """Text cells of which only some are plain digits (``digits`` marks them).

    The digit cells are cast exactly from ``signless`` (the trimmed text without
    a leading ``+``); the others are parsed as float64 and must be integers
    that a float64 holds exactly. The first problem in row order is raised.
    """
    no_text = pa.scalar(None, type=values.type)
    numbers, missing, bad_number = _parse_numbers(pc.if_else(digits, no_text, values))
    integers, bad_integer = _cast_prefix(
        pc.if_else(digits, signless, no_text), pa.int64()
    )
    digits_mask = digits.to_numpy(zero_copy_only=False)
    limit = min(len(numbers), len(integers))
    numbers = numbers[:limit]
    missing = missing[:limit] & ~digits_mask[:limit]
    other = ~digits_mask[:limit] & ~missing
    with np.errstate(invalid="ignore"):
        inexact = other & (
            ~np.isfinite(numbers)
            | (np.floor(numbers) != numbers)
            | (np.abs(numbers) > _MAX_EXACT_FLOAT_INT)
        )
    _raise_first(
        [
            (_first(missing), messages.missing_value),
            (bad_number, messages.not_integer),
            (_first(inexact), messages.not_integer),
            (bad_integer, messages.out_of_range),
        ]
    )
    exact = pc.fill_null(integers, 0).to_numpy(zero_copy_only=False)
    rounded = np.where(other, numbers, 0.0).astype(np.int64)
    return np.where(digits_mask, exact, rounded).astype(np.int64, copy=False)


def _convert_label(column: str, values: pa.Array) -> np.ndarray:
    values = _decode(values)
    if pa.types.is_boolean(values.type):
        values = pc.cast(values, pa.int8())
    if not (_is_text(values) or _is_number(values) or pa.types.is_null(values.type)):
        raise _type_error(column, values, "0/1 labels")
    numbers, missing, bad = _parse_numbers(values)
    invalid = missing | ((numbers != 0) & (numbers != 1))

    def message(i: int) -> str:
        return f"label must be 0 or 1, got {_show(values[i].as_py())}"

    _raise_first([(bad, message), (_first(invalid), message)])
    return numbers.astype(np.float32)


def _convert_regression(column: str, values: pa.Array) -> np.ndarray:
    values = _decode(values)
    if not (_is_text(values) or _is_number(values) or pa.types.is_null(values.type)):
        raise _type_error(column, values, "numbers")
    numbers, missing, bad = _parse_numbers(values)
    with np.errstate(over="ignore"):
        narrowed = numbers.astype(np.float32)
    invalid = missing | ~np.isfinite(narrowed)

    def message(i: int) -> str:
        shown = _show(values[i].as_py())
        return f"regression label must be a finite number, got {shown}"

    _raise_first([(bad, message), (_first(invalid), message)])
    return narrowed


def _convert_column(
    name: str,
    kind: str,
    values: pa.Array,
    schema: ColumnSchema,
    strings_as_arrow: bool = False,
) -> np.ndarray | pa.Array:
    if kind in (_STRING, _PASSTHROUGH_STRING):
        return _convert_string(name, values, strings_as_arrow)
    if kind == _INT:
        return _convert_int(name, values)
    if kind == _FLOAT:
        return _convert_float(name, values, schema.float_columns[name])
    if kind == _LABEL:
        return _convert_label(name, values)
    if kind == _REGRESSION:
        return _convert_regression(name, values)
    return _convert_float(name, values, float("nan"), finite=False)


def _requires_violations(
    arrays: dict[str, np.ndarray], schema: ColumnSchema
) -> np.ndarray:
    """Rows where some child label is 1 while its parent is 0."""
    rows = len(next(iter(arrays.values()))) if arrays else 0
    violated = np.zeros(rows, dtype=bool)
    for child, parent in schema.label_requires.items():
        violated |= (arrays[child] == 1) & (arrays[parent] == 0)
    return violated


def _first_violation(
    arrays: dict[str, np.ndarray], schema: ColumnSchema
) -> tuple[int, str, str] | None:
    """(row, child, parent) of the first ``label_requires`` violation, or None."""
    best = None
    for child, parent in schema.label_requires.items():
        row = _first((arrays[child] == 1) & (arrays[parent] == 0))
        if row is not None and (best is None or row < best[0]):
            best = (row, child, parent)
    return best


def _violation_error(info: _FileInfo, row: int, child: str, parent: str) -> DataError:
    return info.error(
        row,
        child,
        f"{child!r} is 1 but {parent!r} is 0; label_requires says a row with "
        f"{child} == 1 must have {parent} == 1 (set on_label_violation='drop' to "
        "drop such rows)",
    )


def _column_array(table: pa.Table | pa.RecordBatch, name: str) -> pa.Array:
    column = table.column(name)
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return column


def _convert_table(
    table: pa.Table | pa.RecordBatch,
    info: _FileInfo,
    start: int,
    kinds: dict[str, str],
    schema: ColumnSchema,
    strings_as_arrow: bool = False,
) -> dict[str, np.ndarray | pa.Array]:
    """Validates and converts one chunk; raises DataError for its first bad row.

    ``start`` is the file row index of the chunk's first row. With
    ``strings_as_arrow`` string columns stay Arrow arrays (see :func:`_stream`).
    """
    arrays: _Columns = {}
    problems: dict[str, _Problem] = {}
    for name, kind in kinds.items():
        try:
            arrays[name] = _convert_column(
                name, kind, _column_array(table, name), schema, strings_as_arrow
            )
        except _Problem as problem:
            problems[name] = problem
        except DataError as err:  # a column of the wrong Arrow type
            raise DataError(f"{info.path}, {err}") from None
    check_requires = schema.on_label_violation == "error" and schema.label_requires
    if problems:
        name, problem = min(problems.items(), key=lambda item: item[1].row)
        if check_requires and problem.row > 0:
            # A label_requires violation before the first bad value comes first.
            prefix = table.slice(0, problem.row)
            labels = {
                label: _convert_label(label, _column_array(prefix, label))
                for label in schema.label_columns
            }
            violation = _first_violation(labels, schema)
            if violation is not None:
                row, child, parent = violation
                raise _violation_error(info, start + row, child, parent)
        raise info.error(start + problem.row, name, problem.message)
    if check_requires:
        violation = _first_violation(arrays, schema)
        if violation is not None:
            row, child, parent = violation
            raise _violation_error(info, start + row, child, parent)
    return arrays
