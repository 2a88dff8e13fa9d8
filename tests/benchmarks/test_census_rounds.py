"""benchmarks/census_rounds.py: the arguments its benchmarks share."""

import sys
import types

import pytest
from script_runs import BENCHMARKS
from script_runs import run_benchmark

sys.path.insert(0, str(BENCHMARKS))

import census_rounds  # noqa: E402

CPU = {"model": "Xeon", "matrix_flags": ["avx2", "avx512f", "avx512_bf16"]}
XEON = "Xeon with AVX2, AVX-512, AVX512-BF16, no AMX-BF16"
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


def test_core_words_name_the_cpu_or_say_it_was_not_recorded():
    # A JSON written before run_facts held the machine, then a new one.
    assert census_rounds.core_words({"batch": 1024}) == "one core (CPU not recorded)"
    report = {"batch": 1024, "machine": {"cpu": CPU}}
    assert census_rounds.core_words(report) == f"one core ({XEON})"


def test_run_facts_record_the_machine_as_the_run_started():
    info = {"load_average_at_start": [0.5, 0.4, 0.3], "cpu": CPU}
    tf = types.SimpleNamespace(__version__="2.21.0")
    args = types.SimpleNamespace(repeats=7)
    meta = {"rows": {"train": 49881}}
    facts = census_rounds.run_facts(info, tf, args, 0, meta)
    assert facts["machine"] is info
    assert facts["machine"]["load_average_at_start"] == [0.5, 0.4, 0.3]
    assert (facts["train_rows"], facts["core"], facts["repeats"]) == (49881, 0, 7)
    assert census_rounds.core_words(facts) == f"one core ({XEON})"
