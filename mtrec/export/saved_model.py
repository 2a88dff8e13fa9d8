"""SavedModel export into integer version folders, written atomically."""

import logging
import os
import pathlib
import shutil
import tempfile
import time
import uuid
from collections.abc import Mapping
from collections.abc import Sequence

import tensorflow as tf

from mtrec.export.signatures import PREDICT_EXAMPLES
from mtrec.export.signatures import SERVING_DEFAULT
from mtrec.export.signatures import examples_function
from mtrec.export.signatures import serving_function
from mtrec.export.warmup import WARMUP_FILE
from mtrec.export.warmup import warmup_requests
from mtrec.export.warmup import write_warmup_file
from mtrec.features.feature_set import FeatureSet

logger = logging.getLogger(__name__)

#: Name of the resolved training config inside ``assets/``.
CONFIG_ASSET = "mtrec_config.yaml"


def next_version(export_base: str | os.PathLike) -> int:
    """One more than the largest integer version folder under the base (1 if none)."""
    base = pathlib.Path(export_base)
    versions = (
        [int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit()]
        if base.is_dir()
        else []
    )
    return max(versions, default=0) + 1


#: A hidden ``.tmp-*`` folder older than this is a killed export's leftover.
STALE_PARTIAL_EXPORT_SECONDS = 3600


def remove_stale_partial_exports(
    export_base: str | os.PathLike, older_than: float = STALE_PARTIAL_EXPORT_SECONDS
) -> list[pathlib.Path]:
    """Deletes the ``.tmp-*`` folders of exports killed mid-write.

    An export writes into a hidden ``.tmp-<version>-<id>`` folder and renames
    it into place; a process killed in between leaves the folder behind. Those
    not modified for ``older_than`` seconds (an export in progress is newer)
    are removed, logged, and returned. ``export_saved_model`` and
    ``mtrec serve`` call this.
    """
    base = pathlib.Path(export_base)
    removed = []
    if not base.is_dir():
        return removed
    now = time.time()
    for path in base.glob(".tmp-*"):
        try:
            age = now - path.stat().st_mtime
        except FileNotFoundError:  # renamed or removed meanwhile
            continue
        if path.is_dir() and age > older_than:
            shutil.rmtree(path, ignore_errors=True)
            logger.warning("removed %s, left by an export killed mid-write", path)
            removed.append(path)
    return removed


