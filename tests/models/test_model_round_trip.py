"""Every architecture over every backbone: config round trip and SavedModel parity."""

import numpy as np
import pytest
import tensorflow as tf

from mtrec.export import export_saved_model
from mtrec.features import FeatureSet
from mtrec.training import load_config
from mtrec.training.builders import ARCHITECTURES
from mtrec.training.builders import BACKBONES
from mtrec.training.builders import build_model
from mtrec.training.builders import build_tasks

FEATURES = [
    {"name": "city", "kind": "categorical", "embedding_dim": 3, "table": "place"},
    {
        "name": "visited",
        "kind": "multi_valued",
        "embedding_dim": 3,
        "table": "place",
        "pooling": "attention",
        "query": "city",
        "query_match": True,
    },
    {"name": "price", "kind": "dense", "log1p": True},
]
VOCABULARIES = {"place": ["a", "b", "c"]}
DENSE = {"price": {"mean": 1.0, "std": 0.5, "boundaries": None}}
SMALL_ARGS = {
    "shared_bottom": {"units": [4]},
    "omoe": {"num_experts": 2, "expert_units": [4]},
    "mmoe": {"num_experts": 2, "expert_units": [4]},
    "cgc": {"num_shared_experts": 1, "num_task_experts": 1, "expert_units": [4]},
    "ple": {
        "num_levels": 2,
        "num_shared_experts": 1,
        "num_task_experts": 1,
        "expert_units": [4],
    },
}


def test_every_backbone_has_small_arguments_here():
    assert set(SMALL_ARGS) == set(BACKBONES)


def _model(architecture: str, backbone: str, tmp_path):
    config = load_config(
        {
            "name": "round_trip",
            "features": FEATURES,
            "tasks": [
                {"name": "ctr", "label": "click"},
                {"name": "cvr", "label": "conversion", "condition": "click"},
            ],
            "data": {"train": str(tmp_path / "unused.csv")},
            "model": {
                "architecture": architecture,
                "backbone": backbone,
                "backbone_args": SMALL_ARGS[backbone],
                "tower_units": [2],
                "cross_layers": 1,
            },
        }
    )
    feature_set = FeatureSet.from_dicts(FEATURES)
    model = build_model(config, feature_set, build_tasks(config), VOCABULARIES, DENSE)
    return model, feature_set


def _inputs():
    return {
        "city": tf.constant(["a", "c", "zz", ""]),
        "visited": tf.constant(["a|b", "", "c|c|zz", "b"]),
        "price": tf.constant([1.0, 3.5, 0.0, 120.0]),
    }


def _expected(model, architecture):
    expected = {k: v.numpy() for k, v in model(_inputs()).items()}
    names = ["ctr", "cvr", "ctcvr"] if architecture == "esmm" else ["ctr", "cvr"]
    assert sorted(expected) == sorted(names)
    return expected


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_get_config_round_trip(architecture, backbone, tmp_path):
    model, _ = _model(architecture, backbone, tmp_path)
    expected = _expected(model, architecture)
    clone = type(model).from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    clone(_inputs())
    clone.set_weights(model.get_weights())
    for key, value in clone(_inputs()).items():
        np.testing.assert_array_equal(value.numpy(), expected[key])


@pytest.mark.slow
@pytest.mark.parametrize("backbone", sorted(BACKBONES))
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_saved_model_round_trip(architecture, backbone, tmp_path):
    model, feature_set = _model(architecture, backbone, tmp_path)
    expected = _expected(model, architecture)
    inputs = _inputs()
    rows = {k: v.numpy().tolist() for k, v in inputs.items()}
    path = export_saved_model(
        model, feature_set, tmp_path / "exports", warmup_rows=rows
    )
    serving = tf.saved_model.load(str(path)).signatures["serving_default"]
    served = serving(**inputs)
    assert sorted(served) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(served[key].numpy(), value[:, 0], atol=1e-5)
