"""benchmarks/step_copies.py: every case times its change against its baseline."""

import json

from script_runs import run_benchmark


def test_a_short_run_writes_each_case_with_its_baseline_and_ratios(tmp_path):
    # Its own process: the script sets TensorFlow's thread counts, which a
    # process that already ran TensorFlow (a pytest worker) cannot change.
    out = tmp_path / "step_copies.json"
    done = run_benchmark(
        "step_copies.py", "--repeats", "2", "--steps", "2", "--out", str(out)
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    variants = {
        case.split(" ")[0]: set(entries) for case, entries in report["cases"].items()
    }
    assert variants == {
        "one_hot_indices": {"before", "int64_pairs"},
        "id_columns": {"before", "stack_rows_transpose"},
        "esmm_towers": {"before", "shared_first_matmul"},
        "cgc_task_mix": {"before", "mix_expert_groups"},
        "embedding_order": {"before", "grouped"},
        "gate_softmax": {"before", "gate_softmax"},
        "dense_block": {"before", "dense_block"},
        "int32_ids": {"before", "cast_once", "stack_ids", "int64_given"},
        "id_range_check": {"before", "unsigned_compare"},
        "dense_buckets": {"before", "dense_columns_once"},
        "cgc_gate_matrix_train": {"before", "mix_gates_over_groups"},
        "cgc_gate_matrix_predict": {"before", "mix_gates_over_groups"},
        "ple_padded_matmul_train": {"before", "padded_to_16"},
        "ple_padded_matmul_predict": {"before", "padded_to_16"},
        "shared_matmul_train": {"before", "own_matmuls"},
        "shared_matmul_predict": {"before", "own_matmuls"},
    }
    assert sorted(c for c in report["cases"] if c.startswith("shared_matmul")) == [
        f"shared_matmul_{mode} on {width}"
        for mode in ("predict", "train")
        for width in (255, 32, 64)
    ]
    for entries in report["cases"].values():
        assert entries["before"]["speedup_vs_baseline"] == {
            "min": 1.0,
            "median": 1.0,
            "max": 1.0,
        }
        for entry in entries.values():
            assert len(entry["ms"]) == 2 and all(ms > 0 for ms in entry["ms"])
    assert "| esmm_towers 2x[64, 16] on 263 | shared_first_matmul |" in done.stdout
