"""train(): a small run end to end, its directory, re-export and bad data."""

import json
import pathlib

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import mtrec as mtrec_package
from mtrec.data import DataError
from mtrec.data import write_table
from mtrec.data.synthetic import generate_click_log
from mtrec.training import ConfigError
from mtrec.training import export_run
from mtrec.training import load_config
from mtrec.training import prepare
from mtrec.training import restore_run
from mtrec.training import train

FEATURES = [
    {
        "name": "user_id",
        "kind": "categorical",
        "dtype": "int64",
        "embedding_dim": 4,
        "min_count": 2,
    },
    {
        "name": "item_category",
        "kind": "categorical",
        "embedding_dim": 4,
        "table": "category",
    },
    {
        "name": "recent_categories",
        "kind": "multi_valued",
        "embedding_dim": 4,
        "table": "category",
    },
    {"name": "position", "kind": "categorical", "dtype": "int64", "embedding_dim": 2},
    {"name": "device", "kind": "categorical", "hash_bins": 8, "embedding_dim": 2},
    {"name": "item_price", "kind": "dense", "log1p": True},
    {"name": "item_hist_ctr", "kind": "dense"},
]


def small_config(tmp_path, data_path, **overrides) -> dict:
    config = {
        "name": "small",
        "seed": 3,
        "runs_dir": str(tmp_path / "runs"),
        "features": FEATURES,
        "tasks": [
            {"name": "ctr", "label": "click"},
            {"name": "cvr", "label": "conversion", "condition": "click"},
        ],
        "data": {
            "train": str(data_path),
            "eval_fraction": 0.2,
            "label_requires": {"conversion": "click"},
            "chunk_rows": 4096,
        },
        "model": {
            "architecture": "esmm",
            "backbone_args": {"units": [16]},
            "tower_units": [8],
        },
        "train": {
            "batch_size": 512,
            "epochs": 2,
            "learning_rate": 0.01,
            "progress": False,
        },
        "eval": {
            "oracle": {"ctr": "true_ctr", "cvr": "true_cvr", "ctcvr": "true_ctcvr"}
        },
        "export": {"base": str(tmp_path / "exports")},
    }
    config.update(overrides)
    return config


@pytest.fixture(scope="module")
def click_log(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "log.csv"
    write_table(
        generate_click_log(20_000, seed=11, num_users=2_000, num_items=2_000), path
    )
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory, click_log):
    tmp = tmp_path_factory.mktemp("run")
    return train(load_config(small_config(tmp, click_log))), tmp


def test_run_directory_holds_config_metrics_checkpoints_and_vocabularies(run):
    result, _ = run
    names = {p.name for p in result.run_dir.iterdir()}
    assert {
        "config.yaml",
        "metrics.json",
        "checkpoints",
        "tensorboard",
        "preprocessing",
    } <= names
    saved = load_config(result.run_dir / "config.yaml")
    assert saved.features == FEATURES or [f["name"] for f in saved.features] == [
        f["name"] for f in FEATURES
    ]
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert set(metrics["eval"]) == {"ctr", "cvr", "ctcvr"}
    assert len(metrics["train"]["loss"]) == 2
    assert (result.run_dir / "preprocessing" / "vocab" / "category.txt").is_file()


def test_eval_metrics_use_the_right_rows_and_learn_something(run, click_log):
    result, _ = run
    ev = result.metrics["eval"]
    df = pd.read_csv(click_log)
    total_eval = ev["ctr"]["rows"]
    assert 0.15 * len(df) < total_eval < 0.25 * len(df)
    assert ev["ctcvr"]["rows"] == total_eval
    # CVR is scored on clicked rows only
    assert ev["cvr"]["rows"] == ev["ctr"]["positives"]
    assert ev["cvr"]["condition"] == "click"
    assert 0.5 < ev["ctr"]["oracle_auc"] <= 1.0
    assert ev["ctr"]["auc"] > 0.55


