"""benchmarks/train_step.py: the training-step levers against the baseline."""

import json
import sys

import pytest
from script_runs import BENCHMARKS
from script_runs import run_benchmark

sys.path.insert(0, str(BENCHMARKS))

import train_step  # noqa: E402


def test_variant_results_are_ratios_to_the_baseline_per_round():
    rounds = {"baseline": [10.0, 20.0, 10.0], "all": [15.0, 20.0, 30.0]}
    results = train_step.variant_results(rounds)
    assert results["baseline"]["ratio_to_baseline"] == {
        "min": 1.0,
        "median": 1.0,
        "max": 1.0,
    }
    assert results["all"]["ratio_to_baseline"] == {
        "min": 1.0,
        "median": 1.5,
        "max": 3.0,
    }
    assert results["all"]["best_ratio_to_baseline"] == 1.5
    assert results["all"]["examples_per_second_median"] == 20 * train_step.BATCH_SIZE
    assert (results["all"]["fused"], results["all"]["jit_compile"]) == (True, False)


def test_markdown_names_the_cpu_of_the_run():
    cpu = {"model": "Xeon", "matrix_flags": ["avx2"]}
    report = {
        "variants": {},
        "protocol": {"repeats": 3, "steps": 20},
        "model": {"batch_size": 1024},
        "machine": {"core": 0, "cpu": cpu},
    }
    assert train_step.markdown(report).endswith(
        "One core (Xeon with AVX2, no AVX-512, no AVX512-BF16, no AMX-BF16), "
        "one thread; 3 interleaved rounds of 20 steps per variant; batch 1024."
    )


@pytest.mark.slow
def test_a_short_run_times_the_chosen_variants(tmp_path):
    out = tmp_path / "train_step.json"
    arguments = ["--repeats", "2", "--steps", "2", "--warmup", "1", "--batches", "2"]
    arguments += ["--variants", "all", "--out", str(out)]
    done = run_benchmark("train_step.py", *arguments)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert list(report["variants"]) == ["baseline", "all"]
    assert report["protocol"]["repeats"] == 2
    assert len(report["model"]["vocabulary_sizes"]) == train_step.NUM_CATEGORICAL
    for result in report["variants"].values():
        assert len(result["rounds_steps_per_second"]) == 2
        assert all(v > 0 for v in result["rounds_steps_per_second"])
    assert "| all |" in done.stdout
