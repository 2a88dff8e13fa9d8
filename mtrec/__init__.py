"""mtrec: multi-task recommendation ranking on TensorFlow Recommenders."""

from mtrec._keras_switch import use_legacy_keras

use_legacy_keras()

# Public API; imported after the switch so every module sees Keras 2.
from mtrec.features import CategoricalFeature  # noqa: E402
from mtrec.features import DenseFeature  # noqa: E402
from mtrec.features import FeatureEmbedding  # noqa: E402
from mtrec.features import FeatureSet  # noqa: E402
from mtrec.features import MultiValuedFeature  # noqa: E402
from mtrec.layers import CGC  # noqa: E402
from mtrec.layers import MLP  # noqa: E402
from mtrec.layers import PLE  # noqa: E402
from mtrec.layers import Experts  # noqa: E402
from mtrec.layers import Gate  # noqa: E402
from mtrec.layers import MixtureOfExperts  # noqa: E402
from mtrec.layers import MMoE  # noqa: E402
from mtrec.layers import OMoE  # noqa: E402
from mtrec.layers import SharedBottom  # noqa: E402
from mtrec.layers import TargetAttention  # noqa: E402
from mtrec.layers import Tower  # noqa: E402
from mtrec.models import ESMM  # noqa: E402
from mtrec.models import MultiTaskRanker  # noqa: E402
from mtrec.models import Task  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "CGC",
    "ESMM",
    "PLE",
    "CategoricalFeature",
    "DenseFeature",
    "Experts",
    "FeatureEmbedding",
    "FeatureSet",
    "Gate",
    "MLP",
    "MixtureOfExperts",
    "MMoE",
    "MultiTaskRanker",
    "MultiValuedFeature",
    "OMoE",
    "SharedBottom",
    "TargetAttention",
    "Task",
    "Tower",
    "__version__",
]
