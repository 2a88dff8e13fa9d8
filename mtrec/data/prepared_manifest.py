"""The prepared-data manifest's constants and the prepare pass's cache key.

A prepared directory holds ``manifest.json`` (format version, schema, layout,
split, parts and shards) beside its TFRecord shards; the cache entry's name is
:func:`cache_key`, the SHA-256 over the input files' contents and every
setting that changes what is written.
"""

import dataclasses
import hashlib
import json
from pathlib import Path

import tensorflow as tf

from mtrec.data.files import _FileInfo
from mtrec.data.schema import ColumnSchema
from mtrec.data.schema import DataError
from mtrec.data.split import Split

#: Version of the prepared layout and of the reading rules; part of every cache
#: key, so bumping it invalidates every cache entry.
FORMAT_VERSION = 1

#: The manifest's file name inside a prepared directory.
MANIFEST = "manifest.json"

#: Part names: ``all`` without a split, ``train`` and ``eval`` with one (plus
#: ``validation`` with a validation fraction).
PARTS_WITHOUT_SPLIT = ("all",)
PARTS_WITH_SPLIT = ("train", "eval")

DTYPE_NAMES = {tf.string: "string", tf.int64: "int64", tf.float32: "float32"}


def split_record(split: Split | None) -> dict | None:
    """The split as the manifest and the cache key record it."""
    if split is None:
        return None
    record = {"eval_fraction": float(split.eval_fraction), "seed": int(split.seed)}
    if split.validation_fraction:
        record["validation_fraction"] = float(split.validation_fraction)
    return record


def make_split(
    eval_fraction: float | None, seed: int | None, validation_fraction: float = 0.0
) -> Split | None:
    if eval_fraction is None and seed is None:
        if validation_fraction:
            raise ValueError(
                "`validation_fraction` needs a split (`eval_fraction` and `seed`). "
                f"Received: `validation_fraction={validation_fraction!r}`"
            )
        return None
    if eval_fraction is None or seed is None:
        raise ValueError(
            "`eval_fraction` and `seed` must be given together. Received: "
            f"`eval_fraction={eval_fraction!r}`, `seed={seed!r}`"
        )
    return Split("eval", eval_fraction, seed, validation_fraction)


def _file_sha256(path: Path) -> str:
    try:
        with open(path, "rb") as stream:
            return hashlib.file_digest(stream, "sha256").hexdigest()
    except OSError as err:
        raise DataError(f"{path}: cannot read: {err}") from err


def cache_key(
    infos: list[_FileInfo],
    schema: ColumnSchema,
    split: Split | None,
    layout: dict[str, int],
) -> str:
    """SHA-256 over the file contents, formats, schema, split and layout."""
    described = {
        "format_version": FORMAT_VERSION,
        "files": [
            {
                "sha256": _file_sha256(info.path),
                "bytes": info.path.stat().st_size,
                "format": "csv" if info.is_csv else "parquet",
                "delimiter": info.delimiter,
            }
            for info in infos
        ],
        # Not sorted: the schema's column order is the output order.
        "schema": dataclasses.asdict(schema),
        "split": split_record(split),
        "layout": layout,
    }
    text = json.dumps(described, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def schema_from_json(fields: dict) -> ColumnSchema:
    """A ``ColumnSchema`` from ``dataclasses.asdict`` output read back from JSON."""
    values = {}
    for field in dataclasses.fields(ColumnSchema):
        value = fields[field.name]
        values[field.name] = tuple(value) if isinstance(value, list) else value
    return ColumnSchema(**values)
