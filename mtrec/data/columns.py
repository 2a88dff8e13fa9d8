"""Column kinds of a click-log schema and the tensor specs a reader yields."""

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from mtrec.data.schema import ColumnSchema

# Column kinds: how a column is validated and converted.
_STRING = "string"
_INT = "int"
_FLOAT = "float"
_LABEL = "label"
_REGRESSION = "regression label"
_PASSTHROUGH_FLOAT = "passthrough float"
_PASSTHROUGH_STRING = "passthrough string"


def output_signature(
    schema: ColumnSchema, passthrough: Sequence[str] = ()
) -> dict[str, tf.TensorSpec]:
    """The ``tf.TensorSpec`` of every column a reader yields, batch-first.

    Args:
      schema: the column schema.
      passthrough: the passthrough columns present (a subset of
        ``schema.passthrough_columns``).

    Returns:
      ``{column: tf.TensorSpec(shape=(None,), dtype)}`` in output order:
      tf.string for string columns, tf.int64 for int columns, tf.float32 for
      everything else.

    Raises:
      ValueError: a passthrough name that the schema does not declare.
    """
    dtypes = {
        _STRING: tf.string,
        _INT: tf.int64,
        _FLOAT: tf.float32,
        _LABEL: tf.float32,
        _REGRESSION: tf.float32,
        _PASSTHROUGH_FLOAT: tf.float32,
        _PASSTHROUGH_STRING: tf.string,
    }
    kinds = _column_kinds(schema, passthrough)
    return {
        name: tf.TensorSpec(shape=(None,), dtype=dtypes[kind], name=name)
        for name, kind in kinds.items()
    }


def _column_kinds(schema: ColumnSchema, passthrough: Sequence[str]) -> dict[str, str]:
    """``{column: kind}`` in output order: required columns, then passthrough."""
    kinds: dict[str, str] = {}
    groups = (
        (_STRING, schema.string_columns),
        (_INT, schema.int_columns),
        (_FLOAT, tuple(schema.float_columns)),
        (_LABEL, schema.label_columns),
        (_REGRESSION, schema.regression_label_columns),
    )
    for kind, names in groups:
        for name in names:
            if name in kinds and kinds[name] != kind:
                raise ValueError(
                    f"Column {name!r} is declared both as a {kinds[name]} column "
                    f"and as a {kind} column in the schema"
                )
            kinds[name] = kind
    for name in passthrough:
        if name not in schema.passthrough_columns:
            raise ValueError(
                f"Passthrough column {name!r} is not declared in the schema's "
                f"`passthrough_columns` {sorted(schema.passthrough_columns)}"
            )
        if name not in kinds:
            if schema.passthrough_columns[name] == "float":
                kinds[name] = _PASSTHROUGH_FLOAT
            else:
                kinds[name] = _PASSTHROUGH_STRING
    return kinds


def _numpy_dtype(kind: str) -> np.dtype:
    if kind in (_STRING, _PASSTHROUGH_STRING):
        return np.dtype(object)
    if kind == _INT:
        return np.dtype(np.int64)
    return np.dtype(np.float32)
