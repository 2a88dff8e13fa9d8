"""The validating prepare pass: raw click logs to cached, sharded TFRecord files.

:func:`prepare_data` streams CSV/Parquet files through the validating reader
(every bad value raises :class:`~mtrec.data.schema.DataError` naming the file,
the line or row, the column and the value, before anything is trained) and
writes the validated rows as ``tf.train.Example`` protos into sharded TFRecord
files that :func:`mtrec.data.native.native_dataset` streams with graph-only
``tf.data``.
Each Example holds a block of ``rows_per_example`` consecutive rows, one
feature per column listing the block's values (see
:mod:`mtrec.data.example_encoding`): blocks of 1024 rows parse about eight
times faster than one Example per row. ``rows_per_example=1`` writes one row
per Example, the format the exported ``predict_examples`` signature parses.

One pass over the files writes both parts of a train/eval split, each to its
own shard set: a row goes to ``eval`` iff ``Split("eval", eval_fraction,
seed)`` selects it, exactly as the reader's :class:`~mtrec.data.split.Split`
does, so the native path never hashes rows at read time. Rows violating
``label_requires`` are dropped (``on_label_violation="drop"``) and counted per
part. Missing cells are stored already filled (``""``, the fill value, NaN for
passthrough floats), so parsing needs no defaults.

**Cache.** The output lands in ``<cache_dir>/prepared-<key>/`` where ``key`` is
the SHA-256 of: :data:`FORMAT_VERSION`, every input file's SHA-256 *of its full
contents* and size, in path order, with its format (CSV delimiter or Parquet),
the column schema, the split (``eval_fraction``, ``seed``), ``rows_per_shard``
and ``rows_per_example``. File names and modification times do not enter the
key: a moved or touched file still hits the cache, an edited one never does.
Hashing
reads every byte (hashlib, about 1 GB/s on one core: about 0.1 s for the 85 MB
demo log, under a tenth of the prepare pass itself), so a cache hit costs one
read of the inputs and no parsing. Everything is written into a temporary
directory beside the cache entry and renamed into place only when complete: a
killed prepare leaves at most a ``.tmp-*`` directory that is never read. A
cache entry is trusted only if its manifest parses, carries the same key and
every shard has the recorded size.

Example:

>>> import pathlib, tempfile
>>> logs = pathlib.Path(tempfile.mkdtemp())
>>> _ = (logs / "day1.csv").write_text("user_id,click\\nu1,0\\nu2,1\\nu3,0\\n")
>>> schema = ColumnSchema(string_columns=("user_id",), label_columns=("click",))
>>> prepared = prepare_data(logs, schema, logs / "cache")
>>> part = prepared.parts["all"]
>>> part.rows, part.rows_per_shard, [p.name for p in part.shards]
(3, (3,), ['all-00000.tfrecord'])
>>> prepare_data(logs, schema, logs / "cache") == prepared  # cached
True
"""

import dataclasses
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from collections.abc import Mapping
from pathlib import Path

import tensorflow as tf

from mtrec.checks import check_int
from mtrec.data.columns import output_signature
from mtrec.data.files import PathsLike
from mtrec.data.files import _check_file_format
from mtrec.data.files import _prepare
from mtrec.data.prepared_manifest import FORMAT_VERSION
from mtrec.data.prepared_manifest import MANIFEST
from mtrec.data.prepared_manifest import cache_key
from mtrec.data.prepared_manifest import make_split
from mtrec.data.prepared_manifest import schema_from_json
from mtrec.data.schema import ColumnSchema
from mtrec.data.schema import DataError
from mtrec.data.shard_writer import write_parts

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class PreparedPart:
    """One shard set of a prepared data set (``all``, ``train`` or ``eval``).

    Attributes:
      name: the part's name.
      shards: the TFRecord files, in write order (rows keep file order across
        shards and within them).
      rows_per_shard: rows in each shard.
      rows: rows in the part (the sum of ``rows_per_shard``).
      rows_dropped: rows of this part dropped for ``label_requires``
        violations (``on_label_violation="drop"``).
    """

    name: str
    shards: tuple[Path, ...]
    rows_per_shard: tuple[int, ...]
    rows: int
    rows_dropped: int


