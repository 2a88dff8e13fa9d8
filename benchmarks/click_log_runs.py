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
    from mtrec.data.synthetic import generate_click_log
    from mtrec.data.synthetic import write_table

    csv = work / "click_log.csv"
    write_table(generate_click_log(rows, seed=seed), csv)
    return csv
