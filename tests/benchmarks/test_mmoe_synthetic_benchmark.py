"""benchmarks/mmoe_synthetic.py: the input pipeline, the summary and the verdict.

The verdict decides what docs/benchmarks.md claims about the paper's finding,
so it is tested on hand-made results whose answer is known.
"""

import json
import pathlib
import re
import sys

import numpy as np
import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import mmoe_synthetic  # noqa: E402
import mmoe_synthetic_report  # noqa: E402
import mmoe_synthetic_setup  # noqa: E402

SEEDS = [1, 2, 3, 4]


def _records(test_mse: dict[tuple[str, str], list[float]]) -> list[dict]:
    """Fit records as `run` makes them; both tasks get the given test MSE."""
    records = []
    for (p, model), per_seed in test_mse.items():
        for seed, mse in zip(SEEDS, per_seed, strict=True):
            records.append(
                {
                    "p": p,
                    "seed": seed,
                    "model": model,
                    "label_correlation": float(p),
                    "label_variance": {"y1": 1.0, "y2": 1.0},
                    "linear_r2": {"y1": 0.5, "y2": 0.5},
                    "test_mse": {"task1": mse, "task2": mse},
                    "train_mse": {"task1": mse, "task2": mse},
                    "train_loss": {"task1": [2 * mse, mse], "task2": [2 * mse, mse]},
                    "epoch_seconds": [1.0, 1.0],
                    "examples_per_second": 1000,
                    "parameters": 10,
                }
            )
    return records


def _results(advantage: dict[str, list[float]]) -> dict:
    """Shared-bottom and OMoE at MSE 0.5; MMoE better by `advantage[p]` per seed."""
    test_mse = {}
    for p, gains in advantage.items():
        test_mse[(p, "shared_bottom")] = [0.5] * len(SEEDS)
        test_mse[(p, "omoe")] = [0.5] * len(SEEDS)
        test_mse[(p, "mmoe")] = [0.5 - g for g in gains]
    return mmoe_synthetic_report.summarise(_records(test_mse))


def test_summarise_means_and_paired_advantage():
    results = _results(
        {"0.5": [0.10, 0.12, 0.08, 0.10], "1.0": [0.0, 0.02, -0.02, 0.0]}
    )
    mmoe = results["0.5"]["mmoe"]
    assert mmoe["seeds"] == SEEDS
    assert mmoe["test_mse_both_tasks"]["mean"] == pytest.approx(0.4)
    assert mmoe["test_mse_both_tasks"]["per_seed"] == [0.4, 0.38, 0.42, 0.4]
    assert mmoe["train_loss_curve"] == [pytest.approx(0.8), pytest.approx(0.4)]
    assert mmoe["train_loss_curves"][1] == [pytest.approx(0.76), pytest.approx(0.38)]
    # Each seed's mean over the epochs of its curve (2 * mse, mse).
    along = mmoe["train_loss_along_training"]["per_seed"]
    assert along == pytest.approx([0.6, 0.57, 0.63, 0.6])
    # Every run is above STUCK_MSE = 0.1: all counted as not learnt.
    assert mmoe["runs_with_a_task_above"]["seeds"] == SEEDS
    gap = mmoe_synthetic_report.gap_analysis(results, "test_mse_both_tasks")
    assert gap["advantage"]["0.5"]["mean"] == pytest.approx(0.1)
    assert gap["advantage"]["0.5"]["positive"] == 4
    assert gap["advantage"]["0.5"]["relative"] == pytest.approx(0.2)
    assert gap["advantage"]["1.0"]["mean"] == pytest.approx(0.0)
    assert gap["trend_on_means"] is True
    growth = gap["growth_lowest_vs_highest_p"]
    assert growth["per_seed"] == pytest.approx([0.1, 0.1, 0.1, 0.1])


def test_verdict_reproduced_when_the_gap_grows_consistently():
    results = _results(
        {
            "0.5": [0.10, 0.12, 0.09, 0.11],
            "0.9": [0.05, 0.06, 0.04, 0.05],
            "1.0": [0.00, 0.01, -0.01, 0.00],
        }
    )
    verdict = mmoe_synthetic_report.verdict(results)
    assert verdict["status"] == "reproduced"
    assert "ordered as in the paper" in verdict["summary"]
    assert "4/4 seeds positive" in verdict["summary"]


def test_verdict_direction_only_when_the_growth_is_noise():
    # Means ordered as in the paper, but one seed carries it all.
    results = _results(
        {
            "0.5": [0.40, -0.02, -0.03, -0.01],
            "0.9": [0.05, 0.0, 0.0, 0.0],
            "1.0": [0.0, 0.0, 0.0, 0.0],
        }
    )
    assert mmoe_synthetic_report.verdict(results)["status"] == "direction only"


def test_verdict_not_reproduced_when_the_gap_shrinks_as_p_falls():
    results = _results(
        {"0.5": [0.01, 0.0, 0.01, 0.0], "0.9": [0.05] * 4, "1.0": [0.10] * 4}
    )
    verdict = mmoe_synthetic_report.verdict(results)
    assert verdict["status"] == "not reproduced"
    assert "not ordered as in the paper" in verdict["summary"]
    # Shared-bottom does not change with p; MMoE gets worse as p falls.
    degradation = verdict["degradation_test_mse"]
    assert degradation["shared_bottom"]["mean"] == pytest.approx(0.0)
    assert degradation["mmoe"]["mean"] == pytest.approx(0.095)


