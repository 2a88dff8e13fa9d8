"""Streaming validated chunks, in-order and shuffled batching, tf.data."""

import dataclasses
import itertools
import logging
from collections.abc import Generator
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import tensorflow as tf

from mtrec.checks import check_int
from mtrec.data.arrow_read import _read_tables
from mtrec.data.columns import _PASSTHROUGH_STRING
from mtrec.data.columns import _STRING
from mtrec.data.columns import _column_kinds
from mtrec.data.columns import _numpy_dtype
from mtrec.data.columns import output_signature
from mtrec.data.convert import _Columns
from mtrec.data.convert import _convert_table
from mtrec.data.convert import _requires_violations
from mtrec.data.convert import _to_numpy
from mtrec.data.error_channel import DATA_ERRORS
from mtrec.data.files import PathsLike
from mtrec.data.files import _check_columns
from mtrec.data.files import _check_file_format
from mtrec.data.files import _FileInfo
from mtrec.data.files import _inspect
from mtrec.data.files import _passthrough_of
from mtrec.data.files import _prepare
from mtrec.data.files import _resolve_paths
from mtrec.data.schema import ColumnSchema
from mtrec.data.schema import DataError
from mtrec.data.split import Split

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class ReadStats:
    """Counters a reader updates while it streams (they accumulate over epochs).

    Attributes:
      rows_read: data rows parsed from files (both parts of a split).
      rows_yielded: rows that passed validation and the split, i.e. returned.
      rows_dropped: rows of the selected part dropped for ``label_requires``
        violations (``on_label_violation="drop"``).
      files: files opened.
    """

    rows_read: int = 0
    rows_yielded: int = 0
    rows_dropped: int = 0
    files: int = 0


