"""SavedModel export: parity, names, versions, atomicity, TF Serving conventions."""

import importlib.util
import json
import os
import pathlib
import re
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
import yaml
from feature_helpers import branching_bottom_class
from feature_helpers import click_buy_ranker
from feature_helpers import click_buy_rows
from tensorflow.core.protobuf import saved_model_pb2

from mtrec.export import CONFIG_ASSET
from mtrec.export import WARMUP_FILE
from mtrec.export import examples_function
from mtrec.export import export_saved_model
from mtrec.export import next_version
from mtrec.export import read_warmup_file
from mtrec.export import remove_stale_partial_exports
from mtrec.export import serving_function
from mtrec.export import to_examples
from mtrec.features import FeatureEmbedding
from mtrec.features import FeatureSet
from mtrec.layers import SharedBottom
from mtrec.models import ESMM
from mtrec.models import Task

FEATURES = [
    {"name": "user_id", "kind": "categorical", "dtype": "int64", "embedding_dim": 4},
    {"name": "city", "kind": "categorical", "embedding_dim": 3},
    {"name": "recent", "kind": "multi_valued", "embedding_dim": 3, "pooling": "mean"},
    {"name": "price", "kind": "dense", "log1p": True},
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vocab")
    files = {}
    for table, tokens in {
        "user_id": ["10", "11", "12"],
        "city": ["a", "b"],
        "recent": ["x", "y", "z"],
    }.items():
        files[table] = str(tmp / f"{table}.txt")
        with open(files[table], "w") as f:
            f.write("\n".join(tokens) + "\n")
    fs = FeatureSet.from_dicts(FEATURES)
    layer = FeatureEmbedding(
        fs.to_dicts(), files, {"price": {"mean": 1.0, "std": 0.5, "boundaries": None}}
    )
    model = ESMM(
        layer,
        SharedBottom(["ctr", "cvr"], units=[8]),
        Task("ctr", "click"),
        Task("cvr", "conversion", condition="click"),
        tower_units=[4],
    )
    rng = np.random.default_rng(0)
    n = 256
    data = {
        "user_id": rng.integers(9, 14, n),
        "city": rng.choice(["a", "b", "c", ""], n),
        "recent": rng.choice(["x|y", "z", "", "q|x|x"], n),
        "price": rng.lognormal(size=n).astype(np.float32),
        "click": (rng.random(n) < 0.3).astype(np.float32),
    }
    data["conversion"] = data["click"] * (rng.random(n) < 0.5)
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01))
    model.fit(tf.data.Dataset.from_tensor_slices(data).batch(32), epochs=1, verbose=0)
    return model, fs, data


def _features_only(data, fs):
    return {k: tf.constant(data[k], dtype=fs.input_dtype(k)) for k in fs.names}


def test_serving_default_equals_model_predict(exported, trained):
    model, fs, data = trained
    path, _ = exported
    assert path.name == "1" and path.parent.name == "base"
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    got = serve(**_features_only(data, fs))
    expected = model.predict(_features_only(data, fs), batch_size=64, verbose=0)
    assert set(got) == {"ctr", "cvr", "ctcvr"}
    for name in got:
        assert got[name].shape == (len(data["click"]),)
        np.testing.assert_allclose(got[name].numpy(), expected[name][:, 0], atol=1e-5)


def test_signature_inputs_are_the_feature_names_with_raw_dtypes(exported, trained):
    _, fs, _ = trained
    serve = tf.saved_model.load(str(exported[0])).signatures["serving_default"]
    inputs = serve.structured_input_signature[1]
    assert sorted(inputs) == sorted(fs.names)
    assert {k: v.dtype for k, v in inputs.items()} == {
        "user_id": tf.int64,
        "city": tf.string,
        "recent": tf.string,
        "price": tf.float32,
    }


def test_versions_increase_and_existing_version_is_refused(
    trained, tmp_path, monkeypatch
):
    model, fs, _ = trained
    (tmp_path / "7").mkdir()
    (tmp_path / "notes").mkdir()
    assert next_version(tmp_path) == 8
    renames = []
    real_rename = os.rename

    def recording_rename(src, dst):
        source = pathlib.Path(src)
        renames.append((source.name, pathlib.Path(dst).name))
        # the version appears complete, by one rename of a hidden folder
        assert (source / "saved_model.pb").is_file()
        assert (source / "variables" / "variables.index").is_file()
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", recording_rename)
    path = export_saved_model(model, fs, tmp_path)
    assert path.name == "8"
    ((source, target),) = renames
    assert source.startswith(".tmp-8-") and target == "8"
    with pytest.raises(FileExistsError, match="already exists"):
        export_saved_model(model, fs, tmp_path, version=8)
    # no temporary folder is left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["7", "8", "notes"]
    # without a config or rows: vocabularies only, no warmup requests
    assert sorted(os.listdir(path / "assets")) == [
        "city.txt",
        "recent.txt",
        "user_id.txt",
    ]
    assert not (path / "assets.extra").exists()


