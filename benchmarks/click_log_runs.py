"""What the benchmarks that train the shipped config on the click log share.

``add_size_arguments`` / ``check_sizes``: the ``--rows``, ``--repeats`` and
``--epochs`` options and their bounds; ``synthetic_click_log``: the generated
log in a work directory. Run from ``benchmarks/`` (the scripts put it on
``sys.path``).
"""

import argparse
import pathlib

MIN_ROWS = 10_000


def add_size_arguments(parser: argparse.ArgumentParser, rows: int = 200_000) -> None:
    """``--rows``, ``--repeats`` and ``--epochs`` (epochs 2.. are timed)."""
    parser.add_argument("--rows", type=int, default=rows)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3, help="epochs 2.. timed")


def check_sizes(args: argparse.Namespace) -> None:
    """Exits with a message naming the options unless the sizes can be timed."""
    if args.rows < MIN_ROWS or args.repeats < 1 or args.epochs < 2:
        raise SystemExit(
            f"Need --rows >= {MIN_ROWS}, --repeats >= 1 and --epochs >= 2. Received: "
            f"--rows {args.rows}, --repeats {args.repeats}, --epochs {args.epochs}"
        )


def synthetic_click_log(work: pathlib.Path, rows: int, seed: int) -> pathlib.Path:
    """Writes ``rows`` synthetic impressions to ``work/click_log.csv``."""
    from mtrec.data import generate_click_log
    from mtrec.data import write_table

    csv = work / "click_log.csv"
    write_table(generate_click_log(rows, seed=seed), csv)
    return csv


def epoch_timer():
    """A Keras callback recording each epoch's seconds in ``.seconds``.

    ``on_epoch_begin`` to ``on_epoch_end``: the time ``model.fit`` spends on
    an epoch's steps and the callbacks before this one.
    """
    import time

    import mtrec  # noqa: F401  (the Keras switch, before TensorFlow)

    # isort: split
    import tensorflow as tf

    class EpochTimer(tf.keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._start)

    return EpochTimer()


def write_report(path: pathlib.Path, report: dict, markdown) -> dict:
    """Writes ``report`` as JSON to ``path`` and prints ``markdown(report)``."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    return report