def iter_chunks(
    paths: PathsLike,
    schema: ColumnSchema,
    *,
    chunk_rows: int = 65_536,
    file_format: str = "auto",
    split: Split | None = None,
    stats: ReadStats | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """Reads click logs chunk by chunk, validating every row.

    Each chunk is a flat ``{column: np.ndarray}`` with at most ``chunk_rows``
    rows: every required column of ``schema``, then every passthrough column
    found in the first file. String columns are object arrays of ``str`` (a
    missing cell is ``""``; a literal ``"NA"`` stays ``"NA"``), int columns
    int64, float columns float32 (a missing cell takes the fill value), binary
    and regression labels float32, passthrough floats float32 (missing is NaN)
    and passthrough strings object ``str``. _Columns the schema does not mention
    are ignored. Chunks left empty by the split or by drops are skipped.

    Paths and arguments are checked when this is called; files are then read
    one after another as the iterator is consumed, and each file's header is
    checked when the reader reaches it. Errors are reported for the first
    offending row in file order.

    Args:
      paths: a file, a directory (its click-log files, sorted), a glob pattern
        (sorted matches), or a sequence of those (order kept).
      schema: the columns to read and how to validate them.
      chunk_rows: maximum rows per chunk; memory use is proportional to it.
      file_format: ``"auto"`` (by suffix: ``.csv``, ``.csv.gz``, ``.tsv``,
        ``.tsv.gz``, ``.parquet``, ``.pq``), ``"csv"`` (tab-separated if the
        name ends in ``.tsv``/``.tsv.gz``, else comma) or ``"parquet"``.
      split: keep only one part of a deterministic train/eval split.
      stats: counters to update while reading.

    Returns:
      An iterator of ``{column: np.ndarray of shape (n,)}`` with
      ``1 <= n <= chunk_rows``.

    Raises:
      DataError: a file is missing, empty, lacks required columns, is malformed
        or holds an invalid value.
      ValueError: an invalid argument.
    """
    check_int("chunk_rows", chunk_rows, 1)
    _check_file_format(file_format)
    _column_kinds(schema, passthrough=())  # validates the schema early
    files = _resolve_paths(paths, file_format)
    # Headers are read lazily, when the stream reaches each file.
    infos = (_inspect(path, index, file_format) for index, path in enumerate(files))
    return _stream(
        infos,
        schema,
        chunk_rows=chunk_rows,
        split=split,
        stats=stats,
        passthrough=None,
        num_files=len(files),
    )


def make_dataset(
    paths: PathsLike,
    schema: ColumnSchema,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int | None = None,
    shuffle_buffer_rows: int = 262_144,
    chunk_rows: int = 65_536,
    file_format: str = "auto",
    split: Split | None = None,
    drop_remainder: bool = False,
    stats: ReadStats | None = None,
) -> tf.data.Dataset:
    """A ``tf.data.Dataset`` of flat dict batches streamed from click logs.

    Every file header is checked before the dataset is built, so an empty file
    or missing columns raise :class:`DataError` here. Value errors are found
    while streaming: tf.data then raises ``tf.errors.InvalidArgumentError`` (or
    ``UnknownError``) whose message contains the ``DataError`` text; inside
    :func:`~mtrec.data.error_channel.surface_data_errors` the ``DataError``
    itself is raised (the reader records it in a side channel).

    Batching is done in numpy. With ``shuffle=True`` the file order is permuted
    and rows are shuffled within windows of about ``shuffle_buffer_rows`` rows;
    every new iteration (epoch) draws a new order from ``(seed, epoch)``, so two
    datasets built with the same seed give the same sequence of epochs. With
    ``shuffle=False`` file and row order are kept exactly.

    Args:
      paths: files, a directory or a glob pattern (see :func:`iter_chunks`).
      schema: the columns to read and how to validate them.
      batch_size: rows per batch.
      shuffle: shuffle files and rows.
      seed: seed of the shuffle; None draws fresh entropy (not reproducible).
      shuffle_buffer_rows: rows shuffled together.
      chunk_rows: rows read per chunk.
      file_format: ``"auto"``, ``"csv"`` or ``"parquet"``.
      split: keep only one part of a deterministic train/eval split.
      drop_remainder: drop the last, smaller batch; batches then have the static
        shape ``(batch_size,)``.
      stats: counters updated while the dataset is iterated.

    Returns:
      A dataset of ``{column: tensor of shape (batch,)}`` (see
      :func:`output_signature`), prefetched.

    Raises:
      DataError: no file matches, or a file is empty or lacks columns.
      ValueError: an invalid argument.
    """
    check_int("batch_size", batch_size, 1)
    check_int("shuffle_buffer_rows", shuffle_buffer_rows, 1)
    check_int("chunk_rows", chunk_rows, 1)
    _check_file_format(file_format)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"`seed` must be an int or None. Received: `seed={seed!r}`")
    infos, passthrough = _prepare(paths, schema, file_format)
    signature = output_signature(schema, passthrough)
    epochs = itertools.count()

    def generate() -> Iterator[dict[str, np.ndarray]]:
        epoch = next(epochs)
        order, rng = _epoch_order(infos, shuffle, seed, epoch)
        logger.debug("Dataset epoch %d over %d file(s)", epoch, len(order))
        chunks = _stream(
            order,
            schema,
            chunk_rows=chunk_rows,
            split=split,
            stats=stats,
            passthrough=passthrough,
            num_files=len(order),
            strings_as_arrow=True,
        )
        batches = _epoch_batches(
            chunks, batch_size, drop_remainder, shuffle_buffer_rows, rng
        )
        try:
            for batch in batches:
                yield {name: _to_numpy(values) for name, values in batch.items()}
        except DataError as error:
            # tf.data keeps only the text; surface_data_errors finds it here.
            DATA_ERRORS.record(error)
            raise

    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    if drop_remainder:
        dataset = dataset.map(
            lambda batch: {
                k: tf.ensure_shape(v, (batch_size,)) for k, v in batch.items()
            }
        )
    return dataset.prefetch(tf.data.AUTOTUNE)


def _epoch_order(
    infos: list[_FileInfo], shuffle: bool, seed: int | None, epoch: int
) -> tuple[list[_FileInfo], np.random.Generator | None]:
    """An epoch's file order and the generator of its row shuffle (None when
    not shuffling: files in the given order), drawn from ``(seed, epoch)``."""
    if not shuffle:
        return list(infos), None
    entropy = None if seed is None else [seed % 2**64, epoch]
    rng = np.random.default_rng(entropy)
    return [infos[i] for i in rng.permutation(len(infos))], rng


def _epoch_batches(
    chunks: Iterable[_Columns],
    batch_size: int,
    drop_remainder: bool,
    shuffle_buffer_rows: int,
    rng: np.random.Generator | None,
) -> Iterator[_Columns]:
    """An epoch's batches: in order without ``rng``, else shuffled in windows."""
    if rng is None:
        return _batches(chunks, batch_size, drop_remainder)
    return _shuffled_batches(
        chunks, batch_size, drop_remainder, shuffle_buffer_rows, rng
    )


