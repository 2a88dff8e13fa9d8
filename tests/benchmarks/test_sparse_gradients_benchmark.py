"""benchmarks/sparse_gradients.py: its markdown, on hand-made numbers (the
memory runs themselves are not run here)."""

import sys

from script_runs import BENCHMARKS

sys.path.insert(0, str(BENCHMARKS))

import sparse_gradients as bench  # noqa: E402


def _entry(peak, ms, ratio):
    summary = {"min": ratio, "median": ratio, "max": ratio}
    return {
        "peak_mib": {"median": peak},
        "ms_per_call": {"median": ms},
        "ratio_vs_baseline": summary,
    }


def test_markdown_has_a_row_per_variant_and_names_the_cpu():
    report = {
        "vocabulary": 1_000_000,
        "dim": 16,
        "batch": 4096,
        "cases": {
            "pcgrad": {"dense": _entry(900.0, 50.0, 1.0), "sparse": _entry(300, 20, 3)}
        },
    }
    text = bench.markdown(report)
    assert "| pcgrad | dense | 900.0 | 50.0 | 1.0 / 1.0 / 1.0 |" in text
    assert "| pcgrad | sparse | 300.0 | 20.0 | 3.0 / 3.0 / 3.0 |" in text
    # A JSON written before the machine record says so; a new one names the CPU.
    assert "per round. Machine: CPU not recorded." in text
    cpu = {"model": "Xeon", "matrix_flags": ["avx2"]}
    text = bench.markdown({**report, "machine": {"cpu_count": 2, "cpu": cpu}})
    assert "Machine: Xeon with AVX2, no AVX-512, no AVX512-BF16, no AMX-BF16." in text
