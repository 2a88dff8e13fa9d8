"""What the benchmarks that train the shipped config on the click log share.

``add_size_arguments`` / ``check_sizes``: the ``--rows``, ``--repeats`` and
``--epochs`` options and their bounds; ``synthetic_click_log``: the generated
log in a work directory; ``main_job_config``: the shipped ``esmm`` config on
it, timed as a benchmark trains it; ``pinned_tensorflow``: a worker process
on its cores. Run from ``benchmarks/`` (the scripts put it on ``sys.path``).
"""

import argparse
import os
import pathlib

MIN_ROWS = 10_000
REPO = pathlib.Path(__file__).resolve().parents[1]
MAIN_JOB = REPO / "mtrec" / "configs" / "esmm.yaml"


def add_size_arguments(parser: argparse.ArgumentParser, rows: int = 200_000) -> None:
    """``--rows``, ``--repeats`` and ``--epochs`` (epochs 2.. are timed)."""
    parser.add_argument("--rows", type=int, default=rows)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3, help="epochs 2.. timed")


def add_worker_arguments(parser: argparse.ArgumentParser, sides) -> None:
    """The hidden options of a worker process: ``--worker`` (one of ``sides``),
    ``--num-cores``, ``--csv`` (the log) and ``--work`` (its directory)."""
    parser.add_argument("--worker", choices=sides, help=argparse.SUPPRESS)
    parser.add_argument("--num-cores", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--csv", type=pathlib.Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=pathlib.Path, help=argparse.SUPPRESS)


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


def main_job_config(csv: pathlib.Path, work: pathlib.Path, epochs: int, *overrides):
    """The shipped ``esmm`` config on ``csv``, prepared under ``work``, for
    ``epochs`` at a constant learning rate without selection (every epoch
    the same work), plus ``overrides`` (``key=value``)."""
    from mtrec.training import load_config

    return load_config(
        MAIN_JOB,
        overrides=[
            f"data.train={csv}",
            f"data.prepared_dir={work / 'prepared'}",
            f"train.epochs={epochs}",
            "train.lr_schedule=constant",
            "train.selection.metric=null",
            *overrides,
        ],
    )


def pinned_tensorflow(num_cores: int):
    """TensorFlow in a worker pinned to cores ``0..num_cores-1``, with as many
    intra- and inter-op threads; imports mtrec first (the Keras switch)."""
    os.sched_setaffinity(0, list(range(num_cores)))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import mtrec  # noqa: F401  (the Keras switch, before TensorFlow)

    # isort: split
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(num_cores)
    tf.config.threading.set_inter_op_parallelism_threads(num_cores)
    return tf


def epoch_timer():
    """A Keras callback recording each epoch's seconds in ``.seconds``.

    ``on_epoch_begin`` to ``on_epoch_end``: the time ``model.fit`` spends on
    an epoch's steps and the callbacks before this one.
    """
    import mtrec  # noqa: F401  (the Keras switch, before TensorFlow)

    # isort: split
    import tensorflow as tf
    from epoch_timer import epoch_timer_class

    return epoch_timer_class(tf)()


def write_report(path: pathlib.Path, report: dict, markdown) -> dict:
    """Writes ``report`` as JSON to ``path`` and prints ``markdown(report)``."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    return report
