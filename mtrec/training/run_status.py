"""A run's status: finished, failed (and why), or unfinished; and the list.

A run that raises after its prepare pass keeps its directory (its
checkpoints let ``mtrec resume`` continue it) and gets ``failed.json``: the
error's type and message, when, and the command that resumes it. A run that
fails before, in the prepare pass, leaves no directory at all (``train``
removes what it made). A process killed with SIGKILL cannot write anything:
its run is ``unfinished`` (like one still training). ``mtrec runs`` lists
them.
"""

import contextlib
import dataclasses
import datetime
import json
import os
import pathlib

from mtrec.json_file import write_json
from mtrec.training.config import ConfigError
from mtrec.training.loop import TRAINING_STATE_FILE
from mtrec.training.run_dir import CONFIG_FILE
from mtrec.training.run_dir import METRICS_FILE
from mtrec.training.run_dir import checked_run_dir
from mtrec.training.state import TrainingState

#: Written into a run directory whose training or evaluation raised.
FAILED_FILE = "failed.json"


@contextlib.contextmanager
def marked_if_failed(run_dir: str | os.PathLike):
    """Writes ``failed.json`` into ``run_dir`` if the body raises (re-raised).

    A stale ``failed.json`` from an earlier attempt is removed on entry: a
    resumed run is running again.
    """
    path = pathlib.Path(run_dir) / FAILED_FILE
    path.unlink(missing_ok=True)
    try:
        yield
    except BaseException as err:
        if path.parent.is_dir():
            write_json(
                path,
                {
                    "error": type(err).__name__,
                    "message": str(err)[:4000],
                    "time": datetime.datetime.now(datetime.UTC).isoformat(),
                    "resume": f"mtrec resume {run_dir}",
                },
            )
        raise


@dataclasses.dataclass(frozen=True)
class RunStatus:
    """One run directory's status.

    Attributes:
      run_dir: the directory.
      status: ``finished``, ``failed`` or ``unfinished`` (killed, or training).
      epochs_done: complete epochs.
      error: ``"<type>: <message>"`` of a failed run, else ``None``.
      metrics: ``{output: AUC}`` of a finished run's evaluation.
    """

    run_dir: pathlib.Path
    status: str
    epochs_done: int
    error: str | None = None
    metrics: dict = dataclasses.field(default_factory=dict)


def run_status(run_dir: str | os.PathLike) -> RunStatus:
    """The status of one run directory (see the module docstring).

    Raises:
      FileNotFoundError: not a run directory (no ``config.yaml``).
    """
    run_dir = checked_run_dir(run_dir)
    epochs, finished = 0, False
    try:
        state = TrainingState.load(run_dir / TRAINING_STATE_FILE)
        epochs, finished = state.epochs_done, state.finished
    except (FileNotFoundError, ConfigError):
        pass
    failed = run_dir / FAILED_FILE
    if failed.is_file():
        try:
            record = json.loads(failed.read_text())
            error = f"{record['error']}: {record['message']}"
        except (ValueError, KeyError, TypeError):
            error = f"unreadable {failed}"
        return RunStatus(run_dir, "failed", epochs, error)
    if not finished:
        return RunStatus(run_dir, "unfinished", epochs)
    metrics = {}
    try:
        report = json.loads((run_dir / METRICS_FILE).read_text())["eval"]
        metrics = {output: m.get("auc") for output, m in report.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return RunStatus(run_dir, "finished", epochs, None, metrics)


def list_runs(runs_dir: str | os.PathLike) -> list[RunStatus]:
    """The status of every run directory under ``runs_dir``, by name.

    Raises:
      FileNotFoundError: ``runs_dir`` is not a directory.
    """
    runs_dir = pathlib.Path(runs_dir)
    if not runs_dir.is_dir():
        raise FileNotFoundError(f"runs directory not found: {runs_dir}")
    return [
        run_status(path)
        for path in sorted(runs_dir.iterdir())
        if path.is_dir() and (path / CONFIG_FILE).is_file()
    ]
