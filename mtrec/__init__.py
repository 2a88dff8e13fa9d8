"""mtrec: multi-task recommendation ranking on TensorFlow Recommenders.

The public names load lazily (PEP 562): ``import mtrec`` routes ``tf.keras``
to Keras 2 but does not import TensorFlow, so the command line answers
``mtrec --help`` without it. The first public name used loads its module.
"""

import importlib

from mtrec._keras_switch import check_legacy_keras
from mtrec._keras_switch import use_legacy_keras

use_legacy_keras()

__version__ = "0.1.0"

# Public API: name -> the package that defines it.
_PUBLIC = {
    "CategoricalFeature": "mtrec.features",
    "DenseFeature": "mtrec.features",
    "FeatureEmbedding": "mtrec.features",
    "FeatureSet": "mtrec.features",
    "MultiValuedFeature": "mtrec.features",
    "CGC": "mtrec.layers",
    "MLP": "mtrec.layers",
    "PLE": "mtrec.layers",
    "Experts": "mtrec.layers",
    "Gate": "mtrec.layers",
    "MixtureOfExperts": "mtrec.layers",
    "MMoE": "mtrec.layers",
    "OMoE": "mtrec.layers",
    "SharedBottom": "mtrec.layers",
    "TargetAttention": "mtrec.layers",
    "Tower": "mtrec.layers",
    "ESMM": "mtrec.models",
    "MultiTaskRanker": "mtrec.models",
    "Task": "mtrec.models",
    "shipped_config": "mtrec.shipped",
    "precision_scope": "mtrec.precision",
}

__all__ = sorted([*_PUBLIC, "__version__"], key=str.upper)


# Subpackages reachable as attributes (``mtrec.training.train``) without an
# explicit ``import mtrec.training``, as when the public names loaded eagerly.
_SUBPACKAGES = frozenset(
    {"affinity", "data", "export", "features", "layers", "metrics", "models"}
    | {"plots", "serving", "training", "weighting"}
)


def __getattr__(name: str):
    if name in _SUBPACKAGES:
        check_legacy_keras()
        return importlib.import_module(f"mtrec.{name}")
    if name not in _PUBLIC:
        raise AttributeError(f"module 'mtrec' has no attribute {name!r}")
    check_legacy_keras()
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC, *_SUBPACKAGES})
