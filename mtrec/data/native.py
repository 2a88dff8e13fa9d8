"""The native input path: prepared TFRecord shards through graph-only tf.data.

:func:`native_dataset` reads the shards :func:`~mtrec.data.prepare.prepare_data`
wrote, with nothing but tf.data ops (no ``from_generator``, no
``py_function``)::

    shard paths -> [shard per input pipeline] -> [shuffle shards]
      -> interleave TFRecordDataset (parallel, deterministic)
      -> batch Examples (a window of rows when shuffling)
      -> tf.io.parse_example, [permute the window's rows] (vectorised, parallel)
      -> rebatch -> [skip start_batch] -> prefetch

and yields the same ``{column: (batch,)}`` dicts, dtypes and values as
:func:`mtrec.data.reader.make_dataset`: unshuffled, in the same order. Every
step after the read works on whole tensors (each Example holds a block of
rows, parsed with ``tf.io.RaggedFeature`` into the rows in order), so no step
pays a per-row cost.

The shuffle is the reader's: the shard order is permuted, the interleave mixes
Examples of ``CYCLE_LENGTH`` shards, and windows of ``shuffle_buffer_rows //
rows_per_example`` Examples (about ``shuffle_buffer_rows`` rows) are parsed
together and their rows permuted as a whole
(``tf.random.experimental.stateless_shuffle``), the rows that do not fill a
batch carried into the next window's first batch. A window is parsed by one
``parse_example`` call and permuted in place, never concatenated from smaller
parses: each row is copied once between the parse and its batch (a string
costs several times a number at every copy).

**Determinism and resuming.** The order of an epoch is a function of the
prepared data, ``seed``, ``epoch``, ``batch_size`` and the input context only:
the shard order (a numpy permutation) and the window permutations
(``tf.random.experimental.stateless_shuffle``) use seeds derived from ``(seed,
epoch)`` with ``numpy.random.SeedSequence``, the interleave is deterministic
with a fixed cycle length, and nothing reshuffles on re-iteration; TensorFlow's
global seed plays no part. Build one dataset per epoch. To resume an interrupted epoch,
build it with ``start_batch=k``: it yields exactly batches ``k, k+1, ...`` of
the uninterrupted epoch (the skipped rows are read, parsed and permuted again,
about 1 s per million rows on one core, but not given to the model). A
``tf.train.Checkpoint(iterator=iter(dataset))`` also restores the position,
but stores the current window (up to ``shuffle_buffer_rows`` parsed rows) in
every checkpoint; ``(epoch, start_batch)`` is two integers.

Example:

>>> import pathlib, tempfile
>>> from mtrec.data import ColumnSchema, prepare_data
>>> logs = pathlib.Path(tempfile.mkdtemp())
>>> _ = (logs / "day1.csv").write_text("user_id,click\\nu1,0\\nu2,1\\nu3,0\\n")
>>> schema = ColumnSchema(string_columns=("user_id",), label_columns=("click",))
>>> prepared = prepare_data(logs, schema, logs / "cache")
>>> batch = next(iter(native_dataset(prepared, 2, shuffle=False)))
>>> batch["user_id"].numpy().tolist(), batch["click"].numpy().tolist()
([b'u1', b'u2'], [0.0, 1.0])
"""

import numpy as np
import tensorflow as tf

from mtrec.checks import check_int
from mtrec.data.prepare import PreparedData

#: Shards read at once by the interleave (fewer if a pipeline has fewer). Fixed,
#: not autotuned: the row order depends on it.
CYCLE_LENGTH = 4
#: Rows parsed at once: ``PARSE_ROWS // rows_per_example`` Examples (at least 1).
PARSE_ROWS = 8192
#: Read-ahead buffer of each TFRecord reader, in bytes.
READ_BUFFER_BYTES = 1 << 20


def parse_spec(prepared: PreparedData) -> dict[str, tf.io.RaggedFeature]:
    """How each column is parsed from the prepared ``tf.train.Example`` protos.

    Each Example lists a block of rows per column; parsing a batch of Examples
    with these features gives ragged ``(examples, rows)`` tensors whose
    ``flat_values`` are the rows in order. Every Example holds every column
    (missing cells were filled when it was prepared), so all columns have the
    same rows.
    """
    return {
        name: tf.io.RaggedFeature(spec.dtype, row_splits_dtype=tf.int64)
        for name, spec in prepared.output_signature.items()
    }


