"""Argument checks shared across mtrec's packages (Keras-style ``ValueError``s)."""

import numpy as np


def check_int(name: str, value: int, minimum: int) -> None:
    """Raises ``ValueError`` unless ``value`` is an int (not a bool) >= ``minimum``.

    NumPy integers count as ints (a count read from an array is one).

    Example:

    >>> check_int("batch_size", 32, 1)
    >>> check_int("batch_size", 0, 1)
    Traceback (most recent call last):
    ...
    ValueError: `batch_size` must be an int >= 1. Received: `batch_size=0`
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, int | np.integer)
        or value < minimum
    ):
        raise ValueError(
            f"`{name}` must be an int >= {minimum}. Received: `{name}={value!r}`"
        )


def check_bool(name: str, value: bool) -> bool:
    """Returns ``bool(value)``; raises ``ValueError`` unless a bool.

    NumPy bools count (a flag read from an array is one); ``"false"``, ``0``
    and ``None`` do not.

    Example:

    >>> check_bool("fused", True)
    True
    >>> check_bool("fused", "false")
    Traceback (most recent call last):
    ...
    ValueError: `fused` must be a bool. Received: `fused='false'`
    """
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"`{name}` must be a bool. Received: `{name}={value!r}`")
    return bool(value)