def test_assets_extra_are_copied_and_only_config_path_is_the_config_asset(
    trained, tmp_path
):
    model, fs, _ = trained
    cfg = tmp_path / "config.yaml"
    cfg.write_text("name: x\n")
    path = export_saved_model(
        model, fs, tmp_path / "b", assets_extra={"mtrec/config.yaml": cfg}
    )
    assert (path / "assets.extra" / "mtrec" / "config.yaml").read_text() == "name: x\n"
    # No key of assets_extra means anything to the export.
    assert not (path / "assets" / CONFIG_ASSET).exists()
    path = export_saved_model(model, fs, tmp_path / "b", config_path=cfg)
    assert (path / "assets" / CONFIG_ASSET).read_text() == "name: x\n"


# --------------------------------------------------------------------------- #
# TF Serving conventions: signatures, assets, warmup, devices, atomicity
# --------------------------------------------------------------------------- #

HAS_SERVING_API = importlib.util.find_spec("tensorflow_serving") is not None
requires_serving_api = pytest.mark.skipif(
    not HAS_SERVING_API, reason="needs tensorflow-serving-api (the serving extra)"
)
SAVED_MODEL_CLI = pathlib.Path(sys.executable).parent / "saved_model_cli"


def _rows(data, n=12):
    return {
        "user_id": data["user_id"][:n],
        "city": data["city"][:n],
        "recent": data["recent"][:n],
        "price": data["price"][:n],
    }


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    """One export with a config and warmup rows, shared by the read-only tests."""
    model, fs, data = trained
    tmp = tmp_path_factory.mktemp("exported")
    config = tmp / "config.yaml"
    config.write_text("name: tiny\n")
    path = export_saved_model(
        model,
        fs,
        tmp / "base",
        config_path=config,
        warmup_rows=_rows(data) if HAS_SERVING_API else None,
    )
    return path, config


def _meta_graph(path):
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((path / "saved_model.pb").read_bytes())
    (meta_graph,) = proto.meta_graphs
    return meta_graph


def test_both_signatures_use_the_predict_method(exported, trained):
    path, _ = exported
    _, fs, _ = trained
    meta_graph = _meta_graph(path)
    assert list(meta_graph.meta_info_def.tags) == ["serve"]
    signatures = meta_graph.signature_def
    assert {"serving_default", "predict_examples"} <= set(signatures)
    for key in ("serving_default", "predict_examples"):
        assert signatures[key].method_name == "tensorflow/serving/predict"
        assert sorted(signatures[key].outputs) == ["ctcvr", "ctr", "cvr"]
    assert sorted(signatures["serving_default"].inputs) == sorted(fs.names)
    assert list(signatures["predict_examples"].inputs) == ["examples"]


def test_predict_examples_equals_serving_default(exported, trained):
    path, _ = exported
    _, fs, data = trained
    loaded = tf.saved_model.load(str(path))
    rows = {k: data[k] for k in fs.names}
    by_features = loaded.signatures["serving_default"](**_features_only(data, fs))
    by_examples = loaded.signatures["predict_examples"](
        examples=tf.constant(to_examples(rows, fs))
    )
    for name in ("ctr", "cvr", "ctcvr"):
        np.testing.assert_allclose(
            by_examples[name].numpy(), by_features[name].numpy(), atol=1e-6
        )


def test_missing_example_features_take_the_readers_defaults(exported, trained):
    path, _ = exported
    _, fs, data = trained
    serve = tf.saved_model.load(str(path)).signatures
    rows = {k: data[k][:4] for k in fs.names}
    without_city = [_drop_feature(example, "city") for example in to_examples(rows, fs)]
    got = serve["predict_examples"](examples=tf.constant(without_city))
    want = serve["serving_default"](
        **_features_only({**rows, "city": np.array([""] * 4)}, fs)
    )
    np.testing.assert_allclose(got["ctr"].numpy(), want["ctr"].numpy(), atol=1e-6)
    without_id = [_drop_feature(e, "user_id") for e in to_examples(rows, fs)]
    with pytest.raises(tf.errors.InvalidArgumentError, match="user_id"):
        serve["predict_examples"](examples=tf.constant(without_id))


