"""benchmarks/steps_per_call.py: each k against the baseline k, per model."""

import json

import pytest
from script_runs import run_benchmark
from shared_data import requires_census_file

SCRIPT = "steps_per_call.py"


@pytest.mark.slow
@requires_census_file
def test_a_short_run_times_each_k_against_the_baseline(tmp_path):
    out = tmp_path / "steps_per_call.json"
    done = run_benchmark(
        SCRIPT,
        "--models", "esmm", "--steps-per-call", "1,4", "--baseline", "4",
        "--repeats", "2", "--out", str(out), "--no-doc",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["baseline"] == 4 and report["steps_per_call"] == [1, 4]
    assert report["batches_per_pass"] == -(-report["train_rows"] // report["batch"])
    assert sorted(report["cases"]) == ["esmm fit", "esmm predict"]
    for variants in report["cases"].values():
        assert sorted(variants) == ["k=1", "k=4"]
        assert len(variants["k=1"]["ms"]) == 2
        assert variants["k=4"]["speedup_vs_baseline"] == {
            "min": 1.0,
            "median": 1.0,
            "max": 1.0,
        }
        assert variants["k=1"]["ms_median"] > 0
    assert "| esmm predict | k=1 |" in done.stdout


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--steps-per-call", "1,16", "--baseline", "64"], "`--baseline` must be one"),
        (["--steps-per-call", "0,16"], "must be >= 1"),
        (["--steps-per-call", "16,x"], "must be comma-separated integers"),
        (["--models", "dcn"], "`--models` must be a comma-separated list"),
    ],
)
def test_bad_arguments_are_refused_by_name(arguments, message):
    done = run_benchmark(SCRIPT, *arguments, "--no-doc")
    assert done.returncode == 2
    assert message in done.stderr
