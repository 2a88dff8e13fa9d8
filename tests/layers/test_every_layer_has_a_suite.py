"""Every public layer of ``mtrec.layers`` runs the whole layer suite, no skips."""

# Keras 2 switch: mtrec must be imported before TensorFlow.
import mtrec.layers  # isort: split

import importlib
import inspect
import pathlib

import pytest
import tensorflow as tf
from layer_suite import GatedLayerSuite
from layer_suite import LayerSuite

# Base classes: exported for subclassing, tested through their subclasses.
BASE_CLASSES = {mtrec.layers.MixtureOfExperts}


def _public_layers() -> set[type]:
    return {
        obj
        for name in mtrec.layers.__all__
        if inspect.isclass(obj := getattr(mtrec.layers, name))
        and issubclass(obj, tf.keras.layers.Layer)
    }


def _suites() -> list[type]:
    folder = pathlib.Path(__file__).parent
    suites = []
    for path in sorted(folder.glob("test_*.py")):
        module = importlib.import_module(path.stem)
        suites += [
            obj
            for obj in vars(module).values()
            if inspect.isclass(obj)
            and issubclass(obj, LayerSuite)
            and obj not in (LayerSuite, GatedLayerSuite)
        ]
    return suites


def test_every_public_layer_has_a_suite():
    tested = {suite.layer_class for suite in _suites()}
    missing = _public_layers() - BASE_CLASSES - tested
    assert not missing, sorted(cls.__name__ for cls in missing)


@pytest.mark.parametrize("suite", _suites(), ids=lambda suite: suite.__name__)
def test_no_suite_check_is_skipped_or_replaced(suite):
    # Every check of the suite runs as the suite defines it: none overridden
    # (a `pytest.mark.skip` override or an empty body), none marked skip.
    base = GatedLayerSuite if issubclass(suite, GatedLayerSuite) else LayerSuite
    checks = [name for name in dir(base) if name.startswith("test_")]
    replaced = [
        name for name in checks if getattr(suite, name) is not getattr(base, name)
    ]
    assert not replaced, replaced
    marks = [m.name for m in getattr(suite, "pytestmark", [])]
    assert "skip" not in marks and "skipif" not in marks, marks


def test_the_base_class_is_abstract():
    layer = mtrec.layers.MixtureOfExperts(["ctr"])
    with pytest.raises(NotImplementedError, match="sublayer_input_shapes"):
        layer.build((None, 3))
