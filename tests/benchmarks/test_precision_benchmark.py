"""benchmarks/precision.py: the per-round ratios, the summary and the table.

Tested on hand-made runs; the benchmark itself trains the main job (not run
here: ``python benchmarks/precision.py``).
"""

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import precision as bench  # noqa: E402


def _run(precision, train, predict, ctr):
    return {
        "precision": precision,
        "cores": 1,
        "train_examples_per_second": train,
        "predict_examples_per_second": predict,
        "auc": {"ctr": ctr, "ctcvr": ctr + 0.1},
        "oracle_auc": {"ctr": 0.78, "ctcvr": 0.89},
    }


def test_ratios_pair_the_rounds_and_the_table_has_one_row_per_core_count():
    runs = [
        _run("float32", 100.0, 200.0, 0.76),
        _run("mixed_bfloat16", 150.0, 220.0, 0.75),
        _run("mixed_bfloat16", 120.0, 180.0, 0.77),
        _run("float32", 100.0, 200.0, 0.76),
    ]
    summary = bench.summarise(runs, [1])["1"]
    assert summary["train_ratio"] == {"min": 1.2, "median": 1.35, "max": 1.5}
    assert summary["predict_ratio"] == {"min": 0.9, "median": 1.0, "max": 1.1}
    assert summary["mixed_bfloat16"]["auc"] == {"ctr": 0.76, "ctcvr": 0.86}
    assert summary["oracle_auc"] == {"ctr": 0.78, "ctcvr": 0.89}
    report = {"rows": 1000, "repeats": 2, "cores": [1], "epochs": 3}
    text = bench.markdown({**report, "summary": {"1": summary}})
    rows = [line for line in text.splitlines() if line.startswith("| 1 |")]
    assert rows == [
        "| 1 | 100 / 135 | 1.35 (1.2–1.5) | 200 / 200 | 1.0 (0.9–1.1) | "
        "0.76 / 0.76 / 0.78 | 0.86 / 0.86 / 0.89 |"
    ]
    assert "--rows 1000 --repeats 2 --cores 1" in text
    assert "Machine: CPU not recorded." in text
    cpu = {"model": "Xeon", "matrix_flags": ["avx512_bf16"]}
    text = bench.markdown(
        {**report, "summary": {"1": summary}, "machine": {"cpu": cpu}}
    )
    assert "Machine: Xeon with no AVX2, no AVX-512, AVX512-BF16, no AMX-BF16." in text
