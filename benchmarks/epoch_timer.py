"""A Keras callback that times each epoch, for scripts that import TensorFlow late.

``epoch_timer_class(tf)`` builds the class on the ``tf`` module given, so a
module that must not import TensorFlow at load time (``deepctr_worker``, run
in DeepCTR's virtualenv too) and one that has it already (``throughput``)
share one definition. :func:`examples_per_second` turns the timed passes
into the rate every benchmark reports.
"""

import time
from collections.abc import Sequence


def examples_per_second(
    rows: int, seconds: Sequence[float], digits: int | None = 1
) -> float | int:
    """``rows`` per pass over the passes' mean wall time, rounded to
    ``digits`` (``None``: to an int).

    Example:

    >>> examples_per_second(1000, [0.5, 0.25, 0.25])
    3000.0
    >>> examples_per_second(1000, [0.3], digits=None)
    3333
    """
    return round(rows * len(seconds) / sum(seconds), digits)


def epoch_timer_class(tf) -> type:
    """``EpochTimer``: a ``tf.keras.callbacks.Callback`` whose ``seconds``
    holds each epoch's wall time, from ``on_epoch_begin`` to ``on_epoch_end``."""

    class EpochTimer(tf.keras.callbacks.Callback):
        """Wall time of each epoch, from ``on_epoch_begin`` to ``on_epoch_end``."""

        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []
            self._start = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._start)

    return EpochTimer