def parse_rows(
    prepared: PreparedData,
    serialized: tf.Tensor,
    shuffle_seed: tf.Tensor | None = None,
) -> dict[str, tf.Tensor]:
    """The rows of a batch of prepared Examples, ``{column: (rows,)}``.

    Args:
      prepared: what the Examples were prepared as.
      serialized: ``(examples,)`` serialized ``tf.train.Example`` protos.
      shuffle_seed: ``(2,)`` int64: return the rows in the order of
        ``tf.random.experimental.stateless_shuffle`` with this seed; None keeps
        the stored order.

    Returns:
      Every column of ``prepared.output_signature``.

    Example:

    >>> import pathlib, tempfile
    >>> from mtrec.data import ColumnSchema, prepare_data
    >>> logs = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (logs / "a.csv").write_text("user_id,click\\nu1,0\\nu2,1\\nu3,0\\n")
    >>> schema = ColumnSchema(string_columns=("user_id",), label_columns=("click",))
    >>> prepared = prepare_data(logs, schema, logs / "cache", rows_per_example=2)
    >>> examples = next(iter(tf.data.TFRecordDataset(prepared.part().shards).batch(2)))
    >>> parse_rows(prepared, examples)["click"].numpy().tolist()
    [0.0, 1.0, 0.0]
    >>> shuffled = parse_rows(prepared, examples, tf.constant([1, 2], tf.int64))
    >>> sorted(shuffled["user_id"].numpy().tolist())
    [b'u1', b'u2', b'u3']
    """
    parsed = tf.io.parse_example(serialized, parse_spec(prepared))
    columns = {name: parsed[name].flat_values for name in prepared.output_signature}
    if shuffle_seed is None:
        return columns
    size = tf.shape(next(iter(columns.values())), out_type=tf.int64)[0]
    order = tf.random.experimental.stateless_shuffle(tf.range(size), seed=shuffle_seed)
    return {name: tf.gather(values, order) for name, values in columns.items()}


def epoch_seeds(seed: int, epoch: int) -> tuple[int, int]:
    """The (shard order, row shuffle) seeds of an epoch, in ``[0, 2**63)``."""
    words = np.random.SeedSequence([seed % 2**64, epoch]).generate_state(2, np.uint64)
    return int(words[0] >> np.uint64(1)), int(words[1] >> np.uint64(1))


def native_dataset(
    prepared: PreparedData,
    batch_size: int,
    *,
    part: str | None = None,
    shuffle: bool,
    seed: int | None = None,
    shuffle_buffer_rows: int = 262_144,
    input_context: tf.distribute.InputContext | None = None,
    epoch: int = 0,
    start_batch: int = 0,
    drop_remainder: bool = False,
    num_parallel_reads: int = tf.data.AUTOTUNE,
) -> tf.data.Dataset:
    """One epoch of a prepared part as batches of ``{column: tensor (batch,)}``.

    Args:
      prepared: the output of :func:`~mtrec.data.prepare.prepare_data`.
      batch_size: rows per batch of this input pipeline (with an
        ``input_context``, the per-replica size, e.g.
        ``input_context.get_per_replica_batch_size(global_batch_size)``).
      part: ``"train"`` or ``"eval"`` (prepared with a split) or ``"all"``;
        None means the only part.
      shuffle: shuffle the shard order and the rows (windows of about
        ``shuffle_buffer_rows`` rows permuted as a whole); False keeps the file
        and row order exactly.
      seed: the shuffle seed; required with ``shuffle=True``.
      shuffle_buffer_rows: rows shuffled together: windows of
        ``max(1, shuffle_buffer_rows // rows_per_example)`` whole Examples.
      input_context: read only this pipeline's share: whole shards when
        there are at least as many shards as pipelines (the epoch's shard
        order, permuted with ``seed`` when shuffling, dealt round-robin), else
        every ``num_input_pipelines``-th Example (block of rows), rotated by
        the epoch. Across the pipelines every row is read exactly once per
        epoch, and a pipeline's share changes from epoch to epoch (so a
        worker that runs ahead under ``parameter_server`` reads fresh rows,
        not its own share again).
      epoch: which epoch's order to produce (0-based).
      start_batch: skip the first ``start_batch`` batches of the epoch.
      drop_remainder: drop the last, smaller batch; batches then have the
        static shape ``(batch_size,)``.
      num_parallel_reads: shards read in parallel (threads); does not change
        the order.

    Returns:
      A prefetched dataset with the element spec of
      ``prepared.output_signature`` (shape ``(batch_size,)`` with
      ``drop_remainder``).

    Raises:
      ValueError: an invalid argument.
    """
    check_int("batch_size", batch_size, 1)
    check_int("shuffle_buffer_rows", shuffle_buffer_rows, 1)
    check_int("epoch", epoch, 0)
    check_int("start_batch", start_batch, 0)
    seed_is_int = isinstance(seed, int) and not isinstance(seed, bool)
    if shuffle and not seed_is_int:
        raise ValueError(
            f"`seed` must be an int when `shuffle=True`. Received: `seed={seed!r}`"
        )
    selected = prepared.part(part)
    files = [str(path) for path in selected.shards]
    pipelines, pipeline = 1, 0
    if input_context is not None:
        pipelines = input_context.num_input_pipelines
        pipeline = input_context.input_pipeline_id
    shard_seed = window_seed = None
    if shuffle:
        shard_seed, window_seed = epoch_seeds(seed, epoch)
    examples = _pipeline_examples(
        files,
        pipelines,
        pipeline,
        epoch=epoch,
        shard_seed=shard_seed,
        num_parallel_reads=num_parallel_reads,
    )
    rows = _parsed_rows(examples, prepared, shuffle_buffer_rows, window_seed)
    batches = rows.rebatch(batch_size, drop_remainder=drop_remainder)
    if start_batch:
        batches = batches.skip(start_batch)
    return batches.prefetch(tf.data.AUTOTUNE)


