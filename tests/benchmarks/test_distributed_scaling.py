"""benchmarks/distributed_scaling.py: ratios, the projection, what a step sends.

The pure parts are tested on hand-made numbers; ``communication`` on a small
generated click log (it builds the model and takes one batch's gradient).
"""

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import distributed_scaling as bench  # noqa: E402


def _run(variant, eps):
    return {"variant": variant, "examples_per_second": eps}


def test_ratios_pair_rounds_by_order_and_report_min_median_max():
    runs = [_run("none", 100), _run("ps_w1", 30), _run("none", 200)]
    runs += [_run("ps_w1", 80), _run("none", 100), _run("ps_w1", 35)]
    summary = bench.ratios(runs, ["none", "ps_w1"])
    assert summary["none"]["ratio"]["per_round"] == [1.0, 1.0, 1.0]
    assert summary["ps_w1"]["examples_per_second"] == 35
    assert summary["ps_w1"]["ratio"] == {
        "min": 0.3,
        "median": 0.35,
        "max": 0.4,
        "per_round": [0.3, 0.4, 0.35],
    }


def test_projection_is_bound_by_the_workers_or_the_ps_network():
    summary = {
        "none": {"examples_per_second": 1000},
        "ps_w1": {"examples_per_second": 100},
    }
    comm = {"bytes_per_example_sharded_tables": 1e6}  # 1 MB per example
    rows = {(r["workers"], r["ps"]): r for r in bench.projection(summary, comm)}
    network_per_ps = bench.PROJECTION["ps_network_bytes_per_second"] / 1e6  # 625
    # 4 workers x 100 ex/s x 0.9 = 360 < 2 ps x 625
    assert rows[(4, 2)] == {
        "workers": 4,
        "ps": 2,
        "examples_per_second": 360,
        "bound": "workers",
    }
    assert rows[(64, 2)]["examples_per_second"] == round(2 * network_per_ps)
    assert rows[(64, 2)]["bound"] == "ps network"


def test_markdown_names_the_cores_and_the_cpu():
    tables = {"rows": 1064, "bytes": 6e4, "rows_touched": 543, "bytes_touched": 3e4}
    report = {
        "rows": 1000,
        "epochs": 3,
        "repeats": 2,
        "machine": {"cpus": 2},  # as written before machine_info
        "summary": {"none": {"examples_per_second": 100.0, "ratio": _one()}},
        "communication": {
            "embedding_tables": tables,
            "batch_size": 1024,
            "dense_bytes": 3e5,
            "bytes_per_step_sharded_tables": 6e5,
            "bytes_per_step_whole_tables": 7e5,
        },
        "projection": [],
    }
    text = bench.markdown(report)
    assert "sharing this machine's 2 cores (CPU not recorded; no speed-up" in text
    assert "| none | 100 | 1.0 (1.0–1.0) |" in text
    cpu = {"model": "Xeon", "matrix_flags": ["avx2", "avx512f"]}
    report["machine"] = {"cpu_count": 4, "cpu": cpu}
    text = bench.markdown(report)
    assert (
        "sharing this machine's 4 cores (Xeon with AVX2, AVX-512, no "
        "AVX512-BF16, no AMX-BF16; no speed-up"
    ) in text


def _one():
    return {"min": 1.0, "median": 1.0, "max": 1.0, "per_round": [1.0, 1.0]}


@pytest.mark.slow
def test_communication_counts_the_rows_a_batch_touches(tmp_path):
    import mtrec  # noqa: F401
    from mtrec.data import write_table
    from mtrec.data.synthetic import generate_click_log

    csv = tmp_path / "log.csv"
    write_table(generate_click_log(20_000, seed=1), csv)
    comm = bench.communication(csv, tmp_path, epochs=2)
    tables = comm["embedding_tables"]
    assert comm["batch_size"] == 1024
    assert 0 < tables["rows_touched"] <= tables["rows"]
    assert 0 < tables["bytes_touched"] <= tables["bytes"]
    assert comm["bytes_per_step_whole_tables"] == 2 * (
        tables["bytes"] + comm["dense_bytes"]
    )
    assert comm["bytes_per_step_sharded_tables"] == 2 * (
        tables["bytes_touched"] + comm["dense_bytes"]
    )
    assert comm["bytes_per_example_sharded_tables"] == round(
        comm["bytes_per_step_sharded_tables"] / 1024, 1
    )
