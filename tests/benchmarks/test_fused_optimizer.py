"""benchmarks/fused_optimizer.py: fused (legacy) Adam against Keras' Adam."""

import json

import pytest
from script_runs import run_benchmark
from shared_data import requires_census_file

SCRIPT = "fused_optimizer.py"


@pytest.mark.slow
@requires_census_file
def test_a_short_run_times_both_optimizers_per_model(tmp_path):
    out = tmp_path / "fused_optimizer.json"
    arguments = ["--models", "esmm", "--repeats", "2", "--out", str(out), "--no-doc"]
    done = run_benchmark(SCRIPT, *arguments)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["baseline"] == "keras"
    assert list(report["cases"]) == ["esmm fit epoch"]
    variants = report["cases"]["esmm fit epoch"]
    assert sorted(variants) == ["fused", "keras"]
    assert variants["keras"]["speedup_vs_baseline"]["median"] == 1.0
    assert len(variants["fused"]["ms"]) == 2
    assert all(ms > 0 for ms in variants["fused"]["ms"])
    assert "| esmm fit epoch | fused |" in done.stdout
