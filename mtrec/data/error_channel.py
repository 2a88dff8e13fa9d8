"""A side channel for the ``DataError`` s raised inside tf.data's Python readers.

tf.data runs a ``from_generator`` reader (:func:`mtrec.data.make_dataset`) in
its own threads and turns whatever it raises into a
``tf.errors.InvalidArgumentError`` (or ``UnknownError``) whose text merely
contains the original message. The reader records each ``DataError`` here
before raising it; :func:`surface_data_errors` gives the caller the recorded
exception itself (type and message with file, line, column and value),
instead of parsing TensorFlow's error text.
"""

import collections
import contextlib
import threading
from collections.abc import Iterator

import tensorflow as tf

from mtrec.data.schema import DataError


class DataErrorChannel:
    """The ``DataError`` s raised by readers, numbered in the order raised.

    Thread-safe (readers raise in tf.data's threads); it keeps the last
    ``capacity`` errors, since a reader's error may never be surfaced (a
    dataset iterated outside :func:`surface_data_errors`).

    Example:

    >>> channel = DataErrorChannel()
    >>> start = channel.position()
    >>> channel.record(DataError("a.csv, line 3, column 'click': not 0/1"))
    >>> op = tf.errors.InvalidArgumentError(
    ...     None, None, "DataError: a.csv, line 3, column 'click': not 0/1")
    >>> str(channel.take(op, since=start))
    "a.csv, line 3, column 'click': not 0/1"
    >>> channel.take(op, since=start) is None  # taken once
    True
    """

    def __init__(self, capacity: int = 64):
        self._lock = threading.Lock()
        self._recorded = 0
        self._errors: collections.deque = collections.deque(maxlen=capacity)

    def position(self) -> int:
        """The number the next recorded error will get."""
        with self._lock:
            return self._recorded

    def record(self, error: DataError) -> None:
        """Keeps ``error`` (called by a reader just before raising it)."""
        with self._lock:
            self._errors.append((self._recorded, error))
            self._recorded += 1

    def take(self, op_error: tf.errors.OpError, since: int) -> DataError | None:
        """The latest error recorded at or after ``since`` that ``op_error``
        carries (its message contains the error's), removed from the channel;
        None if there is none (``op_error`` has another cause)."""
        text = op_error.message or ""
        with self._lock:
            for item in reversed(self._errors):
                number, error = item
                if number < since:
                    break
                if str(error) in text:
                    self._errors.remove(item)
                    return error
        return None


#: The channel :func:`mtrec.data.make_dataset` records into.
DATA_ERRORS = DataErrorChannel()


@contextlib.contextmanager
def surface_data_errors(channel: DataErrorChannel = DATA_ERRORS) -> Iterator[None]:
    """Re-raises, as itself, a ``DataError`` that tf.data wrapped into an ``OpError``.

    A ``DataError`` raised while a :func:`~mtrec.data.make_dataset` dataset
    streams reaches the caller as ``tf.errors.InvalidArgumentError``; in this
    context the reader's own exception comes out instead (taken from
    ``channel``, where the reader recorded it). An ``OpError`` with another
    cause passes unchanged.
    """
    since = channel.position()
    try:
        yield
    except tf.errors.OpError as err:
        recorded = channel.take(err, since)
        if recorded is None:
            raise
        raise recorded from None
