"""benchmarks/expert_mixing.py: what its reports (and step_copies') say of the run."""

import sys

from script_runs import BENCHMARKS

sys.path.insert(0, str(BENCHMARKS))

import expert_mixing  # noqa: E402

CPU = {"model": "Xeon", "matrix_flags": ["avx2", "avx512f", "avx512_bf16"]}
XEON = "Xeon with AVX2, AVX-512, AVX512-BF16, no AMX-BF16"


def test_the_markdown_names_the_threads_and_the_cpu():
    report = {"threads": 1, "cases": {}, "machine": {"cpu": CPU}}
    assert expert_mixing.threads_words(report) == f"1 thread(s) on {XEON}."
    assert (
        expert_mixing.markdown(report)
        .splitlines()[0]
        .endswith(f"per round; 1 thread(s) on {XEON}.")
    )
    # A JSON written before run_facts held the machine.
    old = {"threads": 2, "cases": {}}
    assert expert_mixing.threads_words(old) == "2 thread(s) on CPU not recorded."
