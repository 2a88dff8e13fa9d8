"""A prepared shard set rewritten with some columns encoded, once, and cached.

:func:`encode_prepared` maps every Example of the chosen parts of a prepared
data set through a graph function (e.g. :class:`mtrec.features.IdEncoder`,
raw categorical values to their table rows) and writes the results as a new
prepared data set inside the first one's cache entry, a shard at a time. Each
output shard holds the same rows in the same order, one output Example per
input Example of as many rows, so
:func:`mtrec.data.native_dataset` reads, shuffles, shards and resumes it
exactly as the original: with the same seed, batch ``b`` of epoch ``e`` holds
the same rows.

The entry is ``<prepared.directory>/encoded-<key>/`` with ``key`` the SHA-256
of the original's cache key and the caller's ``fingerprint`` (which must
change whenever the encoding does, e.g. a hash of the vocabularies). It is
written into a temporary directory and renamed into place when complete, and
is trusted only when its manifest carries the key and every shard its
recorded size, as :func:`mtrec.data.prepare_data`'s entries.
"""

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from mtrec.data.columns import output_signature
from mtrec.data.example_encoding import encode_examples
from mtrec.data.native import parse_spec
from mtrec.data.prepare import PreparedData
from mtrec.data.prepare import _load_trusted
from mtrec.data.prepare import _write_entry
from mtrec.data.prepared_manifest import DTYPE_NAMES
from mtrec.data.prepared_manifest import MANIFEST
from mtrec.data.schema import ColumnSchema
from mtrec.progress import progress

logger = logging.getLogger(__name__)


def encode_prepared(
    prepared: PreparedData,
    encode: Callable[[dict[str, tf.Tensor]], dict[str, tf.Tensor]],
    renamed: Mapping[str, str],
    fingerprint: str,
    parts: Sequence[str] | None = None,
) -> PreparedData:
    """Writes ``prepared``'s parts with columns encoded; cached by fingerprint.

    Args:
      prepared: from :func:`mtrec.data.prepare_data`.
      encode: ``{column: (rows,)} -> {column: (rows,)}``, run in graph mode
        on each Example's rows; it replaces each column ``c`` of ``renamed``
        by an int64 column ``renamed[c]`` and passes every other column
        through unchanged.
      renamed: ``{raw column: encoded int64 column}``.
      fingerprint: identifies the encoding (same fingerprint, same output).
      parts: the parts to encode (default all); the result holds only these.

    Returns:
      The encoded :class:`PreparedData`: same parts, shards, rows and order;
      schema with each ``renamed`` column replaced by its int64 column.

    Raises:
      ValueError: an unknown part or column, an encoded column the data
        already has, or an ``encode`` whose output columns are not the ones
        ``renamed`` says.

    Example:

    >>> import pathlib, tempfile
    >>> from mtrec.data import ColumnSchema, prepare_data
    >>> logs = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (logs / "a.csv").write_text("user_id,click\\nu1,0\\nu22,1\\n")
    >>> schema = ColumnSchema(string_columns=("user_id",), label_columns=("click",))
    >>> prepared = prepare_data(logs, schema, logs / "cache")
    >>> def lengths(columns):
    ...     out = dict(columns)
    ...     out["user_len"] = tf.strings.length(out.pop("user_id"), "UTF8_CHAR")
    ...     return {k: tf.cast(v, tf.int64) if k == "user_len" else v
    ...             for k, v in out.items()}
    >>> encoded = encode_prepared(prepared, lengths, {"user_id": "user_len"}, "len")
    >>> sorted(encoded.output_signature), encoded.part().rows
    (['click', 'user_len'], 2)
    >>> encode_prepared(prepared, lengths, {"user_id": "user_len"}, "len") == encoded
    True
    """
    names = list(prepared.parts) if parts is None else list(parts)
    for name in names:
        prepared.part(name)  # raises on an unknown part
    signature = prepared.output_signature
    for column in renamed:
        if column not in signature:
            raise ValueError(
                f"Cannot encode column {column!r}: the prepared data has columns "
                f"{sorted(signature)}. Received: `renamed={dict(renamed)!r}`"
            )
    taken = sorted(c for c in renamed.values() if c in signature and c not in renamed)
    if taken:
        raise ValueError(
            f"Cannot encode into the columns {taken}: the prepared data already "
            f"has them. Received: `renamed={dict(renamed)!r}`"
        )
    text = json.dumps([prepared.cache_key, fingerprint, sorted(renamed.items()), names])
    key = hashlib.sha256(text.encode()).hexdigest()
    final = prepared.directory / f"encoded-{key[:24]}"
    cached = _load_trusted(final, key)
    if cached is not None:
        logger.info("Reusing encoded data %s", final)
        return cached
    schema = _encoded_schema(prepared.schema, renamed)
    columns = output_signature(schema, prepared.passthrough)

    def write(directory: Path) -> dict:
        manifest = json.loads((prepared.directory / MANIFEST).read_text())
        manifest["parts"] = {
            name: _encode_part(
                prepared, name, encode, set(columns), directory, manifest
            )
            for name in names
        }
        manifest["schema"] = dataclasses.asdict(schema)
        manifest["columns"] = {
            name: DTYPE_NAMES[spec.dtype] for name, spec in columns.items()
        }
        manifest["encoded_from"] = prepared.cache_key
        return manifest

    encoded = _write_entry(final, key, write)
    logger.info("Encoded %s", final)
    return encoded


