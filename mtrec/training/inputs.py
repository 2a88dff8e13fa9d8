"""``datasets(prepared, config) -> Datasets``: the train, eval and selection data."""

import dataclasses
import math

import tensorflow as tf

from mtrec.data.reader import make_dataset
from mtrec.training.config import RunConfig
from mtrec.training.prepared import FileSource
from mtrec.training.prepared import MemorySource
from mtrec.training.prepared import Prepared
from mtrec.training.tables import Columns


@dataclasses.dataclass(frozen=True)
class Datasets:
    """The batches a run trains, evaluates and selects on.

    Attributes:
      train: shuffled (``data.shuffle``) batches of ``train.batch_size``.
      eval: the held-out rows in order, batches of ``train.eval_batch_size``.
      selection: the rows the per-epoch selection scores (``data.validation``
        files, else ``eval``); ``None`` without ``train.selection``.
      train_rows: rows of one training epoch.
    """

    train: tf.data.Dataset
    eval: tf.data.Dataset
    selection: tf.data.Dataset | None
    train_rows: int


def datasets(prepared: Prepared, config: RunConfig | None = None) -> Datasets:
    """The datasets of a prepared run, from its files or its in-memory rows.

    Every batch is a flat ``{column: (batch,)}`` dict (features, labels,
    oracle and group columns), the same for both sources.

    Args:
      prepared: from :func:`mtrec.training.prepare`.
      config: the run's config; default ``prepared.config``.
    """
    config = prepared.config if config is None else config
    if isinstance(prepared.source, MemorySource):
        return memory_datasets(prepared, config)
    return file_datasets(prepared, config)


def file_datasets(prepared: Prepared, config: RunConfig) -> Datasets:
    """Datasets streamed from the click-log files (``mtrec.data.make_dataset``).

    The one place the training loop reads files: train with the config's batch
    size, seeded shuffle and shuffle buffer; eval and selection in file order.

    The train dataset declares its length (``ceil(train_rows / batch_size)``
    batches, checked while it streams): tf-keras counts one optimiser step too
    many per epoch on a dataset of unknown length (the call that finds the end
    of the data advances ``optimizer.iterations``), which shifts Adam's bias
    correction and the cosine schedule against the same rows from memory.
    """
    source = prepared.source
    if not isinstance(source, FileSource):
        raise TypeError(
            "file_datasets needs a Prepared with a FileSource. Received: "
            f"{type(source).__name__}"
        )
    data = config.data
    common = dict(chunk_rows=data.chunk_rows, file_format=data.format)
    train = make_dataset(
        source.train,
        prepared.schema,
        batch_size=config.train.batch_size,
        shuffle=data.shuffle,
        seed=config.seed if data.shuffle else None,
        shuffle_buffer_rows=data.shuffle_buffer_rows,
        split=source.train_split,
        **common,
    )
    if prepared.train_rows:
        batches = math.ceil(prepared.train_rows / config.train.batch_size)
        train = train.apply(tf.data.experimental.assert_cardinality(batches))
    held_out = make_dataset(
        source.eval,
        prepared.schema,
        batch_size=config.train.eval_batch_size,
        shuffle=False,
        split=source.eval_split,
        **common,
    )
    return Datasets(
        train=train,
        eval=held_out,
        selection=_selection(prepared, config, held_out),
        train_rows=prepared.train_rows,
    )


def memory_datasets(prepared: Prepared, config: RunConfig) -> Datasets:
    """Datasets of in-memory rows (``tf.data.Dataset.from_tensor_slices``).

    Train rows are shuffled over the whole table with ``config.seed`` (a new
    order every epoch) unless ``data.shuffle`` is off, then batched.
    """
    source = prepared.source
    if not isinstance(source, MemorySource):
        raise TypeError(
            "memory_datasets needs a Prepared with a MemorySource. Received: "
            f"{type(source).__name__}"
        )
    train = _slices(source.train)
    if config.data.shuffle:
        train = train.shuffle(
            prepared.train_rows, seed=config.seed, reshuffle_each_iteration=True
        )
    train = train.batch(config.train.batch_size).prefetch(tf.data.AUTOTUNE)
    held_out = (
        _slices(source.eval)
        .batch(config.train.eval_batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    return Datasets(
        train=train,
        eval=held_out,
        selection=_selection(prepared, config, held_out),
        train_rows=prepared.train_rows,
    )


def _slices(columns: Columns) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices(dict(columns))


def _selection(
    prepared: Prepared, config: RunConfig, held_out: tf.data.Dataset
) -> tf.data.Dataset | None:
    if config.train.selection.metric is None:
        return None
    if not config.data.validation:
        return held_out
    return make_dataset(
        config.data.validation,
        prepared.schema,
        batch_size=config.train.eval_batch_size,
        shuffle=False,
        chunk_rows=config.data.chunk_rows,
        file_format=config.data.format,
    )
