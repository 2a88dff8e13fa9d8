"""benchmarks/deepctr_pooled.py: several comparison runs' pairs as one sample."""

import json
import sys

import pytest
from script_runs import BENCHMARKS
from script_runs import run_benchmark

sys.path.insert(0, str(BENCHMARKS))

import deepctr_pooled  # noqa: E402


def _runs(model, train, inference, rss):
    """One core's pairs of worker results whose mtrec ÷ DeepCTR ratios are
    ``train``, ``inference`` and ``rss`` (one per pair)."""
    runs = []
    for pair, ratios in enumerate(zip(train, inference, rss, strict=True)):
        for side, (t, i, m) in (("deepctr", (1, 1, 1)), ("mtrec", ratios)):
            runs.append(
                {
                    "side": side,
                    "model": model,
                    "cores": 1,
                    "pair": pair,
                    "train_examples_per_second": 100_000.0 * t,
                    "inference_examples_per_second": 200_000.0 * i,
                    "peak_rss_mb": 1000.0 * m,
                    "import_seconds": 5.0,
                    "build_seconds": 0.5,
                    "first_epoch_seconds": 3.0,
                    "steady_epoch_seconds": 1.0,
                    "test_auc": {"income": 0.93},
                    "parameters": 1000,
                }
            )
    return runs


def _report(ple_inference, cpu=None, **changes):
    report = {
        "data": "census 50/25/25",
        "model_sizes": {"mmoe": {"num_experts": 8}, "ple": {"num_levels": 2}},
        "tasks": {
            "mmoe": ["income", "marital"],
            "ple": ["income", "marital"],
            "esmm": ["ctr", "ctcvr"],
        },
        "batch_size": 1024,
        "epochs": 6,
        "learning_rate": 0.001,
        "embedding_dim": 8,
        "mtrec_options": {"encoded_ids": True},
        "complete": True,
        "machine": {"platform": "Linux-x", "cpu": cpu},
        "mtrec_checkout": {"commit": "0123456789abcdef"},
        "models": ["mmoe", "ple", "esmm"],
        "cores": [1],
        "summary": {"1": {}},
        "runs": _runs("mmoe", [2.2, 2.4], [2.6, 2.8], [0.9, 0.9])
        + _runs("ple", [2.1, 2.0], ple_inference, [0.9, 0.91])
        + _runs("esmm", [2.5, 2.5], [2.5, 2.5], [0.95, 0.95]),
    }
    report.update(changes)
    return report


def _write(tmp_path, name, report):
    path = tmp_path / name
    path.write_text(json.dumps(report))
    return path


def test_pairs_of_two_runs_are_pooled_per_model_and_measure(tmp_path):
    a = _write(tmp_path, "a.json", _report([1.9, 1.95]))
    b = _write(tmp_path, "b.json", _report([2.2, 2.3]))
    table = deepctr_pooled.pooled(deepctr_pooled.load_runs([a, b]))
    assert table["1"]["ple"]["pairs"] == 4
    assert table["1"]["ple"]["inference_ratio"] == {
        "median": 2.075,
        "min": 1.9,
        "max": 2.3,
        "per_pair": [1.9, 1.95, 2.2, 2.3],
    }
    assert table["1"]["mmoe"]["train_ratio"]["median"] == 2.3
    # The second report's pairs come after the first's.
    runs = deepctr_pooled.pooled_runs(deepctr_pooled.load_runs([a, b]))
    assert sorted({r["pair"] for r in runs if r["model"] == "ple"}) == [0, 1, 2, 3]
    text = deepctr_pooled.markdown([a, b], deepctr_pooled.load_runs([a, b]))
    assert (
        "| 1 | ple | 4 | 2.05 (2.00–2.10) | 2.08 (1.90–2.30) | 0.91 (0.90–0.91) |"
        in (text)
    )
    assert text.endswith("One-core target (median >= 2.0): met.\n")
    assert "`0123456789`" in text


def test_a_median_below_the_target_is_named(tmp_path):
    a = _write(tmp_path, "a.json", _report([1.9, 1.95]))
    b = _write(tmp_path, "b.json", _report([1.97, 2.3]))
    text = deepctr_pooled.markdown([a, b], deepctr_pooled.load_runs([a, b]))
    assert text.endswith("One-core target (median >= 2.0): below it: ple inference.\n")


def test_runs_with_other_settings_are_refused_naming_file_and_key(tmp_path):
    a = _write(tmp_path, "a.json", _report([2.0, 2.0]))
    b = _write(tmp_path, "b.json", _report([2.0, 2.0], batch_size=512))
    with pytest.raises(deepctr_pooled.PoolError) as info:
        deepctr_pooled.load_runs([a, b])
    assert str(info.value) == (
        f"{b}: `batch_size` differs from {a}'s; runs with other settings are "
        "not one sample. Received: `batch_size=512`"
    )
    # A --quick run (4,096 rows) is not a sample of the full one either.
    c = _write(tmp_path, "c.json", _report([2.0, 2.0], rows=4096))
    with pytest.raises(deepctr_pooled.PoolError, match="`rows` differs"):
        deepctr_pooled.load_runs([a, c])