def read_frame(
    paths: PathsLike,
    schema: ColumnSchema,
    *,
    file_format: str = "auto",
    split: Split | None = None,
) -> pd.DataFrame:
    """Reads and validates whole click logs into one DataFrame (small data only).

    _Columns and dtypes are those of :func:`iter_chunks` (string columns use
    pandas' string dtype); rows keep file order, with a fresh RangeIndex.

    Args:
      paths: files, a directory or a glob pattern (see :func:`iter_chunks`).
      schema: the columns to read and how to validate them.
      file_format: ``"auto"``, ``"csv"`` or ``"parquet"``.
      split: keep only one part of a deterministic train/eval split.

    Returns:
      The validated rows.

    Raises:
      DataError: as :func:`iter_chunks`.
    """
    _check_file_format(file_format)
    infos, passthrough = _prepare(paths, schema, file_format)
    kinds = _column_kinds(schema, passthrough)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in kinds}
    chunks = _stream(
        infos,
        schema,
        chunk_rows=65_536,
        split=split,
        stats=None,
        passthrough=passthrough,
        num_files=len(infos),
    )
    for chunk in chunks:
        for name, values in chunk.items():
            parts[name].append(values)
    columns = {}
    for name, kind in kinds.items():
        if parts[name]:
            values = np.concatenate(parts[name])
        else:
            values = np.empty(0, dtype=_numpy_dtype(kind))
        if kind in (_STRING, _PASSTHROUGH_STRING):
            columns[name] = pd.Series(values, dtype="str")
        else:
            columns[name] = pd.Series(values)
    return pd.DataFrame(columns)


def _stream(
    infos: Iterable[_FileInfo],
    schema: ColumnSchema,
    *,
    chunk_rows: int,
    split: Split | None,
    stats: ReadStats | None,
    passthrough: Sequence[str] | None,
    num_files: int,
    strings_as_arrow: bool = False,
) -> Iterator[dict[str, np.ndarray | pa.Array]]:
    """Validated, split and filtered chunks of every file in turn.

    With ``strings_as_arrow`` string columns stay Arrow string arrays: shuffling
    them with ``take`` and making Python strings per batch is about twice as
    fast as gathering object arrays whose strings lie all over the heap.
    """
    stats = stats if stats is not None else ReadStats()
    totals = ReadStats()
    drop = schema.on_label_violation == "drop" and bool(schema.label_requires)
    kinds: dict[str, str] | None = None
    for position, info in enumerate(infos):
        if passthrough is None:
            passthrough = _passthrough_of(info, schema)
        if kinds is None:
            kinds = _column_kinds(schema, passthrough)
        _check_columns(info, schema, passthrough)
        stats.files += 1
        totals.files += 1
        logger.debug(
            "Reading %s (file %d of %d, index %d)",
            info.path,
            position + 1,
            num_files,
            info.index,
        )
        counts = yield from _stream_file(
            info,
            kinds,
            schema,
            chunk_rows=chunk_rows,
            split=split,
            drop=drop,
            stats=stats,
            strings_as_arrow=strings_as_arrow,
        )
        totals.rows_read += counts.rows_read
        totals.rows_yielded += counts.rows_yielded
        totals.rows_dropped += counts.rows_dropped
        _end_of_file(info.path, counts.rows_read, counts.rows_dropped, schema)
        logger.debug(
            "Read %s: %d rows, %d yielded, %d dropped",
            info.path,
            counts.rows_read,
            counts.rows_yielded,
            counts.rows_dropped,
        )
    logger.info(
        "Read %d rows from %d file(s): %d yielded, %d dropped",
        totals.rows_read,
        totals.files,
        totals.rows_yielded,
        totals.rows_dropped,
    )


def _stream_file(
    info: _FileInfo,
    kinds: dict[str, str],
    schema: ColumnSchema,
    *,
    chunk_rows: int,
    split: Split | None,
    drop: bool,
    stats: ReadStats,
    strings_as_arrow: bool,
) -> Generator[dict[str, np.ndarray | pa.Array], None, ReadStats]:
    """Validated, split and filtered chunks of one file; returns its counts.

    ``stats`` is updated chunk by chunk, before each chunk is yielded; the
    returned counts are the file's own (``files`` left 0).
    """
    columns = list(kinds)
    read = yielded = dropped = 0
    for table in _read_tables(info, columns, chunk_rows):
        rows = table.num_rows
        arrays = _convert_table(table, info, read, kinds, schema, strings_as_arrow)
        keep, count = _rows_to_keep(
            arrays, info.index, read, rows, split=split, drop=drop, schema=schema
        )
        dropped += count
        read += rows
        stats.rows_read += rows
        stats.rows_dropped += count
        if keep is not None:
            arrays = {name: _select(values, keep) for name, values in arrays.items()}
        kept = len(arrays[columns[0]])
        if kept:
            yielded += kept
            stats.rows_yielded += kept
            yield arrays
    return ReadStats(rows_read=read, rows_yielded=yielded, rows_dropped=dropped)