def test_export_matches_the_trained_model_and_reexport_adds_a_version(run):
    result, tmp = run
    assert result.export_path.name == "1"
    serve = tf.saved_model.load(str(result.export_path)).signatures["serving_default"]
    batch = {}
    for name, spec in serve.structured_input_signature[1].items():
        values = {
            "user_id": [1, 2],
            "item_category": ["c1", "zz"],
            "recent_categories": ["c1|c2", ""],
            "position": [1, 9],
            "device": ["ios", "web"],
            "item_price": [9.5, 120.0],
            "item_hist_ctr": [0.02, 0.1],
        }[name]
        batch[name] = tf.constant(values, dtype=spec.dtype)
    served = serve(**batch)
    direct = result.model(batch)
    for name in ("ctr", "cvr", "ctcvr"):
        np.testing.assert_allclose(
            served[name].numpy(), direct[name].numpy()[:, 0], atol=1e-5
        )
    restored = restore_run(result.run_dir)
    again = restored.model(batch)
    for name in ("ctr", "cvr", "ctcvr"):
        np.testing.assert_allclose(again[name].numpy(), direct[name].numpy(), atol=1e-6)
    assert result.export_path == result.run_dir / "export" / "1"  # not published
    assert not (tmp / "exports").exists()
    assert export_run(result.run_dir) == tmp / "exports" / "1"
    assert export_run(result.run_dir) == tmp / "exports" / "2"
    # The export of train holds what a re-export does: no optimizer slots.
    trained, again = (
        {
            name
            for name, _ in tf.train.list_variables(str(p / "variables" / "variables"))
        }
        for p in (result.export_path, tmp / "exports" / "1")
    )
    assert trained == again
    assert not [name for name in trained if "optimizer" in name.lower()]


def test_conversion_without_click_is_an_error_naming_file_and_line(tmp_path, click_log):
    df = pd.read_csv(click_log, nrows=300)
    row = int(np.flatnonzero(df["click"].to_numpy() == 0)[5])
    df.loc[row, "conversion"] = 1
    bad = tmp_path / "bad.csv"
    df.to_csv(bad, index=False)
    with pytest.raises(DataError, match=rf"bad.csv.*line {row + 2}.*conversion"):
        train(load_config(small_config(tmp_path, bad)))
    # No half-made run directory is left (only the prepared-data cache).
    assert [p.name for p in (tmp_path / "runs").iterdir()] in ([], [".prepared"])
    given = tmp_path / "given"
    with pytest.raises(DataError):
        train(load_config(small_config(tmp_path, bad)), given)
    assert not given.exists()


def test_dropping_label_violations_is_counted(tmp_path, click_log):
    df = pd.read_csv(click_log, nrows=3000)
    rows = np.flatnonzero(df["click"].to_numpy() == 0)[:7]
    df.loc[rows, "conversion"] = 1
    bad = tmp_path / "bad.csv"
    df.to_csv(bad, index=False)
    config = small_config(tmp_path, bad, export={"enabled": False})
    config["data"]["on_label_violation"] = "drop"
    config["train"]["epochs"] = 1
    config["train"]["selection"] = {"metric": None}  # no rows kept for selection
    result = train(load_config(config))
    assert result.metrics["train_rows_dropped"] > 0
    assert (
        result.metrics["train_rows"] + result.metrics["eval"]["ctr"]["rows"] == 3000 - 7
    )


def test_bad_row_in_the_eval_file_surfaces_as_data_error(tmp_path, click_log):
    df = pd.read_csv(click_log, nrows=2000)
    train_path, eval_path = tmp_path / "train.csv", tmp_path / "eval.csv"
    df.iloc[:1500].to_csv(train_path, index=False)
    bad = df.iloc[1500:].copy()
    bad.iloc[40, bad.columns.get_loc("click")] = 3
    bad.to_csv(eval_path, index=False)
    config = small_config(tmp_path, train_path, export={"enabled": False})
    config["data"]["eval"] = str(eval_path)
    config["train"]["epochs"] = 1
    with pytest.raises(DataError, match=r"eval.csv, line 42, column 'click'.*got '3'"):
        train(load_config(config))