@dataclasses.dataclass(frozen=True)
class PreparedData:
    """Validated click logs as sharded TFRecord files (see :func:`prepare_data`).

    Attributes:
      directory: the cache entry holding the shards and ``manifest.json``.
      cache_key: hex SHA-256 of the inputs, schema, split and layout.
      schema: the column schema the rows were validated against.
      passthrough: the passthrough columns present (those of the first file).
      rows_per_example: rows per ``tf.train.Example`` (a block's last Example
        may hold fewer: blocks never straddle a chunk or a shard).
      parts: ``{"all": part}`` without a split, ``{"train": part, "eval":
        part}`` with one (and ``"validation"`` with a validation fraction).
      eval_fraction: the split's eval fraction, or None without a split.
      split_seed: the split's seed, or None without a split.
      rows_read: data rows read from the files (every part, before drops); a
        part's rows excluded by the split are ``rows_read`` minus that part's
        ``rows`` and ``rows_dropped`` minus the other parts'.
      sources: the input files, in the order read.
    """

    directory: Path
    cache_key: str
    schema: ColumnSchema
    passthrough: tuple[str, ...]
    rows_per_example: int
    parts: Mapping[str, PreparedPart]
    eval_fraction: float | None
    split_seed: int | None
    rows_read: int
    sources: tuple[Path, ...]

    @property
    def output_signature(self) -> dict[str, tf.TensorSpec]:
        """The ``tf.TensorSpec`` of every column, as ``make_dataset`` yields it."""
        return output_signature(self.schema, self.passthrough)

    def part(self, name: str | None = None) -> PreparedPart:
        """The part ``name``; None means the only part (no split).

        Raises:
          ValueError: an unknown name, or None when there are two parts.
        """
        if name is None and len(self.parts) == 1:
            return next(iter(self.parts.values()))
        if name not in self.parts:
            raise ValueError(
                f"`part` must be one of {sorted(self.parts)}. Received: `part={name!r}`"
            )
        return self.parts[name]


def prepare_data(
    paths: PathsLike,
    schema: ColumnSchema,
    cache_dir: str | os.PathLike,
    *,
    eval_fraction: float | None = None,
    seed: int | None = None,
    validation_fraction: float = 0.0,
    file_format: str = "auto",
    rows_per_shard: int = 131_072,
    rows_per_example: int = 1024,
    chunk_rows: int = 65_536,
) -> PreparedData:
    """Validates click logs once and writes them as sharded TFRecord files.

    A second call with the same file contents, schema, split and layout
    returns the cached result without parsing any row.

    Args:
      paths: files, a directory or a glob pattern (see
        :func:`mtrec.data.reader.iter_chunks`).
      schema: the columns to read and how to validate them.
      cache_dir: where cache entries live (created if absent).
      eval_fraction: with ``seed``, write a ``train`` and an ``eval`` part as
        ``Split(part, eval_fraction, seed)`` divides the rows; None writes one
        ``all`` part.
      seed: the split's hash seed (required with ``eval_fraction``).
      validation_fraction: with a split, also write a ``validation`` part of
        the held-out rows ``Split("validation", eval_fraction, seed,
        validation_fraction)`` selects (they leave ``eval``; ``train`` is
        unchanged). Default 0: no validation part.
      file_format: ``"auto"``, ``"csv"`` or ``"parquet"``.
      rows_per_shard: rows per TFRecord file, at most (a shard holds whole
        Examples; the last shard of a part holds the rest). More shards give
        more parallel reads and finer worker sharding.
      rows_per_example: rows per ``tf.train.Example`` (1: one row per Example,
        the ``predict_examples`` format; larger blocks parse faster).
      chunk_rows: rows validated and serialized at a time (bounds memory).

    Returns:
      The :class:`PreparedData`, also saved as ``manifest.json`` in its
      directory.

    Raises:
      DataError: as the reader: a file is missing, empty, lacks columns, is
        malformed or holds an invalid value (file, line or row, column, value).
      ValueError: an invalid argument.
    """
    _check_file_format(file_format)
    check_int("rows_per_shard", rows_per_shard, 1)
    check_int("rows_per_example", rows_per_example, 1)
    check_int("chunk_rows", chunk_rows, 1)
    split = make_split(eval_fraction, seed, validation_fraction)
    infos, passthrough = _prepare(paths, schema, file_format)
    layout = {"rows_per_shard": rows_per_shard, "rows_per_example": rows_per_example}
    key = cache_key(infos, schema, split, layout)
    cache = Path(cache_dir)
    final = cache / f"prepared-{key[:24]}"
    cached = _load_trusted(final, key)
    if cached is not None:
        logger.info("Reusing prepared data %s", final)
        return cached
    cache.mkdir(parents=True, exist_ok=True)
    prepared = _write_entry(
        final,
        key,
        lambda directory: write_parts(
            infos, passthrough, schema, split, directory, layout, chunk_rows
        ),
    )
    logger.info("Prepared %s", final)
    return prepared


