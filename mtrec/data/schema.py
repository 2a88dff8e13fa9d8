"""Which columns a click log must have, and how each one is read."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class ColumnSchema:
    """The columns a reader reads, validates and converts.

    Built from a ``FeatureSet`` and the tasks (``FeatureSet.column_schema``);
    readers know nothing about features or models.

    Attributes:
      string_columns: raw string columns (string categorical ids and
        delimiter-separated multi-valued features). A missing cell becomes
        ``""`` (which the model maps to an out-of-vocabulary bucket).
      int_columns: integer id columns, read as int64. A missing or non-integer
        cell is an error.
      float_columns: dense numeric columns, read as float32, mapped to the fill
        value for a missing cell; ``None`` means a missing cell (NaN) is an error.
        A non-numeric or infinite value is always an error.
      label_columns: binary label columns; every value must be 0 or 1.
      regression_label_columns: real-valued label columns (finite, not NaN).
      passthrough_columns: optional extra columns carried along for evaluation
        (e.g. ``true_ctr``, a user id for GAUC), as ``{name: "float" | "string"}``.
        Missing from the first file, they are absent from the output; present in
        the first file but missing from a later one, a ``DataError``.
      label_requires: ``{child: parent}``: a row with ``child == 1`` must have
        ``parent == 1`` (``{"conversion": "click"}``: no conversion without a
        click).
      on_label_violation: ``"error"`` (default) or ``"drop"`` (drop the row,
        count it, log the count per file).
    """

    string_columns: tuple[str, ...] = ()
    int_columns: tuple[str, ...] = ()
    float_columns: dict[str, float | None] = dataclasses.field(default_factory=dict)
    label_columns: tuple[str, ...] = ()
    regression_label_columns: tuple[str, ...] = ()
    passthrough_columns: dict[str, str] = dataclasses.field(default_factory=dict)
    label_requires: dict[str, str] = dataclasses.field(default_factory=dict)
    on_label_violation: str = "error"

    def __post_init__(self):
        if self.on_label_violation not in ("error", "drop"):
            raise ValueError(
                "`on_label_violation` must be 'error' or 'drop'. "
                f"Received: `on_label_violation={self.on_label_violation!r}`"
            )
        for kind, dtype in self.passthrough_columns.items():
            if dtype not in ("float", "string"):
                raise ValueError(
                    f"passthrough column {kind!r} must be 'float' or 'string'. "
                    f"Received: {dtype!r}"
                )
        labels = set(self.label_columns)
        for child, parent in self.label_requires.items():
            if child not in labels or parent not in labels:
                raise ValueError(
                    f"`label_requires` {child!r} -> {parent!r} must name binary "
                    f"label columns {sorted(labels)}"
                )

    @property
    def required_columns(self) -> tuple[str, ...]:
        """Every column a file must have, in a stable order."""
        return (
            *self.string_columns,
            *self.int_columns,
            *self.float_columns,
            *self.label_columns,
            *self.regression_label_columns,
        )


class DataError(ValueError):
    """A click log that cannot be read as the schema says.

    The message names the file, the line (CSV, 1-based, header is line 1) or
    row (Parquet, 0-based), the column and the offending value.
    """
