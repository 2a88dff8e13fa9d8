"""Argument checks shared by the layers, raising Keras-style ``ValueError``s."""

import numbers
from collections.abc import Sequence


def check_task_names(
    task_names: Sequence[str], reserved: Sequence[str] = ()
) -> list[str]:
    """Returns ``task_names`` as a list; raises ``ValueError`` if unusable."""
    if isinstance(task_names, str):
        raise ValueError(
            "`task_names` must be a sequence of strings, not a string. "
            f"Received: `task_names={task_names!r}`"
        )
    names = list(task_names)
    if not names:
        raise ValueError(
            f"`task_names` must not be empty. Received: `task_names={names}`"
        )
    if not all(isinstance(n, str) and n for n in names):
        raise ValueError(
            f"`task_names` must be non-empty strings. Received: `task_names={names}`"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"`task_names` must be unique. Received: `task_names={names}`")
    for name in reserved:
        if name in names:
            raise ValueError(
                f"`task_names` must not contain {name!r}, which names the shared "
                f"experts' output. Received: `task_names={names}`"
            )
    return names


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_count(name: str, value: int, minimum: int) -> int:
    """Returns ``int(value)``; raises ``ValueError`` if not an int >= ``minimum``."""
    if not _is_int(value) or value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}. Received: `{name}={value}`")
    return int(value)


def check_units(name: str, units: Sequence[int], allow_empty: bool) -> list[int]:
    """Returns hidden sizes as a list of ints; raises ``ValueError`` if invalid.

    ``units`` must be a sequence of ints (a string such as ``"64"`` or a float
    such as ``2.7`` is an error, not silently converted).
    """
    if isinstance(units, str | bytes) or not isinstance(units, Sequence):
        raise ValueError(
            f"`{name}` must be a sequence of ints. Received: `{name}={units!r}`"
        )
    if not all(_is_int(u) for u in units):
        raise ValueError(
            f"`{name}` must be a sequence of ints. Received: `{name}={list(units)!r}`"
        )
    units = [int(u) for u in units]
    if not units and not allow_empty:
        raise ValueError(f"`{name}` must not be empty. Received: `{name}={units}`")
    if any(u < 1 for u in units):
        raise ValueError(f"`{name}` must all be >= 1. Received: `{name}={units}`")
    return units


def check_rate(name: str, value: float) -> float:
    """Returns a rate in ``[0, 1)`` as a float; raises ``ValueError`` otherwise."""
    if not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be in [0, 1). Received: `{name}={value}`")
    return float(value)


def check_non_negative(name: str, value: float) -> float:
    """Returns ``float(value)``; raises ``ValueError`` if negative."""
    if value < 0.0:
        raise ValueError(f"`{name}` must be >= 0. Received: `{name}={value}`")
    return float(value)
