"""A user's mistakes, table-driven: each is exit 2 and one line naming where.

Every case starts from one small valid run (a tiny click log, a features
file, a config) and breaks one thing: a config value, a feature spec, a data
file, a command-line argument. The command must return 2 with a single
``mtrec <cmd>: error: ...`` line that contains the expected text (the key,
file, line or column), print no traceback, and leave no run directory behind.
"""

import copy
import dataclasses
import shutil
import typing

import pandas as pd
import pytest
import yaml

from mtrec.cli import main
from mtrec.data import write_table
from mtrec.data.synthetic import generate_click_log

FEATURES = [
    {"name": "item_category", "kind": "categorical", "embedding_dim": 4},
    {"name": "device", "kind": "categorical", "embedding_dim": 2},
    {"name": "position", "kind": "categorical", "dtype": "int64", "embedding_dim": 2},
    {"name": "recent_categories", "kind": "multi_valued", "embedding_dim": 4},
    {"name": "item_price", "kind": "dense", "log1p": True},
]

CONFIG = {
    "name": "bad",
    "features": "features.yaml",
    "tasks": [
        {"name": "ctr", "label": "click"},
        {"name": "cvr", "label": "conversion", "condition": "click"},
    ],
    "data": {"train": "log.csv", "label_requires": {"conversion": "click"}},
    "model": {"backbone_args": {"units": [8]}, "tower_units": [4]},
    "train": {"batch_size": 256, "epochs": 1, "progress": False},
    "eval": {"oracle": {"ctr": "true_ctr"}},
    "runs_dir": "runs",
    "export": {"enabled": False, "base": "exports"},
}


@pytest.fixture(scope="module")
def click_log(tmp_path_factory):
    path = tmp_path_factory.mktemp("bad_inputs") / "log.csv"
    write_table(generate_click_log(1500, seed=3), path)
    return path


@dataclasses.dataclass
class Case:
    """One bad input: how to break the valid run, and what the error says."""

    id: str
    #: ``(workdir) -> argv``; the workdir holds the valid run's files.
    argv: typing.Callable
    #: Text the one error line must contain (after ``mtrec <cmd>: error: ``).
    message: str


