"""Routes ``tf.keras`` to Keras 2 (tf-keras) before TensorFlow resolves it."""

import os
import sys

_ADVICE = (
    "mtrec needs the Keras 2 API (tf-keras), but `tf.keras` already resolved to "
    "Keras 3 in this process. Import mtrec before anything touches `tf.keras`, or "
    "set the environment variable TF_USE_LEGACY_KERAS=1 before starting Python "
    "(and `pip install tf-keras~=2.21`)."
)


def use_legacy_keras() -> None:
    """Sets ``TF_USE_LEGACY_KERAS=1`` and checks that ``tf.keras`` is tf-keras.

    Raises:
      ImportError: if ``tf.keras`` was already resolved to Keras 3, or tf-keras
        is not installed.
    """
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    tf_already_imported = "tensorflow" in sys.modules
    try:
        import tf_keras
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError(
            "mtrec needs tf-keras (the Keras 2 API): pip install 'tf-keras~=2.21'"
        ) from err
    import tensorflow as tf

    if tf.keras.layers.Layer is not tf_keras.layers.Layer:
        hint = " TensorFlow was imported first." if tf_already_imported else ""
        raise ImportError(_ADVICE + hint)
