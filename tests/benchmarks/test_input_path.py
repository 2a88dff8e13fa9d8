"""benchmarks/input_path.py: the input share, the summary, the report, a worker.

The pure parts are tested on hand-made numbers; the `files` worker trains two
short epochs on a small generated click log (slow).
"""

import json
import sys

import pytest
from script_runs import BENCHMARKS
from script_runs import run_benchmark

sys.path.insert(0, str(BENCHMARKS))

import input_path as bench  # noqa: E402


def test_input_share_is_the_fraction_the_files_add():
    assert bench.input_share(90.0, 100.0) == 0.1
    assert bench.input_share(100.0, 100.0) == 0.0
    # Files faster than cached batches (noise): a negative share, not hidden.
    assert bench.input_share(110.0, 100.0) == -0.1
    with pytest.raises(ValueError, match="Received: `files_eps=0.0`"):
        bench.input_share(0.0, 100.0)


def _run(side, cores, eps):
    return {"side": side, "cores": cores, "examples_per_second": eps}


def test_summary_pairs_rounds_by_order_and_reports_min_median_max():
    runs = []
    rounds = [(100, 95, 80, 114), (200, 150, 100, 150), (100, 80, 90, 96)]
    for cached, files, memory, encoded in rounds:
        runs += [_run("cached", 1, cached), _run("files", 1, files)]
        runs += [_run("memory", 1, memory), _run("encoded", 1, encoded)]
    runs.append(_run("cached", 2, 50))
    runs.append(_run("files", 2, 50))
    runs.append(_run("memory", 2, 25))
    runs.append(_run("encoded", 2, 60))
    summary = bench.summarise(runs, [1, 2])
    one = summary["1"]
    assert one["examples_per_second"] == {
        "cached": 100,
        "files": 95,
        "memory": 90,
        "encoded": 114,
    }
    assert one["files_ratio"]["per_round"] == [0.95, 0.75, 0.8]
    assert (one["files_ratio"]["min"], one["files_ratio"]["median"]) == (0.75, 0.8)
    assert one["input_share"] == {"min": 0.05, "median": 0.2, "max": 0.25}
    # encoded ÷ files per round: 1.2, 1.0, 1.2
    assert one["encoded_vs_files"]["per_round"] == [1.2, 1.0, 1.2]
    assert one["encoded_ratio"]["median"] == 0.96
    assert summary["2"]["memory_ratio"]["median"] == 0.5
    assert summary["2"]["encoded_vs_files"]["median"] == 1.2
    report = {
        "rows": 1000,
        "epochs": 3,
        "repeats": 3,
        "prepare_seconds": 1.5,
        "encode_seconds": 0.4,
        "summary": summary,
    }
    text = bench.markdown(report)
    assert "| 1 | 100 / 95 / 90 / 114 | 0.8 (0.75–0.95) |" in text
    assert text.rstrip().endswith("| 1.2 (1.2–1.2) |")
    assert "encoding for `encoded` 0.4 s" in text
    assert "input share < 0.1" in text
    # A JSON written before the machine record says so; a new one names the CPU.
    assert "Machine: CPU not recorded." in text
    cpu = {"model": "Xeon", "matrix_flags": ["avx2", "avx512f"]}
    text = bench.markdown({**report, "machine": {"cpu_count": 2, "cpu": cpu}})
    assert "Machine: Xeon with AVX2, AVX-512, no AVX512-BF16, no AMX-BF16." in text


@pytest.mark.slow
def test_worker_trains_from_the_encoded_files(tmp_path):
    """The `encoded` side: what `mtrec train` does, with `train.encode_ids`
    (the `files` side differs only by that flag, the other two only in the
    dataset they fit on; one subprocess each is ~15 s of CI)."""
    side = "encoded"
    from mtrec.data import write_table
    from mtrec.data.synthetic import generate_click_log

    csv = tmp_path / "log.csv"
    write_table(generate_click_log(3000, seed=1), csv)
    done = run_benchmark(
        "input_path.py",
        "--worker",
        side,
        "--num-cores",
        "1",
        "--csv",
        str(csv),
        "--work",
        str(tmp_path),
        "--epochs",
        "2",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    run = json.loads(done.stdout.strip().splitlines()[-1])
    assert run["side"] == side and run["cores"] == 1
    assert len(run["epoch_seconds"]) == 2
    assert run["examples_per_second"] > 0
    # The same rows for every side: the config's hash split of the file.
    assert 2000 < run["rows"] < 3000
    # The train shards were encoded once, beside the prepared ones.
    assert list((tmp_path / "prepared").glob("prepared-*/encoded-*/manifest.json"))