def test_mmoe_run_reports_gates_and_inspect_rewrites_them(tmp_path, click_log):
    from mtrec.training import inspect_run

    config = small_config(tmp_path, click_log, export={"enabled": False})
    config["model"] = {
        "architecture": "esmm",
        "backbone": "mmoe",
        "backbone_args": {"num_experts": 3, "expert_units": [8]},
        "tower_units": [4],
        "cross_layers": 1,
        "cross_projection_dim": 4,
    }
    config["train"]["epochs"] = 1
    result = train(load_config(config))
    gates = result.metrics["gates"]
    assert set(gates) == {"ctr", "cvr"}
    for g in gates.values():
        assert len(g["mean_weight"]) == 3
        assert sum(g["mean_weight"]) == pytest.approx(1.0, abs=1e-5)
        assert 0.0 <= g["entropy"] <= g["max_entropy"] == pytest.approx(np.log(3))
        assert g["rows"] == result.metrics["eval"]["ctr"]["rows"]
    again = inspect_run(result.run_dir)
    for name in gates:
        np.testing.assert_allclose(
            again[name]["mean_weight"], gates[name]["mean_weight"], atol=1e-5
        )
    saved = json.loads((result.run_dir / "metrics.json").read_text())
    assert saved["gates"]["ctr"]["rows"] == gates["ctr"]["rows"]


def test_inspect_refuses_a_backbone_without_gates(run):
    from mtrec.training import ConfigError
    from mtrec.training import inspect_run

    result, _ = run
    with pytest.raises(ConfigError, match="has no gates"):
        inspect_run(result.run_dir)


def test_a_task_named_like_its_label_column_is_evaluated_against_the_labels(
    tmp_path, click_log
):
    config = small_config(tmp_path, click_log, export={"enabled": False})
    config["tasks"] = [{"name": "click", "label": "click"}]
    config["model"] = {"architecture": "multi_task", "backbone_args": {"units": [8]}}
    config["eval"] = {"oracle": {"click": "true_ctr"}}
    config["data"]["label_requires"] = {}
    config["train"].update(epochs=1, lr_schedule="cosine")
    result = train(load_config(config))
    entry = result.metrics["eval"]["click"]
    assert entry["positives"] > 0 and 0.5 < entry["auc"] < 1.0
    assert entry["oracle_auc"] > 0.5


def test_cosine_schedule_decays_to_the_final_fraction():
    from mtrec.training.builders import build_optimizer
    from mtrec.training.builders import learning_rate

    config = load_config(
        small_config(pathlib.Path("/tmp"), "x.csv"),
        [
            "train.lr_schedule=cosine",
            "train.learning_rate=0.01",
            "train.lr_final_fraction=0.1",
        ],
    )
    schedule = learning_rate(config, 0.01, total_steps=100)
    optimizer = build_optimizer(config, total_steps=100)
    # The fused (legacy) optimiser holds the schedule itself; Keras' newer
    # ones its value at the current step.
    rate = optimizer.learning_rate
    rate = rate(optimizer.iterations) if callable(rate) else rate
    assert float(rate) == pytest.approx(0.01)  # at step 0
    assert float(schedule(0)) == pytest.approx(0.01)
    assert float(schedule(50)) == pytest.approx(0.01 * (0.1 + 0.9 * 0.5))
    assert float(schedule(100)) == pytest.approx(0.001)
    with pytest.raises(Exception, match="unknown schedule 'linear'"):
        build_optimizer(
            load_config(
                small_config(pathlib.Path("/tmp"), "x.csv"),
                ["train.lr_schedule=linear"],
            ),
            total_steps=10,
        )


