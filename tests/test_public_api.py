"""Every registered mtrec layer and every backbone is exported from mtrec."""

import tensorflow as tf

import mtrec
from mtrec.training.builders import BACKBONES


def test_every_registered_mtrec_class_is_exported_from_mtrec():
    registered = {
        key.split(">", 1)[1]
        for key in tf.keras.utils.get_custom_objects()
        if key.startswith("mtrec>")
    }
    weighting = {cls.__name__ for cls in mtrec.weighting.WEIGHTINGS.values()}
    layers = registered - weighting
    assert {"MMoE", "OMoE", "CGC", "PLE", "SharedBottom", "FeatureEmbedding"} <= layers
    missing = sorted(name for name in layers if not hasattr(mtrec, name))
    assert not missing, f"registered but not exported from mtrec: {missing}"


def test_every_backbone_is_exported_and_registered():
    for name, cls in BACKBONES.items():
        assert getattr(mtrec, cls.__name__) is cls, name
        assert tf.keras.utils.get_registered_name(cls) == f"mtrec>{cls.__name__}"
