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
    columns = list(kinds)
    names = PARTS_WITHOUT_SPLIT if split is None else PARTS_WITH_SPLIT
    if split is not None and split.validation_fraction:
        names = (*names, "validation")
    rows_per_shard = layout["rows_per_shard"]
    rows_per_example = layout["rows_per_example"]
    writers = {name: ShardWriter(directory, name, rows_per_shard) for name in names}
    drop = schema.on_label_violation == "drop" and bool(schema.label_requires)
    rows_read = 0
    try:
        for info in infos:
            read = dropped = 0
            chunks = progress(
                _read_tables(info, columns, chunk_rows),
                f"preparing {info.path.name}",
                unit="chunk",
            )
            for table in chunks:
                rows = table.num_rows
                arrays = _convert_table(
                    table, info, read, kinds, schema, strings_as_arrow=True
                )
                if split is None:
                    masks = {"all": None}
                else:
                    row_indices = np.arange(read, read + rows)
                    masks = {
                        name: dataclasses.replace(split, part=name).mask(
                            info.index, row_indices
                        )
                        for name in names
                    }
                violated = _requires_violations(arrays, schema) if drop else None
                for name, keep in masks.items():
                    if violated is not None:
                        inside = violated if keep is None else violated & keep
                        count = int(inside.sum())
                        writers[name].rows_dropped += count
                        dropped += count
                        keep = ~violated if keep is None else keep & ~violated
                    selected = arrays
                    if keep is not None:
                        selected = {k: _select(v, keep) for k, v in arrays.items()}
                    writers[name].write(selected, rows_per_example)
                read += rows
            _end_of_file(info.path, read, dropped, schema)
            rows_read += read
    finally:
        for writer in writers.values():
            writer.close()
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