def test_cosine_epoch_schedule_restarts_every_epoch():
    from mtrec.training.builders import learning_rate

    config = load_config(
        small_config(pathlib.Path("/tmp"), "x.csv"),
        ["train.learning_rate=0.01", "train.lr_final_fraction=0.1"],
    )
    assert config.train.lr_schedule == "cosine_epoch"  # the default
    schedule = learning_rate(config, 0.01, total_steps=300, epoch_steps=100)
    for epoch in range(3):
        start = epoch * 100
        assert float(schedule(start)) == pytest.approx(0.01)
        assert float(schedule(start + 50)) == pytest.approx(0.01 * (0.1 + 0.9 * 0.5))
        assert float(schedule(start + 99)) == pytest.approx(0.001, rel=0.01)
    # The first epoch is exactly the one-pass cosine decay.
    single = learning_rate(
        load_config(
            small_config(pathlib.Path("/tmp"), "x.csv"),
            ["train.lr_schedule=cosine", "train.lr_final_fraction=0.1"],
        ),
        0.01,
        total_steps=100,
    )
    for step in (0, 17, 63, 99):
        assert float(schedule(step)) == pytest.approx(float(single(step)), rel=1e-6)


def test_auto_selection_is_the_mean_held_out_loss():
    from mtrec.training.config import SelectionConfig
    from mtrec.training.config import selection_mode
    from mtrec.training.config import selection_terms

    kinds = {"ctr": "binary", "ctcvr": "binary", "dwell": "regression"}
    assert selection_terms("auto", kinds) == {
        "ctr.logloss": pytest.approx(1 / 3),
        "ctcvr.logloss": pytest.approx(1 / 3),
        "dwell.rmse": pytest.approx(1 / 3),
    }
    assert selection_mode(SelectionConfig()) == "min"  # auto, whatever mode says
    assert selection_mode(SelectionConfig(metric="ctr.auc")) == "max"
    assert selection_terms("ctr.auc") == {"ctr.auc": 1.0}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.validation_fraction=0.2"], r"must be in \(0, data.eval_fraction=0.2\)"),
        (["data.validation_fraction=0"], r"must be in \(0, data.eval_fraction=0.2\)"),
        (
            ["data.eval=e.csv", "data.validation_fraction=1.0"],
            r"'data.validation_fraction' must be in \(0, 1\)",
        ),
        (["data.rows_per_shard=0"], r"'data.rows_per_shard' must be an int >= 1"),
    ],
)
def test_held_out_validation_settings_are_checked_up_front(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(small_config(pathlib.Path("/tmp"), "x.csv"), overrides)
    # Without selection the validation fraction is not used, so not checked.
    if "validation_fraction" in overrides[-1]:
        load_config(
            small_config(pathlib.Path("/tmp"), "x.csv"),
            [*overrides, "train.selection.metric=null"],
        )


@pytest.mark.parametrize("name", ["esmm", "shared_bottom", "single_task_ctr"])
def test_every_variable_of_a_shipped_config_gets_a_gradient(name, click_log):
    """An unused variable (e.g. an attention layer nobody calls) is a bug."""
    from mtrec.data.reader import iter_chunks
    from mtrec.features.preprocessing import fit_preprocessing
    from mtrec.training.builders import build_feature_set
    from mtrec.training.builders import build_model
    from mtrec.training.builders import build_tasks
    from mtrec.training.builders import column_schema

    shipped = pathlib.Path(mtrec_package.__file__).parent / "configs" / f"{name}.yaml"
    config = load_config(shipped, [f"data.train={click_log}"])
    feature_set = build_feature_set(config)
    tasks = build_tasks(config)
    schema = column_schema(config, feature_set, tasks)
    chunk = next(iter_chunks([click_log], schema, chunk_rows=2048))
    state = fit_preprocessing(feature_set, [chunk], seed=0)
    model = build_model(config, feature_set, tasks, state.vocabularies, state.dense)
    batch = {k: tf.constant(v) for k, v in chunk.items()}
    with tf.GradientTape() as tape:
        loss = model.compute_loss(batch, training=True)
    variables = model.trainable_variables
    grads = tape.gradient(loss, variables)
    assert variables
    missing = [v.name for v, g in zip(variables, grads, strict=True) if g is None]
    assert not missing, f"variables without a gradient: {missing}"


@pytest.mark.parametrize(
    ("eval_section", "message"),
    [
        (
            {"oracle": {"ctr": "true_ctr_typo"}},
            r"'eval.oracle.ctr': column 'true_ctr_typo'",
        ),
        ({"gauc_group": "user_idd"}, r"'eval.gauc_group': column 'user_idd'"),
    ],
)
def test_a_missing_eval_column_is_an_error_before_training(
    tmp_path, click_log, eval_section, message
):
    config = load_config(small_config(tmp_path, click_log, eval=eval_section))
    with pytest.raises(
        ConfigError, match=message + r" is not in the eval rows of .*log"
    ):
        train(config, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists()  # nothing was trained


def test_a_task_with_one_class_in_the_train_rows_is_a_loud_warning(
    tmp_path, click_log, caplog
):
    frame = pd.read_csv(click_log, nrows=3000)
    frame["conversion"] = 0  # no conversion at all
    path = tmp_path / "no_conversions.csv"
    frame.to_csv(path, index=False)
    config = load_config(small_config(tmp_path, path))
    with caplog.at_level("WARNING"):
        prepare(config)
    assert "task 'cvr': label 'conversion' has no positives in the " in caplog.text
    assert "train rows where click=1; it cannot learn to rank" in caplog.text
    assert "task 'ctr'" not in caplog.text


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            {"backbone": "mmoe"},
            r"'model.backbone_args' for 'mmoe': unknown argument\(s\) \['units'\]; "
            r"valid: \['activation', 'dropout', 'expert_units', 'gate_units'",
        ),
        (
            {"backbone": "mmoe", "backbone_args": {"num_experts": 0}},
            r"'model.backbone_args' for 'mmoe': `num_experts` must be",
        ),
        ({"tower_dropout": 1.5}, r"'model.tower_dropout' must be in \[0, 1\)\."),
        ({"cross_layers": -1}, r"'model.cross_layers' must be an int >= 0\."),
    ],
)
def test_model_arguments_are_checked_before_any_data_is_read(tmp_path, model, message):
    raw = small_config(tmp_path, tmp_path / "not_read.csv")  # no such file
    raw["model"] = {**raw["model"], **model}  # backbone_args: {units: [16]}
    with pytest.raises(ConfigError, match=message):
        train(load_config(raw), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_the_reader_schema_does_not_depend_on_the_order_of_config_keys():
    """The prepared data is cached by the schema: a YAML file (keys sorted)
    and the same config as a dict must give one schema, in one order."""
    import dataclasses

    from mtrec.training.builders import build_feature_set
    from mtrec.training.builders import build_tasks
    from mtrec.training.builders import column_schema

    def schema(oracle: dict, label_requires: dict) -> str:
        raw = small_config(pathlib.Path("/tmp"), "x.csv")
        raw["tasks"].append({"name": "like", "label": "like"})
        raw["eval"]["oracle"] = oracle
        raw["data"]["label_requires"] = label_requires
        config = load_config(raw)
        built = column_schema(
            config, build_feature_set(config), list(build_tasks(config))
        )
        return json.dumps(dataclasses.asdict(built))

    oracle = {"ctr": "true_ctr", "cvr": "true_cvr", "ctcvr": "true_ctcvr"}
    requires = {"like": "click", "conversion": "click"}
    assert schema(oracle, requires) == schema(
        dict(reversed(oracle.items())), dict(reversed(requires.items()))
    )
