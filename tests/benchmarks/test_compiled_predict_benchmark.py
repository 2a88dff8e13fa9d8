"""benchmarks/compiled_predict.py: predict through XLA against the default."""

import json

import pytest
from script_runs import run_benchmark
from shared_data import requires_census_file

SCRIPT = "compiled_predict.py"


@pytest.mark.slow
@requires_census_file
def test_a_short_run_times_both_predicts_per_model(tmp_path):
    out = tmp_path / "compiled_predict.json"
    arguments = ["--models", "esmm", "--repeats", "2", "--out", str(out), "--no-doc"]
    done = run_benchmark(SCRIPT, *arguments)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["baseline"] == "default"
    assert list(report["cases"]) == ["esmm predict pass"]
    variants = report["cases"]["esmm predict pass"]
    assert sorted(variants) == ["default", "xla"]
    assert variants["default"]["speedup_vs_baseline"]["median"] == 1.0
    assert len(variants["xla"]["ms"]) == 2
    assert all(ms > 0 for ms in variants["xla"]["ms"])
    facts = report["facts"]["esmm"]
    assert set(facts["first_pass_seconds"]) == {"default", "xla"}
    # The same weights: the compiled model predicts the same, to rounding.
    assert 0 <= facts["max_abs_difference"] < 1e-4
    assert "| esmm predict pass | xla |" in done.stdout
    assert "| esmm | " in done.stdout