def _write_entry(final: Path, key: str, write: Callable[[Path], dict]) -> PreparedData:
    """Writes the cache entry ``final`` whole or not at all.

    ``write(directory)`` fills a new temporary directory beside ``final`` and
    returns its manifest, saved with ``key``; the directory is then renamed
    to ``final`` (replacing an untrusted leftover there). On any error the
    temporary directory is removed. If a concurrent writer (another worker
    of a cluster preparing the same data) put a trusted copy at ``final``
    first, that copy is returned and kept as it is, since its writer may be
    reading it: only an untrusted entry is ever removed.
    """
    temporary = Path(tempfile.mkdtemp(prefix=f".tmp-{key[:12]}-", dir=final.parent))
    try:
        manifest = write(temporary)
        manifest["cache_key"] = key
        (temporary / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        if final.exists():
            cached = _load_trusted(final, key)
            if cached is not None:  # a concurrent writer finished first
                shutil.rmtree(temporary, ignore_errors=True)
                return cached
            logger.warning("Replacing the invalid cache entry %s", final)
            shutil.rmtree(final)
        try:
            temporary.rename(final)
        except OSError:
            # A concurrent writer of the same entry renamed its copy first.
            cached = _load_trusted(final, key)
            if cached is None:
                raise
            shutil.rmtree(temporary, ignore_errors=True)
            return cached
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return load_prepared(final)


def load_prepared(directory: str | os.PathLike) -> PreparedData:
    """Reads a prepared directory's manifest and checks its shards.

    Raises:
      DataError: the manifest is missing or invalid, or a shard is missing or
        has another size than recorded.
    """
    directory = Path(directory)
    path = directory / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        message = f"{path}: cannot read the prepared-data manifest: {err}"
        raise DataError(message) from err
    try:
        if manifest["format_version"] != FORMAT_VERSION:
            raise DataError(
                f"{path}: format_version {manifest['format_version']!r}, "
                f"expected {FORMAT_VERSION}"
            )
        parts = {
            name: _checked_part(directory, name, part)
            for name, part in manifest["parts"].items()
        }
        split = manifest["split"]
        return PreparedData(
            directory=directory,
            cache_key=manifest["cache_key"],
            schema=schema_from_json(manifest["schema"]),
            passthrough=tuple(manifest["passthrough"]),
            rows_per_example=int(manifest["rows_per_example"]),
            parts=parts,
            eval_fraction=None if split is None else split["eval_fraction"],
            split_seed=None if split is None else split["seed"],
            rows_read=int(manifest["rows_read"]),
            sources=tuple(Path(source["path"]) for source in manifest["sources"]),
        )
    except (KeyError, TypeError, ValueError) as err:
        if isinstance(err, DataError):
            raise
        raise DataError(f"{path}: invalid prepared-data manifest: {err!r}") from err


def _checked_part(directory: Path, name: str, part: dict) -> PreparedPart:
    """A manifest's part, each of its shards checked to exist with the size
    the manifest records (``DataError`` naming the shard otherwise)."""
    shards = []
    for shard in part["shards"]:
        shard_path = directory / shard["file"]
        size = shard_path.stat().st_size if shard_path.is_file() else None
        if size != shard["bytes"]:
            raise DataError(
                f"{shard_path}: shard missing or of {size} bytes, the "
                f"manifest records {shard['bytes']}"
            )
        shards.append(shard_path)
    return PreparedPart(
        name=name,
        shards=tuple(shards),
        rows_per_shard=tuple(int(s["rows"]) for s in part["shards"]),
        rows=int(part["rows"]),
        rows_dropped=int(part["rows_dropped"]),
    )


def _load_trusted(directory: Path, key: str) -> PreparedData | None:
    """The cache entry if it is complete and has ``key``; None otherwise."""
    if not directory.is_dir():
        return None
    try:
        prepared = load_prepared(directory)
    except DataError as err:
        logger.warning("Ignoring the cache entry %s: %s", directory, err)
        return None
    if prepared.cache_key != key:
        logger.warning("Ignoring the cache entry %s: another cache key", directory)
        return None
    return prepared