def _report(results: dict, **budget) -> dict:
    return {
        "benchmark": "mmoe_synthetic",
        "budget": {
            "train_rows": 1024,
            "test_rows": 100,
            "epochs": 2,
            "batch_size": 512,
            "learning_rate": 0.002,
            "seeds": SEEDS,
            **budget,
        },
        "quick": False,
        "results": results,
        "verdict": mmoe_synthetic_report.verdict(results),
        "wall_seconds": 60.0,
    }


def test_markdown_has_a_row_per_correlation_and_model():
    # A report without width or alpha_std (older runs) is of the default setting.
    report = _report(_results({"0.5": [0.1] * 4, "1.0": [0.0] * 4}))
    text = mmoe_synthetic_report.markdown(report)
    for p in ("0.5", "1.0"):
        for model in ("shared_bottom", "omoe", "mmoe"):
            assert f"| {p} | {model} |" in text
    assert "(4 Adam steps, lr 0.002)" in text
    assert text.startswith("## MMoE synthetic\n")
    assert "8 experts of one 16-unit layer (the paper's sizes)" in text
    assert "alpha ~ N(0, 1²)" in text
    assert "`benchmarks/results/mmoe_synthetic.json`" in text
    report["budget"].update(width=32, alpha_std=3.0)
    other = mmoe_synthetic_report.markdown(report)
    assert other.startswith("## MMoE synthetic (width 32, alpha_std 3)\n")
    assert "`python benchmarks/mmoe_synthetic.py --width 32 --alpha-std 3`" in other
    assert "shared-bottom one 32-unit layer" in other
    assert "alpha ~ N(0, 3²)" in other
    assert "`benchmarks/results/mmoe_synthetic_width32_alpha3.json`" in other
    assert "| 0.5 | +0.10000 ± 0.00000 | +0.10000 | +20.0% | 4/4 |" in text
    assert "| +0.15000 ± 0.00000 | 4/4 |" in text


def test_in_memory_dataset_is_a_new_permutation_each_epoch():
    rows, batch_size = 10, 4
    columns = {"a": np.arange(rows, dtype=np.float32)}
    dataset, steps = mmoe_synthetic.in_memory_dataset(columns, batch_size, 3, seed=5)
    assert steps == 2  # full batches only: 2 rows of each epoch are left out
    batches = [b["a"].numpy() for b in dataset]
    assert len(batches) == 6 and all(b.shape == (batch_size,) for b in batches)
    epochs = [np.concatenate(batches[i : i + 2]) for i in range(0, 6, 2)]
    for epoch in epochs:
        assert len(set(epoch.tolist())) == 8  # no row twice within an epoch
        assert set(epoch.tolist()) <= set(range(rows))
    assert not all(np.array_equal(epochs[0], e) for e in epochs[1:])
    again = [
        b["a"].numpy()
        for b in mmoe_synthetic.in_memory_dataset(columns, batch_size, 3, seed=5)[0]
    ]
    np.testing.assert_array_equal(np.concatenate(batches), np.concatenate(again))


def test_in_memory_dataset_rejects_a_batch_larger_than_the_data():
    columns = {"a": np.zeros(3, np.float32)}
    with pytest.raises(
        ValueError, match=r"`batch_size` must be <= the number of rows \(3\)"
    ):
        mmoe_synthetic.in_memory_dataset(columns, 4, 1, seed=1)


@pytest.mark.slow
def test_quick_run_writes_json_and_doc_section(tmp_path):
    out, doc = tmp_path / "result.json", tmp_path / "benchmarks.md"
    argv = ["--quick", "--seeds", "3", "--correlations", "0.5", "1.0"]
    argv += ["--out", str(out), "--doc", str(doc)]
    report = mmoe_synthetic.main(argv)
    saved = json.loads(out.read_text())
    assert saved["results"].keys() == {"0.5", "1.0"}
    for models in saved["results"].values():
        assert list(models) == ["shared_bottom", "omoe", "mmoe"]
        for summary in models.values():
            assert summary["seeds"] == [3]
            assert np.isfinite(summary["test_mse_both_tasks"]["mean"])
            assert len(summary["train_loss_curve"]) == 2
    assert saved["verdict"]["status"] == report["verdict"]["status"]
    assert saved["verdict"]["status"] in {
        "reproduced",
        "direction only",
        "not reproduced",
    }
    text = doc.read_text()
    assert "<!-- begin: mmoe-synthetic -->" in text and "## MMoE synthetic" in text