def _encoded_schema(schema: ColumnSchema, renamed: Mapping[str, str]) -> ColumnSchema:
    """``schema`` with each renamed column moved to an int64 column."""
    return dataclasses.replace(
        schema,
        string_columns=tuple(c for c in schema.string_columns if c not in renamed),
        int_columns=(
            *(c for c in schema.int_columns if c not in renamed),
            *renamed.values(),
        ),
    )


def _encode_part(
    prepared: PreparedData,
    name: str,
    encode: Callable,
    expected: set[str],
    directory: Path,
    manifest: dict,
) -> dict:
    """Encodes one part's shards into ``directory``; returns its manifest entry.

    A shard at a time: its Examples parsed at once, encoded by one call of
    ``encode``, and written back as Examples of the rows each had.
    """
    spec = parse_spec(prepared)
    first = next(iter(spec))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)
    def encoded(serialized: tf.Tensor):
        parsed = tf.io.parse_example(serialized, spec)
        columns = {column: parsed[column].flat_values for column in spec}
        return encode(columns), parsed[first].row_lengths()

    part = dict(manifest["parts"][name])
    part["shards"] = [dict(shard) for shard in part["shards"]]
    shards = prepared.part(name).shards
    for shard, path in zip(
        part["shards"],
        progress(shards, f"encoding the {name} part", unit="shard"),
        strict=True,
    ):
        serialized = tf.constant(
            list(tf.data.TFRecordDataset(str(path)).as_numpy_iterator()), tf.string
        )
        columns, example_rows = encoded(serialized)
        if set(columns) != expected:
            raise ValueError(
                f"`encode` must return the columns {sorted(expected)}. "
                f"Received: {sorted(columns)}"
            )
        columns = {k: _writable(v.numpy()) for k, v in columns.items()}
        target = directory / path.name
        with tf.io.TFRecordWriter(str(target)) as writer:
            for record in encode_examples(columns, example_rows=example_rows.numpy()):
                writer.write(record)
        shard["bytes"] = target.stat().st_size
    return part


def _writable(values: np.ndarray) -> np.ndarray:
    """Parsed values as :func:`encode_examples` takes them (int64 ids kept)."""
    if values.dtype == object:  # bytes
        return values
    if values.dtype.kind in "iu":
        return values.astype(np.int64, copy=False)
    return values
