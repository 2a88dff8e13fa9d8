"""Readable command-line output: TensorFlow's start-up chatter held back.

TensorFlow 2.21 logs through absl before ``absl::InitializeLog()`` runs, so its
start-up lines (oneDNN notice, "Could not find cuda drivers", the CPU feature
guard, the "All log messages before absl::InitializeLog()" banner) ignore
``TF_CPP_MIN_LOG_LEVEL`` and reach stderr once per loaded TF library, i.e.
twice. On a CPU machine ``failed call to cuInit`` reads like a failure but is
not one. :func:`import_tensorflow_quietly` imports TensorFlow with stderr
captured at the file-descriptor level and replays every line that is not one
of those known notices, so nothing else is lost.

Two Python-side warnings are dropped the same way, by exact pattern: Keras'
"Callback method ... is slow" on the first batches (tracing time, not
callback time) and absl's "Importing a function ... with ops with unsaved
custom gradients" when an exported model is reloaded (mtrec's exports are for
serving; nobody asks them for gradients).

Only the command line installs this; a library user's process is untouched.
"""

import logging
import os
import re
import sys
import tempfile

# Start-up notices TensorFlow prints before its logging is configured.
_STARTUP_NOTICES = (
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\)"),
    re.compile(r"^I\d{4} [\d:. ]+\d+ [\w.]+:\d+\] "),  # absl INFO lines
    re.compile(r"^E\d{4} [\d:. ]+\d+ [\w.]+:\d+\] failed call to cuInit"),
    re.compile(r"^To enable the following instructions: "),
)

_BENIGN_PYTHON_WARNINGS = (
    re.compile(r"^Callback method `on_\w+` is slow compared to the batch time"),
    re.compile(r"^Importing a function \(\S+\) with ops with unsaved custom gradients"),
)


def is_startup_notice(line: str) -> bool:
    """Whether ``line`` is one of TensorFlow's known start-up notices."""
    return any(pattern.match(line) for pattern in _STARTUP_NOTICES)


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow, replaying all of its stderr but the start-up notices.

    A no-op when TensorFlow is already imported.
    """
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [
                line
                for line in captured.read().decode("utf-8", "replace").splitlines()
                if not is_startup_notice(line)
            ]
    if kept:
        print("\n".join(kept), file=sys.stderr)


class BenignWarningFilter(logging.Filter):
    """Drops the two known-benign TensorFlow/absl warnings (module docstring)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(pattern.match(message) for pattern in _BENIGN_PYTHON_WARNINGS)


def install_quiet_output() -> None:
    """Quiet TensorFlow start-up and the benign warnings, for the CLI."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for noisy in ("absl", "tensorflow"):
        logger = logging.getLogger(noisy)
        logger.setLevel(logging.WARNING)
        if not any(isinstance(f, BenignWarningFilter) for f in logger.filters):
            logger.addFilter(BenignWarningFilter())
    import_tensorflow_quietly()