def export_saved_model(
    model: tf.keras.Model,
    feature_set: FeatureSet,
    export_base: str | os.PathLike,
    *,
    version: int | None = None,
    assets_extra: dict[str, str | os.PathLike] | None = None,
    config_path: str | os.PathLike | None = None,
    warmup_rows: Mapping[str, Sequence] | None = None,
) -> pathlib.Path:
    """Exports ``model`` to ``<export_base>/<version>/`` for TF Serving.

    The SavedModel (tag ``serve``) has two signatures, both with the method name
    ``tensorflow/serving/predict``:

    - ``serving_default``: one ``(batch,)`` tensor per feature, named and typed
      as the feature (string, int64 or float32) -> ``{output: (batch,)}``
      probabilities (``ctr``, ``cvr``, ``ctcvr`` or the configured task names);
    - ``predict_examples``: ``examples``, ``(batch,)`` serialized ``tf.Example``
      protos -> the same outputs.

    ``assets/`` holds the vocabulary files and, given ``config_path``, the
    resolved training config as ``mtrec_config.yaml``.
    ``assets.extra/tf_serving_warmup_requests`` holds TF Serving warmup requests
    built from ``warmup_rows`` (needs ``tensorflow-serving-api``); the export
    reads no data itself (``mtrec.training`` passes the first rows of the
    run's eval split).

    The SavedModel is written to a hidden temporary folder beside the version
    folder and renamed into place, so a model server watching the base never
    sees a half-written version. No device placement is recorded, so the same
    export runs on CPU and GPU.

    Args:
      model: a trained model whose call returns ``{output: (batch, 1)}``.
      feature_set: its features; they name the signature inputs.
      export_base: the base directory (created if needed).
      version: integer version; default one more than the newest.
      assets_extra: ``{relative name: file}`` copied into ``assets.extra/``.
      config_path: the resolved run config (``<run_dir>/config.yaml``), copied
        into ``assets/`` as it is.
      warmup_rows: raw feature columns for the warmup requests; ``None``: no
        warmup file.

    Returns:
      The version folder.
    """
    base = pathlib.Path(export_base)
    base.mkdir(parents=True, exist_ok=True)
    remove_stale_partial_exports(base)
    version, final = _version_folder(base, version)
    warmup_logs = _warmup_logs(feature_set, warmup_rows)

    tmp = base / f".tmp-{version}-{uuid.uuid4().hex[:8]}"
    module, signatures = _serving_module(model, feature_set)
    try:
        _save_module(module, signatures, tmp, config_path)
        _write_assets_extra(tmp, assets_extra, warmup_logs)
        os.rename(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info(
        "exported SavedModel version %d to %s (%d warmup requests)",
        version,
        final,
        len(warmup_logs),
    )
    return final


def _version_folder(
    base: pathlib.Path, version: int | None
) -> tuple[int, pathlib.Path]:
    """The version to export (default one more than the newest) and its folder,
    which must not exist yet."""
    version = next_version(base) if version is None else int(version)
    if version < 0:
        raise ValueError(f"`version` must be >= 0. Received: `version={version}`")
    final = base / str(version)
    if final.exists():
        raise FileExistsError(f"export version already exists: {final}")
    return version, final


def _serving_module(
    model: tf.keras.Model, feature_set: FeatureSet
) -> tuple[tf.Module, dict]:
    """The module to save (the model's layers and both serving functions) and
    its signatures by key."""
    module = tf.Module()
    # The model's layers (their variables, lookup tables and vocabulary
    # assets), not the model: the model also tracks its optimizer, whose
    # slots serving never reads (they were 2.7x the variables of a re-export).
    module.layers = list(model.layers)
    module.serve = serving_function(model, feature_set)
    module.serve_examples = examples_function(model, feature_set)
    signatures = {
        SERVING_DEFAULT: module.serve.get_concrete_function(),
        PREDICT_EXAMPLES: module.serve_examples.get_concrete_function(),
    }
    return module, signatures


def _save_module(
    module: tf.Module,
    signatures: dict,
    path: pathlib.Path,
    config_path: str | os.PathLike | None,
) -> None:
    """Saves the SavedModel to ``path``, with the run config (if any) as the
    ``assets/mtrec_config.yaml`` asset."""
    with tempfile.TemporaryDirectory(prefix="mtrec-export-") as staging:
        if config_path is not None:
            staged = pathlib.Path(staging) / CONFIG_ASSET
            shutil.copyfile(config_path, staged)
            module.config = tf.saved_model.Asset(str(staged))
        tf.saved_model.save(
            module,
            str(path),
            signatures=signatures,
            options=tf.saved_model.SaveOptions(experimental_custom_gradients=False),
        )


def _write_assets_extra(
    path: pathlib.Path,
    assets_extra: dict[str, str | os.PathLike] | None,
    warmup_logs: list,
) -> None:
    """Copies the extra assets into ``<path>/assets.extra/`` and writes the
    warmup requests there (none: no warmup file)."""
    for name, source in (assets_extra or {}).items():
        target = path / "assets.extra" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    if warmup_logs:
        write_warmup_file(path / "assets.extra" / WARMUP_FILE, warmup_logs)


def _warmup_logs(feature_set: FeatureSet, rows: Mapping[str, Sequence] | None) -> list:
    if rows is None:
        logger.info("no warmup rows: the export has no TF Serving warmup requests")
        return []
    try:
        return warmup_requests(rows, feature_set)
    except ImportError as err:
        logger.warning(
            "tensorflow-serving-api is not installed (%s); the export has no "
            "TF Serving warmup requests",
            err,
        )
        return []
