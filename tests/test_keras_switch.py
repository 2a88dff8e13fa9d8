"""import mtrec routes tf.keras to Keras 2, and refuses when Keras 3 already won."""

import os
import subprocess
import sys


def _run(code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_import_mtrec_selects_tf_keras():
    result = _run(
        "import mtrec, os, tensorflow as tf, tf_keras\n"
        "assert os.environ['TF_USE_LEGACY_KERAS'] == '1'\n"
        "assert tf.keras.layers.Layer is tf_keras.layers.Layer\n"
        "print(tf.keras.layers.Dense.__module__)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("tf_keras.")


def test_keras_3_already_resolved_raises_a_helpful_import_error():
    result = _run(
        "import tensorflow as tf\n"
        "tf.keras.layers.Dense  # resolves tf.keras to Keras 3\n"
        "try:\n"
        "    import mtrec\n"
        "except ImportError as err:\n"
        "    print('IMPORT-ERROR:', err)\n"
    )
    assert result.returncode == 0, result.stderr
    assert "IMPORT-ERROR:" in result.stdout
    assert "already resolved to Keras 3" in result.stdout
    assert "TF_USE_LEGACY_KERAS=1" in result.stdout
