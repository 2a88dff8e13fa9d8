"""Argument checks shared by the layers (and usable by any Keras object).

Every check takes the argument's name and value, returns the value in its
canonical type, and raises a Keras-style ``ValueError`` naming the argument
and the received value, e.g. "`num_experts` must be >= 1. Received:
`num_experts=0`". They run in constructors, before any tensor exists.

Example:

>>> check_units("units", (64, 32), allow_empty=False)
[64, 32]
>>> check_units("units", "64", allow_empty=False)
Traceback (most recent call last):
...
ValueError: `units` must be a sequence of ints. Received: `units='64'`
"""

import math
import numbers
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Mapping
from collections.abc import Sequence

import tensorflow as tf

from mtrec.checks import check_bool  # noqa: F401  (the layers' checks are all here)


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_int(name: str, value: int, minimum: int | None = None) -> int:
    """Returns ``int(value)``; raises if not an int (bools are not) >= ``minimum``."""
    if not _is_int(value):
        raise ValueError(f"`{name}` must be an int. Received: `{name}={value!r}`")
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}. Received: `{name}={value}`")
    return int(value)


def check_count(name: str, value: int, minimum: int) -> int:
    """A count: an int >= ``minimum`` (``check_int`` with a required minimum)."""
    if not _is_int(value) or value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}. Received: `{name}={value}`")
    return int(value)


def check_positive_int(name: str, value: int) -> int:
    """Returns ``int(value)``; raises unless an int >= 1."""
    return check_count(name, value, 1)


def _interval(minimum, maximum, min_open: bool, max_open: bool) -> str:
    if maximum is None:
        return f"{'>' if min_open else '>='} {minimum:g}"
    if minimum is None:
        return f"{'<' if max_open else '<='} {maximum:g}"
    left, right = "(" if min_open else "[", ")" if max_open else "]"
    return f"in {left}{minimum:g}, {maximum:g}{right}"


def check_number(
    name: str,
    value: float,
    minimum: float | None = None,
    maximum: float | None = None,
    min_open: bool = False,
    max_open: bool = False,
) -> float:
    """Returns ``float(value)``; raises unless a real number in the interval.

    ``minimum``/``maximum`` bound the value (``None``: unbounded), inclusive
    unless ``min_open``/``max_open``. Bools, strings and NaN are refused.
    """
    if not _is_number(value) or math.isnan(value):
        raise ValueError(f"`{name}` must be a number. Received: `{name}={value!r}`")
    low = minimum is None or (value > minimum if min_open else value >= minimum)
    high = maximum is None or (value < maximum if max_open else value <= maximum)
    if not (low and high):
        interval = _interval(minimum, maximum, min_open, max_open)
        raise ValueError(f"`{name}` must be {interval}. Received: `{name}={value}`")
    return float(value)


def check_non_negative(name: str, value: float) -> float:
    """A number >= 0 (a penalty such as ``l2``, a weight, an exponent)."""
    return check_number(name, value, minimum=0.0)


def check_positive(name: str, value: float) -> float:
    """A number > 0 (a temperature, a scale)."""
    return check_number(name, value, minimum=0.0, min_open=True)


def check_rate(name: str, value: float) -> float:
    """A rate in ``[0, 1)``, e.g. ``dropout`` (1 would drop everything)."""
    return check_number(name, value, minimum=0.0, maximum=1.0, max_open=True)


def check_probability(name: str, value: float) -> float:
    """A probability in ``[0, 1]``."""
    return check_number(name, value, minimum=0.0, maximum=1.0)


def check_fraction(name: str, value: float) -> float:
    """A non-zero fraction in ``(0, 1]``, e.g. a smoothing factor."""
    return check_number(name, value, minimum=0.0, maximum=1.0, min_open=True)


def check_units(name: str, units: Sequence[int], allow_empty: bool) -> list[int]:
    """Returns hidden sizes as a list of ints; raises ``ValueError`` if invalid.

    ``units`` must be a sequence of positive ints: a string such as ``"64"``,
    a float such as ``2.7``, a bool or a size ``< 1`` is an error, not
    silently converted.
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


def check_choice(name: str, value, choices: Collection):
    """Returns ``value``; raises unless it is one of ``choices``."""
    if isinstance(value, list | dict | set) or value not in choices:
        raise ValueError(
            f"`{name}` must be one of {tuple(choices)}. Received: `{name}={value!r}`"
        )
    return value


def _resolve(name: str, value, get: Callable, what: str):
    try:
        return get(value)
    except (ValueError, TypeError) as err:
        message = f"`{name}` must be {what}. Received: `{name}={value!r}`"
        raise ValueError(message) from err


def check_activation(name: str, value: str | Callable | None) -> Callable:
    """Resolves an activation with ``tf.keras.activations.get``; raises if unknown."""
    what = "an activation name, config or callable"
    return _resolve(name, value, tf.keras.activations.get, what)


def check_initializer(name: str, value: str | dict | Callable):
    """Resolves an initialiser with ``tf.keras.initializers.get``; raises if unknown."""
    what = "an initializer name, config or instance"
    return _resolve(name, value, tf.keras.initializers.get, what)


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


def check_task_keys(
    name: str, mapping: Mapping | None, task_names: Sequence[str]
) -> dict:
    """Returns ``mapping`` as a dict (``None``: ``{}``); raises on unknown tasks."""
    mapping = dict(mapping or {})
    unknown = sorted(set(mapping) - set(task_names))
    if unknown:
        raise ValueError(
            f"`{name}` names unknown tasks {unknown}; tasks are {list(task_names)}. "
            f"Received: `{name}={mapping!r}`"
        )
    return mapping
