"""benchmarks/serving_overhead.py --batching: the summary and its markdown, on
hand-made numbers (the load itself is not run here)."""

import sys
import types
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import serving_overhead as bench  # noqa: E402


def _run(round_index, protocol, variant, qps, p50=1.0, p99=2.0):
    return {
        "round": round_index,
        "protocol": protocol,
        "variant": variant,
        "qps": qps,
        "p50_ms": p50,
        "p99_ms": p99,
        "errors": 0,
    }


def test_batching_summary_pairs_rounds_and_reports_min_median_max():
    runs = [
        _run(0, "rest", "none", 100),
        _run(0, "rest", "batching", 150),
        _run(1, "rest", "batching", 240, p50=3.0),
        _run(1, "rest", "none", 200),
        _run(2, "rest", "none", 100),
        _run(2, "rest", "batching", 110, p50=5.0),
    ]
    summary = bench.batching_summary(runs, ["rest"])["rest"]
    assert summary["none"]["ratio_qps"]["per_round"] == [1.0, 1.0, 1.0]
    assert summary["batching"]["qps"] == 150
    assert summary["batching"]["p50_ms"] == 3.0
    assert summary["batching"]["ratio_qps"] == {
        "min": 1.1,
        "median": 1.2,
        "max": 1.5,
        "per_round": [1.5, 1.2, 1.1],
    }


def test_batching_markdown_has_the_command_a_row_per_variant_and_merging():
    runs = [_run(0, "grpc", "none", 100), _run(0, "grpc", "batching", 130)]
    report = {
        "command": "python benchmarks/serving_overhead.py --batching --repeats 1",
        "machine": {"cpus": 2, "load_average_1min": {"start": 1.0, "end": 2.0}},
        "rows": 20_000,
        "batching_parameters": "serving/batching_parameters.txt",
        "clients": 8,
        "duration_s": 15.0,
        "repeats": 1,
        "batcher": {"requests": 1000, "batches": 400, "rows": 1000, "calls": 400},
        "summary": bench.batching_summary(runs, ["grpc"]),
    }
    text = bench.batching_markdown(report)
    assert text.startswith("`python benchmarks/serving_overhead.py --batching")
    assert "| grpc | none | 100 | 1.0 | 2.0 | 1.0 (1.0–1.0) |" in text
    assert "| grpc | batching | 130 | 1.0 | 2.0 | 1.3 (1.3–1.3) |" in text
    assert "2.50 rows per model call" in text
    # A record written before machine_info (``cpus``), then one of machine().
    assert "2 cores, CPU not recorded (load average 1.00 at start, 2.00 at end)" in text
    cpu = {"model": "Xeon", "matrix_flags": ["avx2"]}
    report["machine"] = {**report["machine"], "cpu_count": 4, "cpu": cpu}
    del report["machine"]["cpus"]
    text = bench.batching_markdown(report)
    assert "4 cores, Xeon with AVX2, no AVX-512, no AVX512-BF16, no AMX-BF16 (" in text


def test_update_doc_section_replaces_only_its_section(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text(
        "# B\n<!-- begin: other -->\nkeep\n<!-- end: other -->\n"
        "<!-- begin: serving_batching -->\nold\n<!-- end: serving_batching -->\ntail\n"
    )
    bench.update_doc_section(doc, "serving_batching", "new")
    assert doc.read_text() == (
        "# B\n<!-- begin: other -->\nkeep\n<!-- end: other -->\n"
        "<!-- begin: serving_batching -->\nnew\n<!-- end: serving_batching -->\ntail\n"
    )


def test_the_machine_record_is_the_one_taken_before_the_run():
    info = {"cpu_count": 2, "load_average_at_start": [1.5, 1.0, 0.5], "cpu": None}
    tf = types.SimpleNamespace(__version__="2.21.0")
    record = bench.serving_machine(tf, info, "shared CPUs")
    assert {k: record[k] for k in info} == info
    assert record["tensorflow"] == "2.21.0"
    assert record["note"] == "shared CPUs"
    # The load at the start is the snapshot's, not one read at report time.
    assert record["load_average_1min"]["start"] == 1.5
    assert record["load_average_1min"]["end"] >= 0