def _pipeline_examples(
    files: list[str],
    pipelines: int,
    pipeline: int,
    *,
    epoch: int,
    shard_seed: int | None,
    num_parallel_reads: int,
) -> tf.data.Dataset:
    """Pipeline ``pipeline``'s share of the serialized Examples of ``files``.

    With ``shard_seed`` the shard order is permuted with it and ``CYCLE_LENGTH``
    shards are interleaved; None reads the shards in order, one after another.
    The share is whole shards (dealt round-robin) when there are at least as
    many shards as pipelines, else every ``pipelines``-th Example, rotated by
    ``epoch``.
    """
    by_shard = len(files) >= pipelines
    if shard_seed is not None:
        # Every pipeline draws the same permutation of the epoch, then takes
        # its share of it: the shards a pipeline reads change every epoch.
        order = np.random.default_rng(shard_seed).permutation(len(files))
        files = [files[i] for i in order]
    if by_shard:
        files = files[pipeline::pipelines]
    paths = tf.data.Dataset.from_tensor_slices(tf.constant(files, dtype=tf.string))
    if shard_seed is not None:
        examples = paths.interleave(
            _read_shard,
            cycle_length=max(1, min(len(files), CYCLE_LENGTH)),
            num_parallel_calls=num_parallel_reads,
            deterministic=True,
        )
    else:
        examples = paths.flat_map(_read_shard)
    if pipelines > 1 and not by_shard:
        # The Examples a pipeline reads rotate with the epoch too.
        examples = examples.shard(pipelines, (pipeline + epoch) % pipelines)
    return examples


def _parsed_rows(
    examples: tf.data.Dataset,
    prepared: PreparedData,
    shuffle_buffer_rows: int,
    window_seed: int | None,
) -> tf.data.Dataset:
    """Examples parsed into ``{column: (rows,)}`` blocks of rows, in parallel.

    With ``window_seed`` each window of about ``shuffle_buffer_rows`` rows is
    parsed at once and its rows permuted (seeded by ``window_seed`` and the
    window's index); None parses about ``PARSE_ROWS`` rows at a time, in order.
    """
    if window_seed is not None:
        # A window is parsed at once: its rows are permuted before any string
        # is built, and are never concatenated from smaller parses.
        window = max(1, shuffle_buffer_rows // prepared.rows_per_example)

        def parse(index: tf.Tensor, serialized: tf.Tensor) -> dict[str, tf.Tensor]:
            seed = tf.stack([tf.constant(window_seed, tf.int64), index])
            return parse_rows(prepared, serialized, seed)

        rows = examples.batch(window).enumerate()
    else:

        def parse(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
            return parse_rows(prepared, serialized)

        rows = examples.batch(max(1, PARSE_ROWS // prepared.rows_per_example))
    # Plain Python (no branch on a tensor): AutoGraph's rewrite of the
    # parse code took 0.1-0.6 s per pipeline built.
    return rows.map(
        tf.autograph.experimental.do_not_convert(parse),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )


def _read_shard(path: tf.Tensor) -> tf.data.Dataset:
    return tf.data.TFRecordDataset(path, buffer_size=READ_BUFFER_BYTES)
