"""benchmarks/census_rounds.py: the arguments its benchmarks share."""

import pytest
from script_runs import run_benchmark

SCRIPTS = ("fused_optimizer.py", "compiled_predict.py", "steps_per_call.py")


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--models", "dcn"], "`--models` must be a comma-separated list"),
        (["--models", "mmoe,mmoe"], "`--models` repeats a model"),
        (["--repeats", "0"], "`--repeats` must be >= 1"),
    ],
)
def test_bad_shared_arguments_are_refused_by_name(script, arguments, message):
    done = run_benchmark(script, *arguments, "--no-doc")
    assert done.returncode == 2
    assert message in done.stderr
