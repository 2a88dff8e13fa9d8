"""The CLI's output: no TensorFlow for --help, no start-up chatter, errors kept."""

import logging
import subprocess
import sys

import pytest

from mtrec.quiet import BenignWarningFilter
from mtrec.quiet import is_startup_notice


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_help_and_import_mtrec_do_not_import_tensorflow():
    result = _python(
        "import sys, mtrec.cli\n"
        "try:\n"
        "    mtrec.cli.main(['--help'])\n"
        "except SystemExit as stop:\n"
        "    assert stop.code == 0, stop.code\n"
        "print('TF-LOADED' if 'tensorflow' in sys.modules else 'TF-NOT-LOADED')\n"
        "print(mtrec.MMoE.__name__, 'tensorflow' in sys.modules)\n"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert "usage: mtrec" in result.stdout
    # Nothing loaded TensorFlow for --help; the first public name does.
    assert lines[-2:] == ["TF-NOT-LOADED", "MMoE True"]


def test_a_cli_command_prints_no_tensorflow_startup_lines(tmp_path):
    out = tmp_path / "log.csv"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mtrec.cli",
            "generate",
            "--rows",
            "0",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    # Only mtrec's own one-line error: no absl banner, oneDNN or CUDA notices.
    assert result.stderr.strip().splitlines() == [
        "mtrec generate: error: `num_rows` must be an int >= 1. Received: `num_rows=0`"
    ]


@pytest.mark.parametrize(
    "line",
    [
        "WARNING: All log messages before absl::InitializeLog() is called are "
        "written to STDERR",
        "I0000 00:00:1796127908.169685   26426 port.cc:153] oneDNN custom "
        "operations are on.",
        "I0000 00:00:1796127908.170027   26426 cudart_stub.cc:31] Could not find "
        "cuda drivers on your machine, GPU will not be used.",
        "E0000 00:00:1714668459.875897  381002 cuda_executor.cc:1228] failed call "
        "to cuInit: INTERNAL: CUDA error",
        "To enable the following instructions: AVX2 AVX512F FMA, in other "
        "operations, rebuild TensorFlow with the appropriate compiler flags.",
    ],
)
def test_known_startup_notices_are_held_back(line):
    assert is_startup_notice(line)


@pytest.mark.parametrize(
    "line",
    [
        "E0000 00:00:1796127908.1   26426 op_kernel.cc:1] OUT_OF_RANGE: end of file",
        "W0000 00:00:1796127908.1   26426 loader.cc:9] something real went wrong",
        "Traceback (most recent call last):",
        "mtrec train: error: unknown key(s) ['train.epocs']",
    ],
)
def test_other_stderr_lines_are_kept(line):
    assert not is_startup_notice(line)


def test_benign_warning_filter_drops_only_the_two_known_warnings():
    def record(message):
        return logging.LogRecord(
            "tensorflow", logging.WARNING, "f", 1, message, (), None
        )

    keep = BenignWarningFilter().filter
    assert not keep(
        record(
            "Callback method `on_train_batch_end` is slow compared to the batch "
            "time (batch time: 0.0074s vs `on_train_batch_end` time: 0.0331s)."
        )
    )
    assert not keep(
        record(
            "Importing a function (__inference_serve_53125) with ops with unsaved "
            "custom gradients. Will likely fail if a gradient is requested."
        )
    )
    assert keep(record("Gradients do not exist for variables ['dense/kernel:0']"))