def _drop_feature(serialized, name):
    example = tf.train.Example.FromString(serialized)
    del example.features.feature[name]
    return example.SerializeToString()


def test_config_and_vocabularies_travel_as_assets(exported):
    path, config = exported
    assert sorted(os.listdir(path / "assets")) == sorted(
        [CONFIG_ASSET, "city.txt", "recent.txt", "user_id.txt"]
    )
    assert (path / "assets" / CONFIG_ASSET).read_text() == config.read_text()


@requires_serving_api
def test_warmup_file_holds_prediction_logs_of_the_given_rows(exported, trained):
    path, _ = exported
    _, fs, data = trained
    logs = read_warmup_file(path / "assets.extra" / WARMUP_FILE)
    requests = [log.predict_log.request for log in logs]
    assert [(r.model_spec.signature_name, _batch(r)) for r in requests] == [
        ("serving_default", 1),
        ("serving_default", 12),
        ("predict_examples", 1),
        ("predict_examples", 12),
    ]
    full = requests[1]
    assert sorted(full.inputs) == sorted(fs.names)
    np.testing.assert_array_equal(
        tf.make_ndarray(full.inputs["user_id"]), data["user_id"][:12]
    )
    assert tf.make_ndarray(full.inputs["city"]).tolist() == [
        c.encode() for c in data["city"][:12]
    ]


def _batch(request):
    return next(iter(request.inputs.values())).tensor_shape.dim[0].size


@requires_serving_api
def test_warmup_requests_replay_on_the_saved_model(exported):
    pytest.importorskip("grpc", reason="needs the serving extra")
    from mtrec.serving import Servable

    path, _ = exported
    assert Servable("tiny", 1, path).warmup() == 4


def test_without_warmup_rows_the_export_reads_no_data_and_has_no_warmup(
    trained, tmp_path
):
    model, fs, _ = trained
    config = tmp_path / "config.yaml"
    # A config naming data that does not exist: the export never reads it.
    config.write_text(yaml.safe_dump({"data": {"train": str(tmp_path / "no.csv")}}))
    path = export_saved_model(model, fs, tmp_path / "b", config_path=config)
    assert not (path / "assets.extra" / WARMUP_FILE).exists()
    assert (path / "assets" / CONFIG_ASSET).is_file()


@requires_serving_api
def test_warmup_requests_carry_the_given_rows(trained, tmp_path):
    model, fs, data = trained
    rows = _rows(data, n=7)
    path = export_saved_model(model, fs, tmp_path / "b", warmup_rows=rows)
    logs = read_warmup_file(path / "assets.extra" / WARMUP_FILE)
    np.testing.assert_array_equal(
        tf.make_ndarray(logs[1].predict_log.request.inputs["user_id"]),
        rows["user_id"],
    )


def test_without_the_serving_api_the_export_has_no_warmup(
    trained, tmp_path, monkeypatch, caplog
):
    model, fs, data = trained
    monkeypatch.setitem(sys.modules, "tensorflow_serving.apis", None)
    path = export_saved_model(model, fs, tmp_path, warmup_rows=_rows(data))
    assert not (path / "assets.extra" / WARMUP_FILE).exists()
    assert "tensorflow-serving-api is not installed" in caplog.text


def test_no_device_is_pinned_in_the_serving_graph(exported):
    """Only TensorFlow's own checkpoint save/restore functions (and the saver's
    file name constant) sit on the host CPU, as in every SavedModel; nothing
    names a GPU, and nothing the signatures run is placed."""
    path, _ = exported
    graph = _meta_graph(path).graph_def
    placed = {(node.op, node.device) for node in graph.node if node.device}
    assert placed <= {("Const", "/device:CPU:0")}  # the checkpoint file name
    serving_nodes = 0
    for function in graph.library.function:
        devices = {node.device for node in function.node_def}
        assert not any("GPU" in device for device in devices)
        name = function.signature.name
        if "_traced_save" in name or "_traced_restore" in name:
            assert devices <= {"", "/device:CPU:0", "/device:CPU:*"}
        else:
            serving_nodes += len(function.node_def)
            assert devices == {""}, name
    assert serving_nodes > 100


def test_a_failed_export_leaves_no_version_and_no_temporary_folder(
    trained, tmp_path, monkeypatch
):
    model, fs, _ = trained

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        export_saved_model(model, fs, tmp_path)
    assert list(tmp_path.iterdir()) == []


