"""A label that implies another (no purchase without a click), counted and reported.

Example:

>>> import numpy as np
>>> rule = LabelRule("purchase", "click", "error")
>>> rule.check(np.array([0, 1, 0]), np.array([0, 1, 1]), np.array([2, 3, 4]))
array([ True,  True, False])
>>> rule.count, rule.first_line
(1, 4)
>>> rule.finish("ctr_cvr.train")
Traceback (most recent call last):
...
mtrec.data.schema.DataError: ctr_cvr.train, line 4, column 'purchase': 1 row(s) ...
"""

import logging
import os

import numpy as np

from mtrec.data.schema import DataError

logger = logging.getLogger(__name__)

#: ``on_violation`` values: stop with an error, or drop the rows and log them.
MODES = ("error", "drop")


class LabelRule:
    """``child == 1`` requires ``parent == 1``; violations are counted per file.

    ESMM's data (Ali-CCP, AliExpress) has no conversion without a click: the
    standard processing removes such rows. A file that still holds some is
    reported with the count and the first line, never silently kept:
    ``on_violation="error"`` raises after the whole file was read (so the
    count is complete), ``"drop"`` removes the rows and logs a warning.

    Args:
      child: the implied label, e.g. ``"purchase"``.
      parent: the label it needs, e.g. ``"click"``.
      on_violation: ``"error"`` or ``"drop"``.
    """

    def __init__(self, child: str, parent: str, on_violation: str):
        if on_violation not in MODES:
            raise ValueError(
                f"`on_violation` must be one of {MODES}. "
                f"Received: `on_violation={on_violation!r}`"
            )
        self.child = child
        self.parent = parent
        self.on_violation = on_violation
        self.count = 0
        self.first_line: int | None = None

    def check(
        self, parent: np.ndarray, child: np.ndarray, lines: np.ndarray
    ) -> np.ndarray:
        """Counts the violating rows of a chunk; returns the rows to keep."""
        bad = (child == 1) & (parent != 1)
        n = int(bad.sum())
        if n:
            if self.first_line is None:
                self.first_line = int(lines[np.flatnonzero(bad)[0]])
            self.count += n
        return ~bad

    def message(self, path: str | os.PathLike) -> str:
        return (
            f"{path}, line {self.first_line}, column {self.child!r}: "
            f"{self.count} row(s) have {self.child}=1 with {self.parent}=0 "
            f"(the first on line {self.first_line})"
        )

    def finish(self, path: str | os.PathLike) -> int:
        """Reports the file's violations; returns their count.

        Raises:
          DataError: violations with ``on_violation="error"``.
        """
        if not self.count:
            return 0
        if self.on_violation == "error":
            raise DataError(
                self.message(path)
                + f"; fix the file or pass on_{self.child}_without_{self.parent}"
                "='drop' to drop them"
            )
        logger.warning("%s: dropped", self.message(path))
        return self.count