def test_models_share_the_first_layer_width():
    paper = mmoe_synthetic_setup.models()
    assert paper["shared_bottom"] == ("shared_bottom", {"units": [128]})
    assert paper["mmoe"] == ("mmoe", {"num_experts": 8, "expert_units": [16]})
    assert paper["omoe"] == ("omoe", {"num_experts": 8, "expert_units": [16]})
    narrow = mmoe_synthetic_setup.models(32)
    assert narrow["shared_bottom"][1] == {"units": [32]}
    assert narrow["mmoe"][1] == {"num_experts": 8, "expert_units": [4]}
    for width in (0, 12):
        with pytest.raises(ValueError, match=f"`width={width}`"):
            mmoe_synthetic_setup.models(width)


def test_a_bad_width_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        mmoe_synthetic.main(["--width", "12", "--quick"])
    assert exit_info.value.code == 2
    assert "`width` must be a positive multiple of 8" in capsys.readouterr().err


def test_a_bad_alpha_std_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        mmoe_synthetic.main(["--alpha-std", "0", "--quick"])
    assert exit_info.value.code == 2
    assert "--alpha-std must be > 0. Received: 0.0" in capsys.readouterr().err


def test_each_setting_has_its_own_results_file():
    names = {
        (128, 1.0): "mmoe_synthetic.json",
        (32, 1.0): "mmoe_synthetic_width32.json",
        (128, 3.0): "mmoe_synthetic_alpha3.json",
        (32, 2.5): "mmoe_synthetic_width32_alpha2.5.json",
    }
    for (width, alpha_std), name in names.items():
        path = mmoe_synthetic_setup.results_path(width, alpha_std)
        assert path.name == name
        assert path.parent == mmoe_synthetic_setup.RESULTS.parent


def test_variants_table_covers_every_full_report_beside_the_output(tmp_path):
    # Default setting: the paper's trend (advantage grows as p falls); the
    # width-32 setting: the advantage shrinks. A quick run is left out.
    grows = _results({"0.5": [0.10, 0.12, 0.09, 0.11], "1.0": [0.0, 0.01, 0.0, 0.01]})
    shrinks = _results({"0.5": [0.0] * 4, "1.0": [0.05, 0.04, 0.06, 0.05]})
    default, narrow = _report(grows), _report(shrinks, width=32)
    quick = {**_report(shrinks, width=16), "quick": True}
    for name, report in [
        ("mmoe_synthetic.json", default),
        ("mmoe_synthetic_width32.json", narrow),
        ("mmoe_synthetic_width16.json", quick),
        ("unrelated.json", {"benchmark": "other"}),
    ]:
        (tmp_path / name).write_text(json.dumps(report))
    doc = tmp_path / "benchmarks.md"
    mmoe_synthetic_report.update_docs(
        narrow, tmp_path / "mmoe_synthetic_width32.json", doc
    )
    text = doc.read_text()
    # A run of another setting leaves the default's own section alone.
    assert "<!-- begin: mmoe-synthetic -->\n<!-- end: mmoe-synthetic -->" in text
    variants = text.split("<!-- begin: mmoe-synthetic-variants -->")[1]
    assert "| width 128 (paper), alpha_std 1 (default) | 4 | 1.0 |" in variants
    assert "| width 32, alpha_std 1 (default) | 4 | 0.5 | 0.5000 | 0.5000 |" in variants
    assert "width 16" not in variants
    assert variants.index("width 128") < variants.index("width 32")
    assert (
        "- width 128 (paper), alpha_std 1 (default) (`mmoe_synthetic.json`, 1 min): "
        "**reproduced**; growth +0.1000 ± 0.0041; against OMoE instead of "
        "shared-bottom: reproduced, growth +0.1000 ± 0.0041; on the training loss "
        "along training: reproduced, growth +0.1500 ± 0.0061; loss shared-bottom "
        "+0.0000 ± 0.0000" in variants
    )
    assert (
        "- width 32, alpha_std 1 (default) (`mmoe_synthetic_width32.json`, 1 min): "
        "**not reproduced**" in variants
    )
    mmoe_synthetic_report.update_docs(default, tmp_path / "mmoe_synthetic.json", doc)
    assert "## MMoE synthetic\n" in doc.read_text()


def test_results_without_the_curve_metric_still_get_a_verdict():
    results = _results({"0.5": [0.1] * 4, "1.0": [0.0] * 4})
    for models in results.values():
        for summary in models.values():
            del summary["train_loss_along_training"]
    verdict = mmoe_synthetic_report.verdict(results)
    assert verdict["status"] == "reproduced"
    assert verdict["status_along_training"] is None
    assert "along training" not in verdict["summary"]
    text = mmoe_synthetic_report.variants_markdown([_report(results)])
    assert "along training: not recorded in this run" in text


def test_a_broken_results_file_beside_the_output_is_named(tmp_path):
    report = _report(_results({"0.5": [0.1] * 4, "1.0": [0.0] * 4}))
    out = tmp_path / "mmoe_synthetic.json"
    out.write_text(json.dumps(report))
    (tmp_path / "mmoe_synthetic_width32.json").write_text('{"budget": \n  oops}')
    doc = tmp_path / "benchmarks.md"
    message = (
        f"{tmp_path / 'mmoe_synthetic_width32.json'} is not valid JSON (line 2, "
        "column 3: Expecting value)"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        mmoe_synthetic_report.update_docs(report, out, doc)
