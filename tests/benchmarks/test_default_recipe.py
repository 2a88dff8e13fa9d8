"""benchmarks/default_recipe.py: the summary, the verdict and the report."""

import pathlib
import sys

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import default_recipe as bench  # noqa: E402


def _census(income: list[float], marital: list[float]) -> dict:
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
        "split": "test split",
        "defaults": entry,
        "one_epoch": entry,
        "logistic_regression": {"income": 0.9384, "marital": 0.9941},
    }


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
    assert bench.verdict({}) == {"income": None, "marital": None, "ctr_gap": None}


def test_markdown_shows_both_recipes_and_the_verdict():
    report = {
        "seeds": [1, 2],
        "wall_minutes": 3.0,
        "census": _census([0.9436, 0.9440], [0.9944, 0.9946]),
        "click_log": _click([0.0064, 0.0036, 0.0080]),
    }
    report["census"]["gradient_boosting"] = {"income": 0.9478, "marital": 0.9947}
    report["verdict"] = bench.verdict(report)
    text = bench.markdown(report)
    assert "| defaults | 0.9438 ± 0.0003 | 0.9945 ± 0.0001 | 12, 12 |" in text
    assert "| logistic regression (scikit-learn) | 0.9384 | 0.9941 | |" in text
    assert (
        "| gradient-boosted trees (scikit-learn, the strongest reference) "
        "| 0.9478 | 0.9947 | |" in text
    )
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
        "The income target is above what gradient-boosted trees reach on these "
        "inputs and this split (0.9478)." in text
    )


def test_a_bad_argument_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--rows", "10"])
    assert exit_info.value.code == 2
    assert "--rows must be >= 1000" in capsys.readouterr().err
