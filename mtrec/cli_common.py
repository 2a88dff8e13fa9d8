"""What the command-line modules share: the config argument, waiting for a stop."""

import argparse
import pathlib

from mtrec.shipped import SHIPPED_CONFIGS
from mtrec.shipped import shipped_config


def resolve_config(arg: str) -> pathlib.Path:
    """A YAML path, or the path of the shipped config ``arg`` names."""
    path = pathlib.Path(arg)
    if path.is_file() or arg not in SHIPPED_CONFIGS:
        return path
    return shipped_config(arg)


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """The positional ``config``: a YAML file or a shipped config's name."""
    parser.add_argument(
        "config", help=f"YAML file, or a shipped config: {', '.join(SHIPPED_CONFIGS)}"
    )


def wait_for_a_stop_signal() -> None:
    """Blocks until SIGINT or SIGTERM."""
    import signal
    import threading

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