def _saved_model_cli(*args):
    result = subprocess.run(
        [str(SAVED_MODEL_CLI), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.slow
@pytest.mark.skipif(not SAVED_MODEL_CLI.is_file(), reason="saved_model_cli not found")
def test_saved_model_cli_shows_and_runs_both_signatures(exported, trained):
    path, _ = exported
    model, fs, data = trained
    shown = _saved_model_cli("show", "--dir", str(path), "--all")
    assert "signature_def['serving_default']" in shown
    assert "signature_def['predict_examples']" in shown
    assert shown.count("Method name is: tensorflow/serving/predict") == 2
    assert "inputs['user_id'] tensor_info:\n        dtype: DT_INT64" in shown

    expected = model.predict(_features_only(data, fs), verbose=0)
    exprs = ";".join(
        f"{name}={json.dumps(_plain(data[name][:2]))}" for name in fs.names
    )
    ran = _saved_model_cli(
        "run", "--dir", str(path), "--tag_set", "serve",
        "--signature_def", "serving_default", "--input_exprs", exprs,
    )  # fmt: skip
    _check_cli_outputs(ran, expected, rows=2)

    example = json.dumps([{name: [_plain(data[name][:1])[0]] for name in fs.names}])
    ran = _saved_model_cli(
        "run", "--dir", str(path), "--tag_set", "serve",
        "--signature_def", "predict_examples",
        "--input_examples", f"examples={example}",
    )  # fmt: skip
    _check_cli_outputs(ran, expected, rows=1)


def _plain(values):
    return [v.item() if hasattr(v, "item") else str(v) for v in values]


def _check_cli_outputs(stdout, expected, rows):
    for name in ("ctr", "cvr", "ctcvr"):
        match = re.search(
            rf"Result for output key {name}:\s*\[([^\]]*)\]", stdout, re.MULTILINE
        )
        assert match, stdout
        got = np.array(match.group(1).split(), dtype=np.float32)
        np.testing.assert_allclose(got, expected[name][:rows, 0], atol=1e-5)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("signature", ["serving_default", "predict_examples"])
def test_a_non_finite_dense_value_is_refused_naming_the_input_and_row(
    exported, trained, signature, value
):
    path, _ = exported
    _, fs, data = trained
    rows = {k: np.array(data[k][:5]) for k in fs.names}
    rows["price"][3] = value
    serve = tf.saved_model.load(str(path)).signatures[signature]
    if signature == "serving_default":
        call = lambda: serve(**_features_only(rows, fs))  # noqa: E731
    else:
        call = lambda: serve(examples=tf.constant(to_examples(rows, fs)))  # noqa: E731
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"Input `price` is NaN or infinite at row 3 of the batch \(value",
    ):
        call()


def test_a_killed_exports_leftover_is_removed_by_the_next_export(tmp_path, trained):
    model, fs, _ = trained
    base = tmp_path / "base"
    stale, fresh = base / ".tmp-1-deadbeef", base / ".tmp-2-0badf00d"
    for path in (stale, fresh):
        (path / "variables").mkdir(parents=True)
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    path = export_saved_model(model, fs, base)
    assert path == base / "1"
    assert not stale.exists()  # older than an hour: a killed export's
    assert fresh.exists()  # recent: maybe an export in progress
    assert remove_stale_partial_exports(base, older_than=0) == [fresh]


def test_signatures_are_traced_as_plain_python_unless_the_model_needs_autograph(
    caplog,
):
    rows = click_buy_rows(6)
    features = {"city": tf.constant(rows["city"]), "price": tf.constant(rows["price"])}
    plain, branching = click_buy_ranker(), click_buy_ranker(branching_bottom_class())
    for model in (plain, branching):
        model(features)
    branching.set_weights(plain.get_weights())
    examples = tf.constant(
        to_examples(rows, plain.feature_layer.feature_set), tf.string
    )
    expected = {k: v.numpy()[:, 0] for k, v in plain(features).items()}
    for model in (plain, branching):
        caplog.clear()
        with caplog.at_level("INFO", logger="mtrec.models.plain_trace"):
            serve = serving_function(model, model.feature_layer.feature_set)
            parse = examples_function(model, model.feature_layer.feature_set)
        needed = [r.getMessage().split(" (")[0] for r in caplog.records]
        if model is plain:
            assert needed == []
        else:
            assert needed == [
                "The serving function needs AutoGraph",
                "The predict_examples function needs AutoGraph",
            ]
        assert serve.experimental_get_tracing_count() == 1  # traced when made
        for outputs in (serve(features), parse(examples)):
            assert outputs.keys() == expected.keys()
            for name, values in expected.items():
                np.testing.assert_allclose(outputs[name].numpy(), values, rtol=1e-6)
