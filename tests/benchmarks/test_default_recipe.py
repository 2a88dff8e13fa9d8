"""benchmarks/default_recipe.py: the summary, the verdict and the report."""

import json
import pathlib
import sys

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import default_recipe as bench  # noqa: E402


def _input_set(income: list[float], marital: list[float], inputs: int) -> dict:
    runs = [
        {"seed": s, "income": i, "marital": m, "epochs_trained": 12}
        for s, (i, m) in enumerate(zip(income, marital, strict=True))
    ]
    entry = {
        "runs": runs,
        "income": bench.summary(income),
        "marital": bench.summary(marital),
    }
    return {
        "inputs": inputs,
        "defaults": entry,
        "defaults_value": {**entry, "income": bench.summary([0.943])},
        "one_epoch": entry,
        "logistic_regression": {"income": 0.9384, "marital": 0.9941},
        "gradient_boosting": {"income": 0.9478, "marital": 0.9947},
    }


def _census(income: list[float], marital: list[float], **others) -> dict:
    """``others``: input set name -> (income, marital) of its defaults."""
    sets = {"paper": _input_set(income, marital, 38)}
    for name, (other_income, other_marital) in others.items():
        sets[name] = _input_set(other_income, other_marital, 40)
    return {"split": "test split", "input_sets": sets}


def _click(gaps: list[float]) -> dict:
    runs = [
        {
            "seed": seed,
            "ctr_auc": 0.7826,
            "ctr_oracle_auc": round(0.7826 + gap, 4),
            "ctr_gap": gap,
            "ctr_calibration": 0.97,
            "cvr_auc": 0.72,
            "ctcvr_auc": 0.86,
            "eval_rows": 50_392,
            "epochs_trained": 3,
            "best_epoch": 1,
        }
        for seed, gap in enumerate(gaps, start=1)
    ]
    entry = {
        "runs": runs,
        **{
            key: bench.summary([r[key] for r in runs])
            for key in ("ctr_gap", "ctr_auc", "cvr_auc", "ctcvr_auc")
        },
    }
    return {"data": "log", "defaults": entry, "one_epoch": entry}


def test_summary_is_mean_std_min_max():
    assert bench.summary([0.9, 0.95, 1.0]) == {
        "mean": 0.95,
        "std": 0.05,
        "min": 0.9,
        "max": 1.0,
        "n": 3,
    }
    assert bench.summary([0.5])["std"] == 0.0


@pytest.mark.parametrize(
    ("income", "marital", "gaps", "expected"),
    [
        ([0.951, 0.950], [0.9940, 0.9940], [0.0050, 0.0070], (True, True, True)),
        ([0.949, 0.950], [0.9936, 0.9937], [0.0061, 0.0061], (False, False, False)),
    ],
)
def test_verdict_compares_the_defaults_with_the_targets(
    income, marital, gaps, expected
):
    # The click-log verdict is on the mean gap over seeds (0.0060 and 0.0061).
    report = {"census": _census(income, marital), "click_log": _click(gaps)}
    met = bench.verdict(report)
    assert (met["income"], met["marital"], met["ctr_gap"]) == expected
    assert met["by_inputs"] == {
        "paper": {"income": expected[0], "marital": expected[1]}
    }
    assert bench.verdict({}) == {
        "income": None,
        "marital": None,
        "ctr_gap": None,
        "by_inputs": {},
    }


def test_the_verdict_is_on_the_paper_inputs_and_listed_per_set():
    census = _census([0.943], [0.9943], peers=([0.9505], [0.9945]))
    met = bench.verdict({"census": census})
    assert (met["income"], met["marital"], met["ctr_gap"]) == (False, True, None)
    assert met["by_inputs"]["peers"] == {"income": True, "marital": True}
    # Without the paper set the main verdict is not measured.
    del census["input_sets"]["paper"]
    met = bench.verdict({"census": census})
    assert met["income"] is None and met["by_inputs"]["peers"]["income"]


def test_markdown_shows_both_recipes_and_the_verdict():
    report = {
        "seeds": [1, 2],
        "wall_minutes": 3.0,
        "census": _census(
            [0.9436, 0.9440], [0.9944, 0.9946], peers=([0.949], [0.9945])
        ),
        "click_log": _click([0.0064, 0.0036, 0.0080]),
    }
    report["verdict"] = bench.verdict(report)
    text = bench.markdown(report)
    assert (
        "| paper (38) | defaults | 0.9438 ± 0.0003 | 0.9945 ± 0.0001 | 12, 12 |" in text
    )
    assert (
        "| paper (38) | logistic regression (scikit-learn) | 0.9384 | 0.9941 | |"
        in text
    )
    assert (
        "| paper (38) | gradient-boosted trees (scikit-learn) | 0.9478 | 0.9947 | |"
        in text
    )
    assert "| peers (40) | defaults | 0.9490 ± 0.0000 | 0.9945 ± 0.0000 | 12 |" in text
    # The z-score-only inputs' row, beside the default (bucketed) one.
    assert (
        "| paper (38) | defaults_value | 0.9430 ± 0.0000 | 0.9945 ± 0.0001 | 12, 12 |"
        in text
    )
    assert text.index("| paper (38) | defaults |") < text.index(
        "| paper (38) | defaults_value |"
    )
    assert "`defaults_value`: the training defaults, numeric columns as their " in text
    assert "`peers`: `paper` + education + instance weight" in text
    assert "On the other input sets: `peers`: income **not met**, " in text
    assert "from the previous run" not in text
    assert (
        "| defaults | **0.0060** ± 0.0022 | 0.7826 | 0.7200 | 0.8600 | "
        "0.0064, 0.0036, 0.0080 | 3 (1), 3 (1), 3 (1) |" in text
    )
    assert (
        "income AUC ≥ 0.950: **not met**; never-married AUC ≥ 0.9938: met; "
        "click-log CTR gap ≤ 0.006: met (mean of 3 seeds 0.0060, standard "
        "error 0.0013: a margin smaller than that is within seed noise)." in text
    )
    assert (
        "On `paper` the income target is above what gradient-boosted trees "
        "reach on these inputs and this split (0.9478)." in text
    )


def test_a_skipped_part_is_carried_over_from_the_previous_json(tmp_path):
    previous = tmp_path / "default_recipe.json"
    old = {"census": _census([0.943], [0.9943]), "click_log": _click([0.005])}
    previous.write_text(json.dumps(old))
    report = {"census": _census([0.944], [0.9944])}
    bench.carry_over(report, previous)
    assert report["click_log"] == old["click_log"]
    assert (
        report["census"]["input_sets"]["paper"]["defaults"]["income"]["mean"] == 0.944
    )
    assert report["carried_over"] == ["click_log"]
    report.update(seeds=[1], wall_minutes=1.0)
    report["verdict"] = bench.verdict(report)
    assert "config; from the previous run); " in bench.markdown(report)
    # A census part of the format before input sets is not carried over.
    previous.write_text(json.dumps({"census": {"split": "s", "defaults": {}}}))
    report = {}
    bench.carry_over(report, previous)
    assert report == {}
    # No previous file, or not JSON: nothing happens.
    bench.carry_over(report, tmp_path / "missing.json")
    previous.write_text("{not json")
    bench.carry_over(report, previous)
    assert report == {}


def test_a_bad_argument_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--rows", "10"])
    assert exit_info.value.code == 2
    assert "--rows must be >= 1000" in capsys.readouterr().err