def _rows_to_keep(
    arrays: _Columns,
    file_index: int,
    start: int,
    rows: int,
    *,
    split: Split | None,
    drop: bool,
    schema: ColumnSchema,
) -> tuple[np.ndarray | None, int]:
    """Which rows of a chunk to keep (None: all), and how many ``drop`` removed.

    The chunk holds the file's rows ``start`` to ``start + rows``. Rows outside
    the split's part are not kept; with ``drop`` neither are rows violating
    ``label_requires``, and the count is those of the part so removed.
    """
    keep = None
    if split is not None:
        keep = split.mask(file_index, np.arange(start, start + rows))
    if drop:
        return _less_violations(keep, _requires_violations(arrays, schema))
    return keep, 0


def _less_violations(
    keep: np.ndarray | None, violated: np.ndarray
) -> tuple[np.ndarray | None, int]:
    """``keep`` (a row mask; None: every row) less the ``violated`` rows, and
    how many of its rows they removed (``keep`` itself when none)."""
    inside = violated if keep is None else violated & keep
    count = int(inside.sum())
    if not count:
        return keep, 0
    return (~violated if keep is None else keep & ~violated), count


def _end_of_file(path, read: int, dropped: int, schema: ColumnSchema) -> None:
    """Refuses a file without data rows; logs the rows ``label_requires`` dropped."""
    if read == 0:
        raise DataError(f"{path} is empty (no data rows)")
    if dropped:
        logger.warning(
            "%s: dropped %d of %d rows violating label_requires %s",
            path,
            dropped,
            read,
            dict(schema.label_requires),
        )


def _select(values: np.ndarray | pa.Array, keep: np.ndarray) -> np.ndarray | pa.Array:
    if isinstance(values, pa.Array):
        return values.filter(pa.array(keep, type=pa.bool_()))
    return values[keep]


def _take(values: np.ndarray | pa.Array, order: np.ndarray) -> np.ndarray | pa.Array:
    if isinstance(values, pa.Array):
        return values.take(pa.array(order))
    return values[order]


def _concat(parts: list[_Columns]) -> _Columns:
    if len(parts) == 1:
        return parts[0]
    merged: _Columns = {}
    for name, first in parts[0].items():
        pieces = [part[name] for part in parts]
        if isinstance(first, pa.Array):
            merged[name] = pa.concat_arrays(pieces)
        else:
            merged[name] = np.concatenate(pieces)
    return merged


def _size(arrays: _Columns) -> int:
    return len(next(iter(arrays.values())))


def _batches(
    chunks: Iterable[_Columns], batch_size: int, drop_remainder: bool
) -> Iterator[_Columns]:
    """Batches of ``batch_size`` rows in order, across chunk and file boundaries."""
    pending: list[_Columns] = []
    pending_rows = 0
    for chunk in chunks:
        pending.append(chunk)
        pending_rows += _size(chunk)
        if pending_rows < batch_size:
            continue
        data = _concat(pending)
        full = pending_rows - pending_rows % batch_size
        for start in range(0, full, batch_size):
            yield {k: v[start : start + batch_size] for k, v in data.items()}
        pending = (
            [{k: v[full:] for k, v in data.items()}] if full < pending_rows else []
        )
        pending_rows -= full
    if pending_rows and not drop_remainder:
        yield _concat(pending)


def _shuffled_batches(
    chunks: Iterable[_Columns],
    batch_size: int,
    drop_remainder: bool,
    buffer_rows: int,
    rng: np.random.Generator,
) -> Iterator[_Columns]:
    """Shuffles windows of about ``buffer_rows`` rows, then batches them.

    Chunks are gathered until the buffer holds ``buffer_rows`` rows; the buffer
    is permuted and emitted as full batches; the rows that do not fill a batch
    stay in the buffer and are shuffled again with the next window.
    """
    pending: list[_Columns] = []
    pending_rows = 0

    def emit(final: bool) -> Iterator[_Columns]:
        nonlocal pending, pending_rows
        data = _concat(pending)
        order = rng.permutation(pending_rows)
        data = {k: _take(v, order) for k, v in data.items()}
        full = pending_rows - pending_rows % batch_size
        for start in range(0, full, batch_size):
            yield {k: v[start : start + batch_size] for k, v in data.items()}
        rest = pending_rows - full
        if final:
            if rest and not drop_remainder:
                yield {k: v[full:] for k, v in data.items()}
            pending, pending_rows = [], 0
        else:
            pending = [{k: v[full:] for k, v in data.items()}] if rest else []
            pending_rows = rest

    for chunk in chunks:
        pending.append(chunk)
        pending_rows += _size(chunk)
        if pending_rows >= buffer_rows and pending_rows >= batch_size:
            yield from emit(final=False)
    if pending_rows:
        yield from emit(final=True)
