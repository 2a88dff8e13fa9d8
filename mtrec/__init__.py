"""mtrec: multi-task recommendation ranking on TensorFlow Recommenders."""

from mtrec._keras_switch import use_legacy_keras

use_legacy_keras()

# Public API; imported after the switch so every module sees Keras 2.
from mtrec.layers import MLP  # noqa: E402
from mtrec.layers import SharedBottom  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "MLP",
    "SharedBottom",
    "__version__",
]
