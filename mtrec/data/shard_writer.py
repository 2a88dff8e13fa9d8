"""The prepare pass's writing: validated rows into each part's TFRecord shards."""

import dataclasses
from pathlib import Path

import numpy as np
import tensorflow as tf

from mtrec.data.arrow_read import _read_tables
from mtrec.data.columns import _column_kinds
from mtrec.data.columns import output_signature
from mtrec.data.convert import _convert_table
from mtrec.data.convert import _requires_violations
from mtrec.data.example_encoding import encode_examples
from mtrec.data.files import _FileInfo
from mtrec.data.prepared_manifest import DTYPE_NAMES
from mtrec.data.prepared_manifest import FORMAT_VERSION
from mtrec.data.prepared_manifest import PARTS_WITH_SPLIT
from mtrec.data.prepared_manifest import PARTS_WITHOUT_SPLIT
from mtrec.data.prepared_manifest import split_record
from mtrec.data.schema import ColumnSchema
from mtrec.data.split import Split
from mtrec.data.stream import _end_of_file
from mtrec.data.stream import _less_violations
from mtrec.data.stream import _select
from mtrec.progress import progress


class ShardWriter:
    """Writes one part's records into ``<part>-NNNNN.tfrecord`` files."""

    def __init__(self, directory: Path, part: str, rows_per_shard: int):
        self.directory = directory
        self.part = part
        self.rows_per_shard = rows_per_shard
        self.shards: list[dict] = []
        self.writer: tf.io.TFRecordWriter | None = None
        self.rows = 0
        self.rows_dropped = 0

    def write(self, columns: dict, rows_per_example: int) -> None:
        """Encodes and writes the rows of ``columns``, whole Examples per shard."""
        rows = len(next(iter(columns.values())))
        if rows == 0:
            return
        records = encode_examples(columns, rows_per_example)
        counts = [rows_per_example] * len(records)
        counts[-1] = rows - rows_per_example * (len(records) - 1)
        for record, count in zip(records, counts, strict=True):
            shard = self.shards[-1] if self.writer is not None else None
            full = shard is not None and shard["rows"] + count > self.rows_per_shard
            if shard is None or (full and shard["rows"]):
                shard = self._open()
            self.writer.write(record)
            shard["rows"] += count
            shard["examples"] += 1
        self.rows += rows

    def _open(self) -> dict:
        self.close()
        name = f"{self.part}-{len(self.shards):05d}.tfrecord"
        self.shards.append({"file": name, "rows": 0, "examples": 0, "bytes": 0})
        self.writer = tf.io.TFRecordWriter(str(self.directory / name))
        return self.shards[-1]

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
            shard = self.shards[-1]
            shard["bytes"] = (self.directory / shard["file"]).stat().st_size

    def manifest(self) -> dict:
        return {
            "shards": self.shards,
            "rows": self.rows,
            "rows_dropped": self.rows_dropped,
        }


def write_parts(
    infos: list[_FileInfo],
    passthrough: tuple[str, ...],
    schema: ColumnSchema,
    split: Split | None,
    directory: Path,
    layout: dict[str, int],
    chunk_rows: int,
) -> dict:
    """Validates every file and writes each part's shards; returns the manifest."""
    kinds = _column_kinds(schema, passthrough)
    names = _part_names(split)
    rows_per_shard = layout["rows_per_shard"]
    rows_per_example = layout["rows_per_example"]
    writers = {name: ShardWriter(directory, name, rows_per_shard) for name in names}
    rows_read = 0
    try:
        for info in infos:
            rows_read += _write_file(
                info,
                kinds,
                schema,
                split,
                writers,
                chunk_rows=chunk_rows,
                rows_per_example=rows_per_example,
            )
    finally:
        for writer in writers.values():
            writer.close()
    return _manifest(infos, passthrough, schema, split, layout, rows_read, writers)


def _part_names(split: Split | None) -> tuple[str, ...]:
    """The parts written: ``all`` without a split, else its parts."""
    names = PARTS_WITHOUT_SPLIT if split is None else PARTS_WITH_SPLIT
    if split is not None and split.validation_fraction:
        names = (*names, "validation")
    return names


def _write_file(
    info: _FileInfo,
    kinds: dict[str, str],
    schema: ColumnSchema,
    split: Split | None,
    writers: dict[str, ShardWriter],
    *,
    chunk_rows: int,
    rows_per_example: int,
) -> int:
    """Validates one file chunk by chunk into the parts' writers; returns its rows."""
    drop = schema.on_label_violation == "drop" and bool(schema.label_requires)
    read = dropped = 0
    chunks = progress(
        _read_tables(info, list(kinds), chunk_rows),
        f"preparing {info.path.name}",
        unit="chunk",
    )
    for table in chunks:
        rows = table.num_rows
        arrays = _convert_table(table, info, read, kinds, schema, strings_as_arrow=True)
        masks = _part_masks(split, tuple(writers), info.index, read, rows)
        violated = _requires_violations(arrays, schema) if drop else None
        dropped += _write_chunk(arrays, masks, violated, writers, rows_per_example)
        read += rows
    _end_of_file(info.path, read, dropped, schema)
    return read


def _part_masks(
    split: Split | None, names: tuple[str, ...], file_index: int, start: int, rows: int
) -> dict[str, np.ndarray | None]:
    """Each part's mask of the file rows ``start`` to ``start + rows`` (None: all)."""
    if split is None:
        return {"all": None}
    row_indices = np.arange(start, start + rows)
    return {
        name: dataclasses.replace(split, part=name).mask(file_index, row_indices)
        for name in names
    }


def _write_chunk(
    arrays: dict,
    masks: dict[str, np.ndarray | None],
    violated: np.ndarray | None,
    writers: dict[str, ShardWriter],
    rows_per_example: int,
) -> int:
    """Writes each part's rows of a chunk, less ``violated`` ones; returns drops.

    The rows of a part that violate ``label_requires`` (``violated``; None when
    they are kept) are counted in its writer's ``rows_dropped`` and not written.
    """
    dropped = 0
    for name, keep in masks.items():
        if violated is not None:
            keep, count = _less_violations(keep, violated)
            writers[name].rows_dropped += count
            dropped += count
        selected = arrays
        if keep is not None:
            selected = {k: _select(v, keep) for k, v in arrays.items()}
        writers[name].write(selected, rows_per_example)
    return dropped


def _manifest(
    infos: list[_FileInfo],
    passthrough: tuple[str, ...],
    schema: ColumnSchema,
    split: Split | None,
    layout: dict[str, int],
    rows_read: int,
    writers: dict[str, ShardWriter],
) -> dict:
    """The prepared data's manifest, once every part has been written."""
    signature = output_signature(schema, passthrough)
    return {
        "format_version": FORMAT_VERSION,
        "schema": dataclasses.asdict(schema),
        "passthrough": list(passthrough),
        **layout,
        "columns": {name: DTYPE_NAMES[spec.dtype] for name, spec in signature.items()},
        "split": split_record(split),
        "rows_read": rows_read,
        "sources": [{"path": str(info.path)} for info in infos],
        "parts": {name: writer.manifest() for name, writer in writers.items()},
    }
