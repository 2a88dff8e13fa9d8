"""benchmarks/deepctr_comparison.py: schedule, ratios, report, arguments, worker.

The pure parts are tested on hand-made numbers whose summary is known; the
mtrec worker runs once on a small slice of census-income (slow). DeepCTR is
not installed by the tests.
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from script_runs import BENCHMARKS
from script_runs import run_benchmark
from shared_data import requires_census_file

sys.path.insert(0, str(BENCHMARKS))

import deepctr_comparison as bench  # noqa: E402
import deepctr_data  # noqa: E402
import deepctr_report  # noqa: E402
import deepctr_settings  # noqa: E402


def test_ratio_summary_min_median_max_per_pair():
    summary = deepctr_report.ratio_summary([200.0, 300.0, 100.0], [100.0, 100.0, 100.0])
    assert summary == {
        "min": 1.0,
        "median": 2.0,
        "max": 3.0,
        "per_pair": [2.0, 3.0, 1.0],
    }
    # Even number of pairs: the median is the mean of the middle two ratios.
    summary = deepctr_report.ratio_summary([1.0, 3.0, 2.0, 8.0], [2.0, 2.0, 2.0, 2.0])
    assert summary["median"] == 1.25 and summary["min"] == 0.5
    assert summary["max"] == 4.0


def test_ratio_summary_rejects_unpaired_values():
    with pytest.raises(
        ValueError, match="same length .one per pair.. Received: 2 and 1"
    ):
        deepctr_report.ratio_summary([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="non-empty"):
        deepctr_report.ratio_summary([], [])


def test_interleaved_schedule_alternates_the_first_side_per_pair():
    assert bench.interleaved_schedule(["mmoe", "esmm"], 3) == [
        (0, "mmoe", "deepctr"),
        (0, "mmoe", "mtrec"),
        (0, "esmm", "deepctr"),
        (0, "esmm", "mtrec"),
        (1, "mmoe", "mtrec"),
        (1, "mmoe", "deepctr"),
        (1, "esmm", "mtrec"),
        (1, "esmm", "deepctr"),
        (2, "mmoe", "deepctr"),
        (2, "mmoe", "mtrec"),
        (2, "esmm", "deepctr"),
        (2, "esmm", "mtrec"),
    ]


def _run(side, model, pair, cores, train, inference, auc):
    """A worker result as the orchestrator keeps it (predictions scored)."""
    tasks = [task for task, _ in deepctr_settings.MODEL_TASKS[model]]
    return {
        "side": side,
        "model": model,
        "pair": pair,
        "cores": cores,
        "train_examples_per_second": train,
        "inference_examples_per_second": inference,
        # Each side's default batches per predict call, and both at 16: DeepCTR
        # doubles its inference, mtrec (16 already) stays.
        "predict_steps_per_call": 1 if side == "deepctr" else 16,
        "fit_steps_per_call": 1 if side == "deepctr" else 16,
        "equal_train_examples_per_second": train * (1.2 if side == "deepctr" else 1),
        "equal_inference_examples_per_second": inference
        * (2 if side == "deepctr" else 1),
        # Through XLA: DeepCTR 1.5x its default, mtrec 1.2x; first passes.
        "xla_inference_examples_per_second": inference
        * (1.5 if side == "deepctr" else 1.2),
        "first_predict_seconds": 0.6 + 0.1 * pair,
        "xla_first_predict_seconds": 2.0 if side == "deepctr" else 3.0,
        "peak_rss_mb": 700.0 if side == "deepctr" else 350.0,
        "import_rss_mb": 500.0 if side == "deepctr" else 250.0 + pair,
        "rss_above_import_mb": 200.0 if side == "deepctr" else 100.0 - pair,
        "optional_modules_imported": [] if side == "deepctr" else ["pandas"],
        "import_seconds": 7.0,
        "build_seconds": 2.0 if side == "deepctr" else 0.5,
        "first_epoch_seconds": 10.0 + pair,
        "steady_epoch_seconds": 1.0,
        "parameters": 1000 if side == "deepctr" else 1010,
        "test_auc": {t: auc + 0.001 * pair for t in tasks},
        "training_metrics": ["loss"] if side == "deepctr" else ["income_loss"],
        "options": {"categorical_path": side}
        | ({"training_metrics": False, "encoded_ids": None} if side == "mtrec" else {}),
        "versions": {
            "tensorflow": "2.21.0",
            "tf_keras": "2.21.0",
            "library": "0.9.4" if side == "deepctr" else "0.1.0",
        },
        # Measured by mtrec's worker only: the model's matmuls alone.
        "matmul_floor": None
        if side == "deepctr"
        else {
            "flops_per_example": 140832,
            "gemm": [1024, 255, 272],
            "gemm_gflops": 50.0 + pair,
            "train_examples_per_second": 300.0,
            "inference_examples_per_second": 1000.0,
        },
    }


def _fake_runs(ple_inference: float) -> list[dict]:
    """Three pairs per model on one core: mtrec at 2x, 3x, 2.5x DeepCTR's training.

    Inference is 2x except PLE's, ``ple_inference`` x DeepCTR's in every pair.
    """
    runs = []
    for model in deepctr_settings.MODELS:
        for pair, factor in enumerate([2.0, 3.0, 2.5]):
            infer = ple_inference if model == "ple" else 2.0
            runs.append(_run("deepctr", model, pair, 1, 100.0, 400.0, 0.93))
            runs.append(
                _run("mtrec", model, pair, 1, 100.0 * factor, 400 * infer, 0.94)
            )
    return runs


def _report(runs: list[dict], planned: int = 18) -> dict:
    args = argparse.Namespace(
        quick=False,
        repeats=3,
        cores=[1],
        models=list(deepctr_settings.MODELS),
        epochs=6,
        predict_passes=3,
        rows=None,
    )
    meta = {
        "features": [
            {"name": "age", "kind": "dense"},
            {"name": "race", "kind": "categorical", "vocabulary_size": 6},
        ],
        "rows": {"train": 49881, "test": 24941},
        "label_rates": {},
    }
    info = {
        "cpu_count": 2,
        "load_average_at_start": [1.5, 1.0, 0.5],
        "load_average_at_end": [2.5, 1.0, 0.5],
    }
    checkout = {"commit": "abc", "uncommitted_in_mtrec": []}
    return bench.make_report(runs, args, meta, info, checkout, 90.0, planned)


def test_summary_of_a_fake_result_set():
    summary = deepctr_report.summarise(
        _fake_runs(1.5), list(deepctr_settings.MODELS), [1]
    )
    assert set(summary) == {"1"} and list(summary["1"]) == list(deepctr_settings.MODELS)
    mmoe = summary["1"]["mmoe"]
    assert mmoe["pairs"] == 3
    assert mmoe["train_ratio"] == {
        "min": 2.0,
        "median": 2.5,
        "max": 3.0,
        "per_pair": [2.0, 3.0, 2.5],
    }
    assert mmoe["inference_ratio"]["median"] == 2.0
    assert summary["1"]["ple"]["inference_ratio"]["median"] == 1.5
    assert mmoe["equal_inference_ratio"]["median"] == 1.0
    assert summary["1"]["ple"]["equal_inference_ratio"]["median"] == 0.75
    # Through XLA: mtrec 1.2 x 2 over DeepCTR's 1.5, and over its default.
    assert mmoe["xla_inference_ratio"]["per_pair"] == [1.6, 1.6, 1.6]
    assert mmoe["xla_to_default_inference_ratio"]["median"] == 2.4
    assert summary["1"]["ple"]["xla_inference_ratio"]["median"] == 1.2
    assert mmoe["mtrec"]["xla_inference_examples_per_second"] == 960.0
    assert mmoe["deepctr"]["first_predict_seconds"] == 0.7
    assert mmoe["deepctr"]["xla_first_predict_seconds"] == 2.0
    assert (
        mmoe["deepctr"]["predict_steps_per_call"],
        mmoe["mtrec"]["predict_steps_per_call"],
    ) == (1, 16)
    assert mmoe["peak_rss_ratio"]["median"] == 0.5
    assert mmoe["rss_above_import_ratio"]["per_pair"] == [0.5, 0.495, 0.49]
    assert mmoe["mtrec"]["import_rss_mb"] == 251.0
    assert mmoe["mtrec"]["rss_above_import_mb"] == 99.0
    assert mmoe["mtrec"]["optional_modules_imported"] == ["pandas"]
    assert mmoe["mtrec"]["train_examples_per_second"] == 250.0
    assert mmoe["deepctr"]["train_examples_per_second"] == 100.0
    assert mmoe["mtrec"]["first_epoch_seconds"] == 11.0
    assert mmoe["mtrec"]["first_epoch_overhead_seconds"] == 10.0
    assert mmoe["mtrec"]["test_auc"]["income"] == {
        "median": 0.941,
        "min": 0.94,
        "max": 0.942,
    }
    assert mmoe["deepctr"]["parameters"] == 1000
    assert list(summary["1"]["esmm"]["deepctr"]["test_auc"]) == ["ctr", "ctcvr"]
    # The matmul floor: its ceiling on the ratio (floor ÷ DeepCTR) and
    # mtrec's share of it (mtrec ÷ floor), per pair.
    floor = mmoe["matmul_floor"]
    assert (floor["gemm"], floor["flops_per_example"]) == ([1024, 255, 272], 140832)
    assert floor["gemm_gflops"] == 51.0
    assert floor["inference_ceiling_ratio"]["per_pair"] == [2.5, 2.5, 2.5]
    assert floor["inference_share"]["median"] == 0.8
    assert floor["train_ceiling_ratio"]["median"] == 3.0
    assert floor["train_share"]["per_pair"] == [0.667, 1.0, 0.833]
    assert summary["1"]["ple"]["matmul_floor"]["inference_share"]["median"] == 0.6


def test_summary_without_a_floor_in_every_mtrec_run_has_none():
    runs = _fake_runs(2.0)
    runs[1]["matmul_floor"] = None  # an mtrec run recorded before the floor
    summary = deepctr_report.summarise(runs, ["mmoe", "ple"], [1])
    assert "matmul_floor" not in summary["1"]["mmoe"]
    assert "matmul_floor" in summary["1"]["ple"]


def test_summary_pairs_only_complete_pairs():
    runs = _fake_runs(2.0)
    # Drop mtrec's run of pair 2 for MMoE: DeepCTR's run of that pair is unpaired.
    runs = [
        r
        for r in runs
        if not (r["model"] == "mmoe" and r["pair"] == 2 and r["side"] == "mtrec")
    ]
    summary = deepctr_report.summarise(runs, ["mmoe"], [1])
    assert summary["1"]["mmoe"]["pairs"] == 2
    assert summary["1"]["mmoe"]["train_ratio"]["per_pair"] == [2.0, 3.0]


def test_verdict_names_what_misses_the_target():
    met = _report(_fake_runs(2.0))
    assert met["verdict"] == {
        "met": True,
        "per_model": {
            m: {"train": True, "inference": True} for m in deepctr_settings.MODELS
        },
    }
    missed = _report(_fake_runs(1.5))
    assert missed["verdict"]["met"] is False
    assert missed["verdict"]["per_model"]["ple"] == {"train": True, "inference": False}
    assert "**not met** (below 2.0: ple inference)" in deepctr_report.markdown(missed)
    assert "one core): **met**." in deepctr_report.markdown(met)


def test_verdict_without_one_core_is_not_measured():
    runs = [dict(r, cores=2) for r in _fake_runs(2.0)]
    summary = deepctr_report.summarise(runs, list(deepctr_settings.MODELS), [2])
    assert deepctr_report.verdict(summary) == {"met": None, "per_model": {}}


def test_partial_run_is_marked_and_not_judged_without_every_model():
    # Stopped after MMoE's first pair: 2 of 18 workers, one model measured.
    runs = [r for r in _fake_runs(2.0) if r["model"] == "mmoe" and r["pair"] == 0]
    report = _report(runs)
    assert (report["runs_done"], report["runs_planned"]) == (2, 18)
    assert report["complete"] is False
    assert report["verdict"] == {
        "met": None,
        "per_model": {"mmoe": {"train": True, "inference": True}},
    }
    text = deepctr_report.markdown(report)
    assert "**Partial run**: 2 of 18 worker runs finished" in text
    assert "not judged (models measured on one core: mmoe)" in text
    assert "Partial" not in deepctr_report.markdown(_report(_fake_runs(2.0)))


def test_publish_waits_for_a_complete_pair(tmp_path):
    out, doc = tmp_path / "r.json", tmp_path / "b.md"
    lone = [r for r in _fake_runs(2.0) if r["side"] == "deepctr"][:1]
    assert bench.publish(_report(lone), out, doc) is False
    assert not out.exists() and not doc.exists()
    report = _report(_fake_runs(2.0))
    assert bench.publish(report, out, doc) is True
    assert json.loads(out.read_text()) == report
    assert deepctr_report.markdown(report).strip() in doc.read_text()
    assert not (tmp_path / "r.json.tmp").exists()


def test_report_is_json_and_markdown_has_one_row_per_model():
    report = _report(_fake_runs(1.5))
    assert json.loads(json.dumps(report)) == report
    assert report["mtrec_options"] == {
        "training_metrics": False,
        "encoded_ids": None,
    }
    assert report["training_metrics"] == {
        "deepctr": ["loss"],
        "mtrec": ["income_loss"],
    }
    text = deepctr_report.markdown(report)
    lines = text.splitlines()
    # The main table: 12 columns (the other tables have fewer).
    rows = [line for line in lines if line.startswith("| 1 |") and line.count("|") > 12]
    assert len(rows) == 3
    assert rows[0] == (
        "| 1 | mmoe | 2.50 (2.00–3.00) | 2.00 (2.00–2.00) | 100 / 250 | "
        "400 / 800 | 700 / 350 | 2.00 / 0.50 | 11.00 (10.00) / 11.00 (10.00) | "
        "1,000 / 1,010 | income 0.9310, marital 0.9310 | "
        "income 0.9410, marital 0.9410 |"
    )
    assert (
        "(the table above: DeepCTR 1 batch(es) per graph call in `fit` and 1 in "
        "`predict`, mtrec 16 and 16)" in text
    )
    assert (
        "| 1 | mmoe | 2.50 (2.00–3.00) | 2.08 (1.67–2.50) | 2.00 (2.00–2.00) | "
        "1.00 (1.00–1.00) |" in lines
    )
    assert (
        "| 1 | ple | 2.50 (2.00–3.00) | 2.08 (1.67–2.50) | 1.50 (1.50–1.50) | "
        "0.75 (0.75–0.75) |" in lines
    )
    assert "| 1 | mmoe | 500 / 251 | 200 / 99 | 0.49 (0.49–0.50) |" in lines
    assert (
        "| 1 | ple | 1.50 (1.50–1.50) | 1.20 (1.20–1.20) | 1.80 (1.80–1.80) | "
        "600 / 720 | 0.70 / 2.00 | 0.70 / 3.00 |"
    ) in lines
    assert "mtrec's built again with `predict_jit_compile=True`" in text
    assert (
        "| 1 | mmoe | (1024, 255) x (255, 272) | 51.0 | 140,832 | "
        "3.00 (3.00–3.00), 0.83 (0.67–1.00) | 2.50 (2.50–2.50), 0.80 (0.80–0.80) |"
    ) in lines
    assert "an upper bound on any library's examples/s" in text
    assert "by DeepCTR's side: none; by mtrec's: pandas" in text
    assert "`training_metrics=False`" in text
    assert "`encoded_ids` not offered by this mtrec" in text
    assert "load average 1.5 at start, 2.5 at end, on 2 cores; CPU not recorded)" in (
        text
    )
    report["machine"]["cpu"] = {"model": "Xeon", "matrix_flags": ["avx512f"]}
    assert (
        "on 2 cores; Xeon with no AVX2, AVX-512, no AVX512-BF16, no AMX-BF16)"
        in deepctr_report.markdown(report)
    )
    assert "mtrec 0.1.0 at commit `abc` (its committed package)." in text
    report["mtrec_checkout"] = {
        "ref": "worktree",
        "commit": "0123456789abcdef",
        "uncommitted_in_mtrec": ["mtrec/a.py", "mtrec/b.py"],
    }
    assert "at the working tree of commit `0123456789` (2 files changed)." in (
        deepctr_report.markdown(report)
    )


def test_write_doc_section_replaces_only_its_section(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text(
        "# Benchmarks\n\n<!-- begin: other -->\nkeep\n<!-- end: other -->\n"
        "\n<!-- begin: deepctr-comparison -->\nold\n<!-- end: deepctr-comparison -->\n"
        "tail\n"
    )
    deepctr_report.write_doc_section(doc, "deepctr-comparison", "## new\n\nbody\n")
    assert doc.read_text() == (
        "# Benchmarks\n\n<!-- begin: other -->\nkeep\n<!-- end: other -->\n"
        "\n<!-- begin: deepctr-comparison -->\n## new\n\nbody\n"
        "<!-- end: deepctr-comparison -->\ntail\n"
    )


def test_write_doc_section_appends_a_missing_section(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nintro\n")
    deepctr_report.write_doc_section(doc, "deepctr-comparison", "text")
    assert doc.read_text() == (
        "# Benchmarks\n\nintro\n\n<!-- begin: deepctr-comparison -->\ntext\n"
        "<!-- end: deepctr-comparison -->\n"
    )


def test_parse_args_defaults_and_quick():
    args = bench.parse_args(["--cores", "1", "--models", "esmm,mmoe"])
    assert args.cores == [1] and args.models == ["esmm", "mmoe"]
    assert (args.repeats, args.epochs, args.predict_passes) == (3, 6, 3)
    quick = bench.parse_args(["--quick", "--cores", "1"])
    assert (quick.repeats, quick.rows, quick.epochs, quick.predict_passes) == (
        1,
        4096,
        2,
        1,
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--cores", "0"], "`--cores` must be a comma-separated list of core counts"),
        (["--cores", "999"], "Received: `--cores=999`"),
        (["--cores", "two"], "Received: `--cores=two`"),
        (["--cores", "1,1"], "`--cores` lists 1 twice"),
        (["--cores", ""], "Received: `--cores=`"),
        (["--models", "mmoe,dcn"], "`--models` must be a comma-separated list of"),
        (["--models", "ple,ple"], "`--models` repeats a model"),
        (["--repeats", "0"], "`--repeats` must be >= 1. Received: `--repeats=0`"),
        (["--epochs", "1"], "`--epochs` must be >= 2. Received: `--epochs=1`"),
        (["--rows", "10"], "`--rows` must be >= 1024"),
        (["--worker", "mtrec"], "--worker needs --model, --num-cores, --data"),
    ],
)
def test_bad_arguments_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_bad_cores_exit_2_from_the_command_line():
    done = run_benchmark("deepctr_comparison.py", "--cores", "1,x")
    assert done.returncode == 2
    assert "Received: `--cores=1,x`" in done.stderr


def _git(*command: str) -> bytes:
    return subprocess.run(
        ["git", "-C", str(deepctr_settings.REPO), *command],
        capture_output=True,
        check=True,
    ).stdout


def test_mtrec_source_extracts_the_committed_package(tmp_path):
    source = bench.mtrec_source("HEAD", tmp_path / "src")
    head = _git("rev-parse", "HEAD").decode().strip()
    assert source == {
        "ref": "HEAD",
        "commit": head,
        "pythonpath": str(tmp_path / "src"),
        "uncommitted_in_mtrec": [],
    }
    extracted = tmp_path / "src" / "mtrec" / "__init__.py"
    assert extracted.read_bytes() == _git("show", "HEAD:mtrec/__init__.py")
    committed = _git("ls-tree", "-r", "--name-only", "HEAD", "mtrec").decode()
    files = sorted(
        str(p.relative_to(tmp_path / "src"))
        for p in (tmp_path / "src" / "mtrec").rglob("*")
        if p.is_file()
    )
    assert files == sorted(committed.split())


def test_mtrec_source_worktree_uses_the_editable_install(tmp_path):
    source = bench.mtrec_source("worktree", tmp_path / "unused")
    assert source["ref"] == "worktree" and source["pythonpath"] is None
    assert not (tmp_path / "unused").exists()
    assert isinstance(source["uncommitted_in_mtrec"], list)


def test_unknown_mtrec_ref_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.parse_args(["--cores", "1", "--mtrec-ref", "no-such-ref-1f2e"])
    assert exit_info.value.code == 2
    assert "`--mtrec-ref` must name a commit of" in capsys.readouterr().err


def test_last_json_line_skips_library_noise():
    stdout = 'Please check the latest version\n{"a": 1}\nnot json {\n'
    assert bench.last_json_line(stdout) == {"a": 1}
    with pytest.raises(ValueError, match="no JSON object in the worker's output"):
        bench.last_json_line("only noise\n")


@pytest.mark.slow
@requires_census_file
def test_mtrec_worker_reports_its_measurements(tmp_path):
    data = tmp_path / "data"
    meta = deepctr_data.prepare_data(data, split_dir=tmp_path / "split")
    assert len(meta["features"]) == 38
    assert sum(f["kind"] == "categorical" for f in meta["features"]) == 31
    assert meta["rows"] == {"train": 49881, "test": 24941}
    predictions = tmp_path / "predictions.npz"
    command = [sys.executable, str(BENCHMARKS / "deepctr_comparison.py")]
    command += ["--worker", "mtrec", "--model", "mmoe", "--num-cores", "1"]
    command += ["--data", str(data), "--predictions", str(predictions)]
    command += ["--rows", "2048", "--epochs", "2", "--predict-passes", "2"]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = bench.last_json_line(done.stdout)
    assert (result["side"], result["model"], result["cores"]) == ("mtrec", "mmoe", 1)
    assert result["affinity"] == [0]
    assert result["threads"] == {"intra_op": 1, "inter_op": 1}
    assert (result["rows"], result["epochs"]) == (2048, 2)
    assert len(result["epoch_seconds"]) == 2 and len(result["predict_seconds"]) == 2
    # Epoch 2 alone is timed: 2,048 rows over its wall time.
    assert result["train_examples_per_second"] == pytest.approx(
        2048 / result["epoch_seconds"][1], rel=1e-2
    )
    assert result["inference_examples_per_second"] == pytest.approx(
        2 * 2048 / sum(result["predict_seconds"]), rel=1e-2
    )
    from mtrec.models.multi_step import DEFAULT_STEPS_PER_CALL

    assert result["predict_steps_per_call"] == DEFAULT_STEPS_PER_CALL
    assert result["fit_steps_per_call"] == DEFAULT_STEPS_PER_CALL
    # mtrec trains with its training API's default optimiser (the fused
    # legacy Adam); the equal-settings epochs with tf.keras' Adam, as DeepCTR.
    assert result["options"]["fused_optimizer"] is True
    assert result["optimizer"] == "tf_keras.src.optimizers.legacy.adam.Adam"
    assert result["options"]["optimizer"] == result["optimizer"]
    assert result["equal_optimizer"] == "tf_keras.src.optimizers.adam.Adam"
    assert len(result["equal_epoch_seconds"]) == deepctr_settings.EQUAL_EPOCHS
    assert result["equal_train_examples_per_second"] == pytest.approx(
        deepctr_settings.EQUAL_EPOCHS * 2048 / sum(result["equal_epoch_seconds"]),
        rel=1e-2,
    )
    assert len(result["equal_predict_seconds"]) == 2
    assert result["equal_inference_examples_per_second"] == pytest.approx(
        2 * 2048 / sum(result["equal_predict_seconds"]), rel=1e-2
    )
    # Through XLA (a second model with predict_jit_compile), after the peak.
    assert len(result["xla_predict_seconds"]) == 2
    assert result["xla_inference_examples_per_second"] == pytest.approx(
        2 * 2048 / sum(result["xla_predict_seconds"]), rel=1e-2
    )
    assert result["xla_first_predict_seconds"] > 0
    assert result["first_epoch_seconds"] > result["steady_epoch_seconds"] > 0
    assert result["build_seconds"] > 0 and result["import_seconds"] > 0
    assert 100 < result["peak_rss_mb"] < 20_000
    assert 0 < result["import_rss_mb"] <= result["peak_rss_mb"]
    assert result["rss_above_import_mb"] == pytest.approx(
        result["peak_rss_mb"] - result["import_rss_mb"], abs=0.2
    )
    # TensorFlow's Keras imports pandas when it is installed, as it is here.
    assert "pandas" in result["optional_modules_imported"]
    assert set(result["options"]) == {
        "training_metrics",
        "encoded_ids",
        "fused_optimizer",
        "categorical_path",
        "dense_path",
        "optimizer",
    }
    assert "income_loss" in result["training_metrics"]
    assert result["versions"]["library"] == "0.1.0"
    # The census MMoE's kernels: experts 8 x (255, 32), two gates (255, 8),
    # two towers (32, 16) and (16, 1); its largest matmul reads the 255
    # inputs for the experts and both gates.
    floor = result["matmul_floor"]
    assert floor["flops_per_example"] == 2 * (
        8 * 255 * 32 + 2 * 255 * 8 + 2 * (32 * 16 + 16)
    )
    assert floor["gemm"] == [deepctr_settings.BATCH_SIZE, 255, 272]
    assert floor["gemm_gflops"] > 0
    assert floor["inference_examples_per_second"] == pytest.approx(
        floor["gemm_gflops"] * 1e9 / floor["flops_per_example"], rel=1e-2
    )
    assert floor["train_examples_per_second"] == pytest.approx(
        floor["inference_examples_per_second"] / 3, rel=1e-2
    )
    with np.load(predictions) as predicted:
        assert sorted(predicted.files) == ["income_50k", "never_married"]
        for label in predicted.files:
            values = predicted[label]
            assert values.shape == (24941,)
            assert np.all((values >= 0) & (values <= 1))
    _, arrays = deepctr_data.load_arrays(data, None)
    aucs = bench.score(result, arrays)
    assert set(aucs) == {"income", "marital"}
    # 4 steps of training (2 epochs of 2 batches) already rank better than
    # chance (0.72 for marital status when written).
    assert aucs["marital"] > 0.6


def test_mtrec_precision_reaches_the_mtrec_worker_and_names_its_outputs(tmp_path):
    args = bench.parse_args(["--cores", "1"])
    assert args.mtrec_precision == "float32" and args.out == deepctr_settings.RESULTS
    args = bench.parse_args(["--cores", "1", "--mtrec-precision", "mixed_bfloat16"])
    assert args.out.name == "deepctr_comparison_mixed_bfloat16.json"
    data, predictions = tmp_path / "d", tmp_path / "p.npz"
    mtrec = bench.worker_command("py", "mtrec", "mmoe", 1, data, predictions, args)
    deepctr = bench.worker_command("py", "deepctr", "mmoe", 1, data, predictions, args)
    assert mtrec[-2:] == ["--mtrec-precision", "mixed_bfloat16"]
    assert "--mtrec-precision" not in deepctr
    report = _report(_fake_runs(2.0))
    assert bench.doc_section(report) == "deepctr-comparison"
    report["mtrec_options"]["precision"] = "mixed_bfloat16"
    assert bench.doc_section(report) == "deepctr-comparison-mixed_bfloat16"
    assert deepctr_report.markdown(report).startswith(
        "## mtrec vs DeepCTR 0.9.4 (mtrec in mixed_bfloat16)"
    )
    with pytest.raises(SystemExit):
        bench.parse_args(["--cores", "1", "--mtrec-precision", "float16"])


def test_precision_choices_are_mtrecs():
    # A copy (the module imports neither TensorFlow nor mtrec at load time);
    # this keeps it from drifting.
    from mtrec.precision import PRECISIONS

    assert deepctr_settings.PRECISIONS == PRECISIONS