def _merge(base: dict, changes: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _write_run(work, config=None, features=None):
    (work / "features.yaml").write_text(
        yaml.safe_dump(FEATURES if features is None else features)
    )
    (work / "run.yaml").write_text(yaml.safe_dump(_merge(CONFIG, config or {})))
    return str(work / "run.yaml")


def train_with(config=None, features=None, *extra):
    """``mtrec train`` on the valid run with ``config`` merged in."""

    def argv(work):
        return ["train", _write_run(work, config, features), *extra]

    return argv


def train_set(*assignments):
    """``mtrec train`` on the valid run with ``--set`` overrides."""

    def argv(work):
        sets = [arg for a in assignments for arg in ("--set", a)]
        return ["train", _write_run(work), *sets]

    return argv


def with_feature(**changes):
    """The valid features with the first feature's spec changed."""
    features = copy.deepcopy(FEATURES)
    features[0].update(changes)
    return features


def train_on_data(mutate):
    """``mtrec train`` on a copy of the log that ``mutate(df, path)`` wrote."""

    def argv(work):
        df = pd.read_csv(work / "log.csv", keep_default_na=False)
        target = mutate(df, work / "bad.csv")
        return ["train", _write_run(work, {"data": {"train": str(target)}})]

    return argv


def write_csv(transform):
    def mutate(df, path):
        transform(df).to_csv(path, index=False)
        return path

    return mutate


def write_text(text):
    def mutate(df, path):
        path.write_text(text(df))
        return path

    return mutate


def _header(df):
    return ",".join(df.columns)


def _row(df, i=0):
    return ",".join(str(v) for v in df.iloc[i])


def _set(column, row, value):
    def transform(df):
        df = df.astype({column: object})
        df.loc[row, column] = value
        return df

    return transform


def _conversion_without_click(df):
    row = df.index[df["click"] == 0][3]
    df.loc[row, "conversion"] = 1
    return df


def _parquet_as_csv(df, path):
    df.to_parquet(path)
    return path


def _no_checkpoints(work):
    """A finished run whose checkpoints were deleted, then resumed."""
    run = work / "runs" / "done"
    assert main(["train", _write_run(work), "--run-dir", str(run)]) == 0
    shutil.rmtree(run / "checkpoints")
    return ["resume", str(run)]


CASES = [
    # --- the config file itself
    Case("config-missing", lambda w: ["train", str(w / "nope.yaml")], "nope.yaml"),
    Case(
        "config-yaml-syntax",
        lambda w: ["train", str(_text(w / "run.yaml", "tasks: [a\n"))],
        "run.yaml",
    ),
    Case(
        "config-not-a-mapping",
        lambda w: ["train", str(_text(w / "run.yaml", "- a\n- b\n"))],
        "run.yaml",
    ),
    Case("unknown-top-key", train_with({"modle": {}}), "unknown key(s) ['modle']"),
    Case("unknown-train-key", train_with({"train": {"epocs": 1}}), "train.epocs"),
    Case("set-without-equals", train_set("train.epochs"), "train.epochs"),
    Case("set-unknown-key", train_set("train.nope=1"), "train.nope"),
    Case("set-wrong-type", train_set("train.epochs=abc"), "train.epochs"),
    Case("epochs-zero", train_set("train.epochs=0"), "train.epochs"),
    Case("epochs-negative", train_set("train.epochs=-2"), "train.epochs"),
    Case("batch-size-zero", train_set("train.batch_size=0"), "train.batch_size"),
    Case("lr-zero", train_set("train.learning_rate=0"), "train.learning_rate"),
    Case("lr-negative", train_set("train.learning_rate=-0.1"), "train.learning_rate"),
    Case("lr-final-zero", train_set("train.lr_final_fraction=0"), "lr_final_fraction"),
    Case(
        "lr-final-above-1", train_set("train.lr_final_fraction=2"), "lr_final_fraction"
    ),
    Case(
        "steps-per-epoch-zero", train_set("train.steps_per_epoch=0"), "steps_per_epoch"
    ),
    Case("eval-batch-zero", train_set("train.eval_batch_size=0"), "eval_batch_size"),
    Case("spe-zero", train_set("train.steps_per_execution=0"), "steps_per_execution"),
    Case("optimizer-unknown", train_set("train.optimizer=adamw2"), "train.optimizer"),
    Case(
        "schedule-unknown", train_set("train.lr_schedule=linear"), "train.lr_schedule"
    ),
    Case(
        "embedding-optimizer-unknown",
        train_set("train.optimizer=composite", "train.embedding_optimizer=lamb"),
        "embedding_optimizer",
    ),
    Case(
        "checkpoints-zero",
        train_set("train.checkpoints_to_keep=0"),
        "checkpoints_to_keep",
    ),
    Case(
        "checkpoint-every-zero",
        train_set("train.checkpoint_every_steps=0"),
        "checkpoint_every_steps",
    ),
    Case(
        "checkpoint-every-not-multiple",
        train_set("train.checkpoint_every_steps=5", "train.steps_per_execution=2"),
        "multiple of 'train.steps_per_execution'",
    ),
    Case(
        "affinity-on-a-cluster",
        train_set(
            "train.affinity_every_steps=5",
            "train.distribution.strategy=multi_worker_mirrored",
        ),
        "'train.affinity_every_steps' works in one process",
    ),
    Case("selection-mode", train_set("train.selection.mode=best"), "selection.mode"),
    Case(
        "selection-metric-output",
        train_set("train.selection.metric=ctx.auc"),
        "train.selection.metric",
    ),
    Case("patience-negative", train_set("train.selection.patience=-1"), "patience"),
    Case("strategy-unknown", train_set("train.distribution.strategy=tpu"), "strategy"),
    Case(
        "num-shards-zero",
        train_set(
            "train.distribution.strategy=parameter_server",
            "train.distribution.num_shards=0",
        ),
        "num_shards",
    ),
    Case("backbone-unknown", train_set("model.backbone=mmoee"), "model.backbone"),
    Case(
        "architecture-unknown",
        train_set("model.architecture=dual"),
        "model.architecture",
    ),
    Case(
        "backbone-arg-unknown",
        train_with({"model": {"backbone_args": {"units": [8], "unitz": 3}}}),
        "unitz",
    ),
    Case(
        "num-experts-zero",
        train_set(
            "model.backbone=mmoe",
            "model.backbone_args={num_experts: 0, expert_units: [8]}",
        ),
        "num_experts",
    ),
    Case(
        "units-zero",
        train_with({"model": {"backbone_args": {"units": [0]}}}),
        "units",
    ),
    Case("tower-dropout", train_set("model.tower_dropout=1.5"), "tower_dropout"),
    Case("precision", train_set("model.precision=bf16"), "model.precision"),
    Case(
        "embedding-order",
        train_set("model.embedding_order=sorted"),
        "'model.embedding_order' must be one of ['grouped', 'features']",
    ),
    Case(
        "predict-jit-compile-not-bool",
        train_set("model.predict_jit_compile=maybe"),
        "'model.predict_jit_compile' must be bool. Received: 'maybe'",
    ),
    Case(
        "predict-jit-compile-with-lookups",
        train_set("model.predict_jit_compile=true"),
        "'model.predict_jit_compile: true' needs features XLA can compile: every "
        "categorical feature single-valued with encoded ids (`num_ids`), no "
        "vocabulary, hashing or token splitting. Features ['item_category', "
        "'device', 'position', 'recent_categories'] need a lookup or a string op",
    ),
    Case(
        "jit-compile-with-lookups",
        train_set("train.jit_compile=true"),
        "'train.jit_compile: true' needs features XLA can compile",
    ),
    Case(
        "predict-jit-compile-distributed",
        train_set(
            "model.predict_jit_compile=true", "train.distribution.strategy=mirrored"
        ),
        "'model.predict_jit_compile: true' works in one process; under "
        "'train.distribution.strategy: mirrored' it is not supported",
    ),
    Case(
        "fused-optimizer",
        train_set("train.fused_optimizer=maybe"),
        "'train.fused_optimizer' must be bool. Received: 'maybe'",
    ),
    Case("tower-units-negative", train_set("model.tower_units=[-4]"), "tower_units"),
    Case("cross-layers-negative", train_set("model.cross_layers=-1"), "cross_layers"),
    Case(
        "tower-activation",
        train_set("model.tower_activation=relux"),
        "tower_activation",
    ),
    Case("weighting-unknown", train_set("weighting.name=magic"), "weighting.name"),
    Case(
        "weighting-arg-unknown",
        train_with({"weighting": {"name": "dwa", "args": {"temprature": 2.0}}}),
        "temprature",
    ),
    Case(
        "weighting-arg-range",
        train_with({"weighting": {"name": "dwa", "args": {"temperature": -1.0}}}),
        "temperature",
    ),
    Case("eval-fraction", train_set("data.eval_fraction=1.5"), "data.eval_fraction"),
    Case("data-format", train_set("data.format=json"), "data.format"),
    Case(
        "label-violation-mode",
        train_set("data.on_label_violation=ignore"),
        "on_label_violation",
    ),
    Case(
        "label-requires-not-a-label",
        train_with({"data": {"label_requires": {"conversion": "clicked"}}}),
        "'data': `label_requires` 'conversion' -> 'clicked' must name binary label",
    ),
    Case(
        "feature-is-a-label",
        train_with(features=[*FEATURES, {"name": "click", "kind": "dense"}]),
        "columns ['click'] are both features and labels",
    ),
    Case("no-tasks", train_with({"tasks": []}), "tasks"),
    Case(
        "task-kind-multiclass",
        train_with(
            {"tasks": [{"name": "ctr", "label": "click", "kind": "multiclass"}]}
        ),
        "multiclass",
    ),
    Case(
        "task-duplicate",
        train_with(
            {
                "tasks": [
                    {"name": "ctr", "label": "click"},
                    {"name": "ctr", "label": "conversion"},
                ]
            }
        ),
        "ctr",
    ),
    Case(
        "task-condition-unknown",
        train_with(
            {
                "tasks": [
                    {"name": "ctr", "label": "click"},
                    {"name": "cvr", "label": "conversion", "condition": "klick"},
                ]
            }
        ),
        "klick",
    ),
    Case(
        "task-weight-negative",
        train_with(
            {
                "tasks": [{"name": "ctr", "label": "click", "weight": -1}],
                "model": {"architecture": "multi_task"},
            }
        ),
        "weight",
    ),
    # --- feature specs
    Case(
        "feature-kind-typo",
        train_with(features=with_feature(kind="categorial")),
        "categorial",
    ),
    Case(
        "feature-duplicate",
        train_with(features=[*FEATURES, FEATURES[0]]),
        "item_category",
    ),
    Case(
        "feature-fill-nan",
        train_with(
            features=[*FEATURES[:4], {**FEATURES[4], "fill_value": float("nan")}]
        ),
        "fill_value",
    ),
    Case(
        "embedding-dim-zero",
        train_with(features=with_feature(embedding_dim=0)),
        "embedding_dim",
    ),
    Case(
        "feature-unknown-key",
        train_with(features=with_feature(embeding_dim=4)),
        "embeding_dim",
    ),
    Case("feature-dtype", train_with(features=with_feature(dtype="int128")), "int128"),
    Case(
        "feature-no-name", train_with(features=[*FEATURES, {"kind": "dense"}]), "name"
    ),
    Case(
        "features-empty-file",
        lambda w: ["train", _write_run(w, features=[]) and _empty_features(w)],
        "features",
    ),
    Case("features-file-missing", train_with({"features": "nope.yaml"}), "nope.yaml"),
    Case("min-count-zero", train_with(features=with_feature(min_count=0)), "min_count"),
    Case(
        "pooling-unknown",
        train_with(features=[*FEATURES[:3], {**FEATURES[3], "pooling": "median"}]),
        "median",
    ),
    # --- data files
    Case("train-file-missing", train_set("data.train=missing.csv"), "missing.csv"),
    Case(
        "eval-file-missing", train_set("data.eval=missing_eval.csv"), "missing_eval.csv"
    ),
    Case(
        "train-suffix-unknown",
        lambda w: [
            "train",
            _write_run(w, {"data": {"train": str(_text(w / "log.txt", "a,b"))}}),
        ],
        "log.txt",
    ),
    Case(
        "csv-header-only",
        train_on_data(write_text(lambda df: _header(df) + "\n")),
        "bad.csv",
    ),
    Case("csv-empty-file", train_on_data(write_text(lambda df: "")), "bad.csv"),
    Case(
        "csv-one-row",
        train_on_data(write_text(lambda df: _header(df) + "\n" + _row(df) + "\n")),
        "bad.csv",
    ),
    Case("parquet-named-csv", train_on_data(_parquet_as_csv), "bad.csv"),
    Case(
        "label-column-missing",
        train_on_data(write_csv(lambda df: df.drop(columns=["click"]))),
        "click",
    ),
    Case(
        "feature-column-missing",
        train_on_data(write_csv(lambda df: df.drop(columns=["device"]))),
        "device",
    ),
    Case("label-value-2", train_on_data(write_csv(_set("click", 5, 2))), "click"),
    Case(
        "label-not-a-number", train_on_data(write_csv(_set("click", 5, "yes"))), "click"
    ),
    Case(
        "dense-not-a-number",
        train_on_data(write_csv(_set("item_price", 7, "cheap"))),
        "item_price",
    ),
    Case(
        "dense-infinite",
        train_on_data(write_csv(_set("item_price", 7, "inf"))),
        "item_price",
    ),
    Case(
        "int-id-not-a-number",
        train_on_data(write_csv(_set("position", 9, "top"))),
        "position",
    ),
    Case(
        "ragged-row",
        train_on_data(
            write_text(
                lambda df: (
                    _header(df) + "\n" + _row(df) + ",extra\n" + _row(df, 1) + "\n"
                )
            )
        ),
        "bad.csv",
    ),
    Case(
        "conversion-without-click",
        train_on_data(write_csv(_conversion_without_click)),
        "conversion",
    ),
    Case(
        "oracle-column-missing",
        train_with({"eval": {"oracle": {"ctr": "true_ctrr"}}}),
        "true_ctrr",
    ),
    Case(
        "gauc-column-missing",
        train_with({"eval": {"gauc_group": "user_idd"}}),
        "user_idd",
    ),
    Case(
        "runs-dir-is-a-file",
        lambda w: [
            "train",
            _write_run(w, {"runs_dir": str(_text(w / "runs_file", "x"))}),
        ],
        "runs_file",
    ),
    Case(
        "export-base-is-a-file",
        lambda w: [
            "train",
            _write_run(
                w,
                {
                    "export": {
                        "enabled": True,
                        "publish": True,
                        "base": str(_text(w / "base_file", "x")),
                    }
                },
            ),
        ],
        "base_file",
    ),
    # --- other commands
    Case("resume-missing-run", lambda w: ["resume", str(w / "no_run")], "no_run"),
    Case("resume-no-checkpoints", _no_checkpoints, "checkpoints"),
    Case(
        "resume-bad-set",
        lambda w: ["resume", str(w / "no_run"), "--set", "model.backbone=mmoe"],
        "model.backbone",
    ),
    Case("export-missing-run", lambda w: ["export", str(w / "no_run")], "no_run"),
    Case("inspect-missing-run", lambda w: ["inspect", str(w / "no_run")], "no_run"),
    Case(
        "prepare-missing-train",
        lambda w: ["prepare", _write_run(w, {"data": {"train": "gone.csv"}})],
        "gone.csv",
    ),
    Case(
        "generate-rows-zero",
        lambda w: ["generate", "--rows", "0", "--out", str(w / "g.csv")],
        "num_rows",
    ),
    Case(
        "generate-suffix",
        lambda w: ["generate", "--rows", "5", "--out", str(w / "g.txt")],
        "g.txt",
    ),
    Case(
        "serve-batching-file-missing",
        lambda w: _serve_batching(w, None),
        "batching parameters file not found",
    ),
    Case(
        "serve-batching-file-bad",
        lambda w: _serve_batching(w, "max_batch_size { value: 0 }\n"),
        "bad_batching.txt",
    ),
    Case(
        "serve-missing-base",
        lambda w: [
            "serve",
            str(w / "no_models"),
            "--rest-port",
            "0",
            "--grpc-port",
            "0",
        ],
        "no_models",
    ),
]


def _serve_batching(work, text):
    """``mtrec serve --enable_batching`` with a missing (None) or bad file."""
    (work / "models").mkdir()
    params = work / ("bad_batching.txt" if text else "no_batching.txt")
    if text:
        params.write_text(text)
    return [
        "serve",
        str(work / "models"),
        "--rest-port",
        "0",
        "--grpc-port",
        "0",
        "--enable_batching",
        "--batching_parameters_file",
        str(params),
    ]


def _text(path, text):
    path.write_text(text)
    return path


def _empty_features(work):
    (work / "features.yaml").write_text("")
    return str(work / "run.yaml")


def test_the_table_is_big_enough():
    assert len(CASES) >= 60
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_one_line_exit_2(case, click_log, tmp_path, monkeypatch, capsys):
    shutil.copy(click_log, tmp_path / "log.csv")
    monkeypatch.chdir(tmp_path)
    argv = case.argv(tmp_path)
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    errors = [line for line in lines if ": error: " in line]
    assert code == 2, (argv, captured.err[-2000:])
    assert "Traceback" not in captured.err
    assert len(errors) == 1, lines
    assert errors[0].startswith(f"mtrec {argv[0]}: error: "), errors[0]
    assert case.message in errors[0], errors[0]
    # One line: the error is the last thing printed, with no continuation.
    assert lines[-1] == errors[0], lines
    # Nothing half-made: no run directory was left behind.
    runs = tmp_path / "runs"
    leftovers = (
        [p.name for p in runs.iterdir() if not p.name.startswith(".")]
        if runs.is_dir()
        else []
    )
    assert leftovers in ([], ["done"]), leftovers