def _ple_only(ple_inference, **changes):
    """A ``--models ple`` run: its runs, models and tasks are PLE's alone."""
    report = _report(ple_inference, **changes)
    report["models"] = ["ple"]
    report["tasks"] = {"ple": report["tasks"]["ple"]}
    report["runs"] = [r for r in report["runs"] if r["model"] == "ple"]
    return report


def test_a_run_of_one_model_pools_with_runs_of_all_three(tmp_path):
    a = _write(tmp_path, "a.json", _report([1.9, 1.95]))
    b = _write(tmp_path, "b.json", _report([2.2, 2.3]))
    c = _write(tmp_path, "c.json", _ple_only([1.6, 1.7]))
    reports = deepctr_pooled.load_runs([a, b, c])
    table = deepctr_pooled.pooled(reports)
    assert list(table["1"]) == ["ple"]
    assert table["1"]["ple"]["pairs"] == 6
    assert table["1"]["ple"]["inference_ratio"]["per_pair"] == [
        1.9,
        1.95,
        2.2,
        2.3,
        1.6,
        1.7,
    ]
    assert table["1"]["ple"]["inference_ratio"]["median"] == 1.925
    # Not judged: only PLE was in every run; its ratio below the target named.
    assert deepctr_pooled.markdown([a, b, c], reports).endswith(
        "One-core target (median >= 2.0): not judged (models in every run on "
        "one core: ple); of those, below it: ple inference.\n"
    )
    d = _write(tmp_path, "d.json", _ple_only([2.2, 2.3]))
    assert deepctr_pooled.markdown([a, d], deepctr_pooled.load_runs([a, d])).endswith(
        "not judged (models in every run on one core: ple); none of those below it.\n"
    )
    # The models both measured must still agree on their settings.
    other = _ple_only([2.0, 2.0])
    other["tasks"]["ple"] = ["income"]
    e = _write(tmp_path, "e.json", other)
    with pytest.raises(deepctr_pooled.PoolError, match="`tasks` differs"):
        deepctr_pooled.load_runs([a, e])
    mmoe = _report([2.0, 2.0], models=["mmoe"])
    f = _write(tmp_path, "f.json", mmoe)
    with pytest.raises(deepctr_pooled.PoolError) as info:
        deepctr_pooled.load_runs([c, f])
    assert str(info.value) == (
        f"{f}: measured none of the models of the runs before it (ple); there "
        "is nothing to pool."
    )
    # Two runs may share a model with the first and none with each other.
    with pytest.raises(deepctr_pooled.PoolError, match=f"{f}: measured none"):
        deepctr_pooled.load_runs([a, c, f])


def test_runs_from_other_machines_are_refused(tmp_path):
    xeon = {"model": "Xeon", "matrix_flags": ["avx512f"]}
    epyc = {"model": "EPYC", "matrix_flags": ["avx512f"]}
    a = _write(tmp_path, "a.json", _report([2.0, 2.0], cpu=xeon))
    b = _write(tmp_path, "b.json", _report([2.0, 2.0], cpu=epyc))
    with pytest.raises(deepctr_pooled.PoolError, match="ran on another machine"):
        deepctr_pooled.load_runs([a, b])
    other = _report([2.0, 2.0], cpu=xeon)
    other["machine"]["platform"] = "Linux-y"
    c = _write(tmp_path, "c.json", other)
    with pytest.raises(deepctr_pooled.PoolError, match="ran on another machine"):
        deepctr_pooled.load_runs([a, c])
    # A run made before the CPU was recorded pools with one on its platform.
    d = _write(tmp_path, "d.json", _report([2.0, 2.0]))
    assert len(deepctr_pooled.load_runs([d, a])) == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot be read as JSON"),
        ("{not json", "cannot be read as JSON"),
        ("[]", "not a DeepCTR comparison report (no summary)"),
        (json.dumps({"summary": {}}), "a report without its workers' runs"),
        (
            json.dumps({"summary": {}, "runs": []}),
            "a report without the list of its models",
        ),
        (json.dumps(_report([2.0, 2.0], complete=False)), "an incomplete run"),
    ],
)
def test_unreadable_runs_exit_2_naming_the_file(tmp_path, content, message):
    path = tmp_path / "run.json"
    if content is not None:
        path.write_text(content)
    done = run_benchmark("deepctr_pooled.py", str(path))
    assert done.returncode == 2
    assert done.stderr.startswith(f"deepctr_pooled: {path}: ")
    assert message in done.stderr
    assert done.stdout == ""


def test_the_command_prints_the_pooled_table(tmp_path):
    a = _write(tmp_path, "a.json", _report([1.9, 1.95]))
    b = _write(tmp_path, "b.json", _report([2.2, 2.3]))
    done = run_benchmark("deepctr_pooled.py", str(a), str(b))
    assert done.returncode == 0, done.stderr
    assert "| 1 | mmoe | 4 | 2.30 (2.20–2.40) | 2.70 (2.60–2.80) |" in done.stdout
