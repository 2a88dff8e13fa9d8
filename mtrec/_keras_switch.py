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
    """Sets ``TF_USE_LEGACY_KERAS=1``; checks ``tf.keras`` if TF is loaded.

    When TensorFlow is not imported yet, setting the variable is all it takes
    and TensorFlow stays unloaded (``mtrec --help`` does not pay for it); the
    check then runs on first use of the public API (:func:`check_legacy_keras`).

    Raises:
      ImportError: if TensorFlow was imported first and ``tf.keras`` already
        resolved to Keras 3.
    """
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    if "tensorflow" in sys.modules:
        check_legacy_keras()


def check_legacy_keras() -> None:
    """Checks that ``tf.keras`` is tf-keras (importing TensorFlow).

    Raises:
      ImportError: if ``tf.keras`` was already resolved to Keras 3, or tf-keras
        is not installed.
    """
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
