"""SavedModel export: parity with the in-process model, names, versions, atomicity."""

import os

import numpy as np
import pytest
import tensorflow as tf

from mtrec.export import export_saved_model
from mtrec.export import next_version
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


def test_serving_default_equals_model_predict(trained, tmp_path):
    model, fs, data = trained
    path = export_saved_model(model, fs, tmp_path / "base")
    assert path == tmp_path / "base" / "1"
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    got = serve(**_features_only(data, fs))
    expected = model.predict(_features_only(data, fs), batch_size=64, verbose=0)
    assert set(got) == {"ctr", "cvr", "ctcvr"}
    for name in got:
        assert got[name].shape == (len(data["click"]),)
        np.testing.assert_allclose(got[name].numpy(), expected[name][:, 0], atol=1e-5)


def test_signature_inputs_are_the_feature_names_with_raw_dtypes(trained, tmp_path):
    model, fs, _ = trained
    serve = tf.saved_model.load(
        str(export_saved_model(model, fs, tmp_path))
    ).signatures["serving_default"]
    inputs = serve.structured_input_signature[1]
    assert sorted(inputs) == sorted(fs.names)
    assert {k: v.dtype for k, v in inputs.items()} == {
        "user_id": tf.int64,
        "city": tf.string,
        "recent": tf.string,
        "price": tf.float32,
    }


def test_vocabularies_travel_as_assets(trained, tmp_path):
    model, fs, data = trained
    path = export_saved_model(model, fs, tmp_path)
    assert sorted(os.listdir(path / "assets")) == [
        "city.txt",
        "recent.txt",
        "user_id.txt",
    ]


def test_versions_increase_and_existing_version_is_refused(trained, tmp_path):
    model, fs, _ = trained
    (tmp_path / "7").mkdir()
    (tmp_path / "notes").mkdir()
    assert next_version(tmp_path) == 8
    assert export_saved_model(model, fs, tmp_path).name == "8"
    with pytest.raises(FileExistsError, match="already exists"):
        export_saved_model(model, fs, tmp_path, version=8)
    # no temporary folder is left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["7", "8", "notes"]


def test_assets_extra_are_copied(trained, tmp_path):
    model, fs, _ = trained
    cfg = tmp_path / "config.yaml"
    cfg.write_text("name: x\n")
    path = export_saved_model(
        model, fs, tmp_path / "b", assets_extra={"mtrec/config.yaml": cfg}
    )
    assert (path / "assets.extra" / "mtrec" / "config.yaml").read_text() == "name: x\n"
