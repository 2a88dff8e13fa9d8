"""Running a benchmark script in its own process, for the benchmarks' tests."""

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def run_benchmark(script: str, *arguments: str) -> subprocess.CompletedProcess:
    """``python benchmarks/<script> <arguments>`` in its own process (the
    scripts pin a core and set TensorFlow's threads, which a process that
    already ran TensorFlow cannot change), output captured, 10 min at most."""
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *arguments],
        capture_output=True,
        text=True,
        timeout=600,
    )
