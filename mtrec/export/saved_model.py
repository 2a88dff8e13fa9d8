"""SavedModel export into integer version folders, written atomically."""

import logging
import os
import pathlib
import shutil
import uuid

import tensorflow as tf

from mtrec.features.feature_set import FeatureSet

logger = logging.getLogger(__name__)


def next_version(export_base: str | os.PathLike) -> int:
    """One more than the largest integer version folder under the base (1 if none)."""
    base = pathlib.Path(export_base)
    versions = (
        [int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit()]
        if base.is_dir()
        else []
    )
    return max(versions, default=0) + 1


def serving_function(
    model: tf.keras.Model, feature_set: FeatureSet
) -> tf.types.experimental.GenericFunction:
    """``serving_default``: raw features by name -> ``{output: (batch,)}`` probabilities."""

    @tf.function(input_signature=[feature_set.input_signature()])
    def serve(features):
        outputs = model(features, training=False)
        return {
            name: tf.reshape(value, [-1], name=name) for name, value in outputs.items()
        }

    return serve


def export_saved_model(
    model: tf.keras.Model,
    feature_set: FeatureSet,
    export_base: str | os.PathLike,
    *,
    version: int | None = None,
    assets_extra: dict[str, str | os.PathLike] | None = None,
) -> pathlib.Path:
    """Exports ``model`` to ``<export_base>/<version>/``.

    The SavedModel is written to a hidden temporary folder beside the version
    folder and renamed into place, so a model server watching the base never
    sees a half-written version. No device placement is recorded, so the same
    export runs on CPU and GPU.

    Args:
      model: a trained model whose call returns ``{output: (batch, 1)}``.
      feature_set: its features; they name the signature inputs.
      export_base: the base directory (created if needed).
      version: integer version; default one more than the newest.
      assets_extra: ``{relative name: file}`` copied into ``assets.extra/``
        (e.g. the resolved training config).

    Returns:
      The version folder.
    """
    base = pathlib.Path(export_base)
    base.mkdir(parents=True, exist_ok=True)
    version = next_version(base) if version is None else int(version)
    if version < 0:
        raise ValueError(f"`version` must be >= 0. Received: `version={version}`")
    final = base / str(version)
    if final.exists():
        raise FileExistsError(f"export version already exists: {final}")
    tmp = base / f".tmp-{version}-{uuid.uuid4().hex[:8]}"
    serve = serving_function(model, feature_set)
    module = tf.Module()
    module.model = model
    module.serve = serve
    try:
        tf.saved_model.save(
            module,
            str(tmp),
            signatures={"serving_default": serve.get_concrete_function()},
            options=tf.saved_model.SaveOptions(experimental_custom_gradients=False),
        )
        for name, source in (assets_extra or {}).items():
            target = tmp / "assets.extra" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        os.rename(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info("exported SavedModel version %d to %s", version, final)
    return final
