"""``datasets(prepared, config) -> Datasets``: the train, eval and selection data."""

import dataclasses
import functools
import math
from collections.abc import Callable

import tensorflow as tf

from mtrec.data.encoded_shards import encode_prepared
from mtrec.data.native import native_dataset
from mtrec.data.prepare import PreparedData
from mtrec.data.prepare import prepare_data
from mtrec.features.id_encoding import IdEncoder
from mtrec.features.id_encoding import row_ids_key
from mtrec.training.config import RunConfig
from mtrec.training.config import prepared_directory
from mtrec.training.prepared import FileSource
from mtrec.training.prepared import MemorySource
from mtrec.training.prepared import Prepared
from mtrec.training.prepared import prepare_files
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
      train_from: ``(epochs_done, batches_done=0) -> dataset`` of the
        training batches of the epochs after ``epochs_done``, from batch
        ``batches_done`` of the first (resuming); ``None``: ``train`` is
        iterated once per epoch.
      train_shard: ``(input_context, epochs_done) -> dataset``: one input
        pipeline's share of the training rows (multi-process training), in
        batches of ``input_context.get_per_replica_batch_size(batch_size)``,
        repeated without end; across the ``num_input_pipelines`` pipelines
        every row is read once per data pass.
    """

    train: tf.data.Dataset
    eval: tf.data.Dataset
    selection: tf.data.Dataset | None
    train_rows: int
    train_from: Callable[..., tf.data.Dataset] | None = None
    train_shard: Callable[[tf.distribute.InputContext, int], tf.data.Dataset] | None = (
        None
    )


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
    """Datasets of the click-log files, on the native input path.

    The rows come from the prepared TFRecord shards (:func:`prepare_files`,
    run here when ``prepare`` has not) through graph-only ``tf.data``
    (:func:`mtrec.data.native_dataset`): no Python generator, parallel reads.
    Eval and selection rows are read in file order.

    With ``train.encode_ids`` the training rows come from the train shards
    with their categorical values encoded once (:func:`encoded_train_part`);
    eval and selection rows stay raw, as served.

    The training order is a function of ``(seed, pass)`` only: data pass ``p``
    is shuffled with the seeds of epoch ``p``, so a run resumed after epoch
    ``e`` (:attr:`Datasets.train_from`) sees exactly the batches the
    uninterrupted run would have seen. With ``train.steps_per_epoch`` shorter
    than a pass, the epochs walk on through the passes.
    """
    source = prepared.source
    if not isinstance(source, FileSource):
        raise TypeError(
            "file_datasets needs a Prepared with a FileSource. Received: "
            f"{type(source).__name__}"
        )
    files = source.prepared or prepare_files(config, prepared.schema)
    train_rows = prepared.train_rows or files.train[0].part(files.train[1]).rows
    train_part = files.train
    if config.train.encode_ids:
        train_part = encoded_train_part(prepared, files.train)

    def unshuffled(data_part: tuple[PreparedData, str]) -> tf.data.Dataset:
        data, part = data_part
        return native_dataset(
            data, config.train.eval_batch_size, part=part, shuffle=False
        )

    def train_from(epochs_done: int, batches_done: int = 0) -> tf.data.Dataset:
        return _train_passes(
            train_part, config, train_rows, epochs_done, None, batches_done
        )

    def train_shard(context: tf.distribute.InputContext, epochs_done: int):
        return _train_passes(
            train_part, config, train_rows, epochs_done, context
        ).repeat()

    held_out = unshuffled(files.eval)
    selection = None
    if config.train.selection.metric is not None:
        selection = unshuffled(files.validation) if files.validation else held_out
    return Datasets(
        train=train_from(0),
        eval=held_out,
        selection=selection,
        train_rows=train_rows,
        train_from=train_from,
        train_shard=train_shard,
    )


def encoded_train_part(
    prepared: Prepared, data_part: tuple[PreparedData, str]
) -> tuple[PreparedData, str]:
    """The train part with its categorical values encoded to table rows, once.

    Each single-valued categorical feature with a vocabulary or hash lookup
    (``mtrec.features.IdEncoder``) is stored as its table rows under
    ``<name>__row_ids``, which the model embeds without a lookup. The shards
    hold the same rows in the same order as the raw part
    (:func:`mtrec.data.encode_prepared`), so training sees the same batches;
    they are cached beside the raw shards, keyed by the vocabularies.
    """
    encoder = IdEncoder(prepared.feature_set, prepared.vocabulary_files)
    if not encoder.names:
        return data_part
    data, part = data_part
    renamed = {name: row_ids_key(name) for name in encoder.names}
    return encode_prepared(data, encoder, renamed, encoder.fingerprint, [part]), part


def encoded_columns(prepared: Prepared, columns: Columns) -> Columns:
    """In-memory ``columns`` with the categorical values encoded to table rows
    (as :func:`encoded_train_part` stores them), once."""
    encoder = IdEncoder(prepared.feature_set, prepared.vocabulary_files)
    if not encoder.names:
        return columns
    encoded = encoder(
        {
            name: tf.constant(values) if name in encoder.names else values
            for name, values in columns.items()
        }
    )
    return {
        name: values.numpy() if isinstance(values, tf.Tensor) else values
        for name, values in encoded.items()
    }


def _train_passes(
    data_part: tuple[PreparedData, str],
    config: RunConfig,
    train_rows: int,
    epochs_done: int,
    input_context: tf.distribute.InputContext | None = None,
    batches_done: int = 0,
) -> tf.data.Dataset:
    """The training batches of epochs ``epochs_done..train.epochs``, in order,
    from batch ``batches_done`` of the first.

    Epoch ``e`` is batches ``e * steps .. (e + 1) * steps`` of the stream of
    data passes (``steps`` = ``train.steps_per_epoch`` or one pass), pass ``p``
    shuffled as ``native_dataset(..., epoch=p)``. With an ``input_context``,
    that pipeline's share of every pass in per-replica batches (a pipeline of
    ``n`` holds about ``1/n`` of the rows in batches ``1/replicas`` as large,
    so the step counts stay those of one process).
    """
    data, part = data_part
    tc, shuffle = config.train, config.data.shuffle
    batch_size = tc.batch_size
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(tc.batch_size)
    per_pass = max(1, math.ceil(train_rows / tc.batch_size))
    steps = tc.steps_per_epoch or per_pass
    last = max(epochs_done + 1, tc.epochs) * steps
    first = epochs_done * steps + batches_done
    passes = []
    for index in range(first // per_pass, math.ceil(last / per_pass)):
        passes.append(
            native_dataset(
                data,
                batch_size,
                part=part,
                shuffle=shuffle,
                seed=config.seed if shuffle else None,
                shuffle_buffer_rows=config.data.shuffle_buffer_rows,
                input_context=input_context,
                epoch=index,
                start_batch=first % per_pass if not passes else 0,
            )
        )
    batches = functools.reduce(tf.data.Dataset.concatenate, passes).take(last - first)
    if input_context is not None:
        return batches
    # Known to Keras, so that fit can run several batches per graph call
    # (mtrec.models.multi_step); a pass shorter than planned is an error here,
    # not a silently short epoch.
    return batches.apply(tf.data.experimental.assert_cardinality(last - first))


def memory_datasets(prepared: Prepared, config: RunConfig) -> Datasets:
    """Datasets of in-memory rows (:func:`memory_batches`).

    Train rows are shuffled over the whole table with ``config.seed`` (a new
    order every epoch) unless ``data.shuffle`` is off, then batched. With
    ``train.encode_ids`` their categorical values are encoded to table rows
    first (:func:`encoded_columns`).
    """
    source = prepared.source
    if not isinstance(source, MemorySource):
        raise TypeError(
            "memory_datasets needs a Prepared with a MemorySource. Received: "
            f"{type(source).__name__}"
        )
    seed = config.seed if config.data.shuffle else None
    train_columns = source.train
    if config.train.encode_ids:
        train_columns = encoded_columns(prepared, source.train)
    train = memory_batches(train_columns, config.train.batch_size, seed=seed)
    held_out = memory_batches(source.eval, config.train.eval_batch_size)

    def train_shard(context: tf.distribute.InputContext, epochs_done: int):
        del epochs_done  # in-memory runs start afresh (they cannot resume)
        batch_size = context.get_per_replica_batch_size(config.train.batch_size)
        return memory_batches(
            train_columns, batch_size, seed=seed, input_context=context
        ).repeat()

    return Datasets(
        train=train,
        eval=held_out,
        selection=_selection(prepared, config, held_out, source.selection),
        train_rows=prepared.train_rows,
        train_shard=train_shard,
    )


def memory_batches(
    columns: Columns,
    batch_size: int,
    seed: int | None = None,
    input_context: tf.distribute.InputContext | None = None,
) -> tf.data.Dataset:
    """Batches of in-memory columns, shuffled over the whole table with ``seed``.

    Each pass draws one permutation of the row indices as a single tensor op
    (``stateless_shuffle`` seeded by ``tf.data.Dataset.random(seed,
    rerandomize_each_iteration=True)``: a new order every pass, the same
    orders for the same ``seed``), cuts it into batches of ``batch_size``
    rows (the last one may be smaller), and each batch gathers its rows from
    every column at once. No tf.data work runs per row: shuffling indices
    row by row cost as much as the gathers in ``benchmarks/input_path.py``,
    and slicing every column into rows three times that.

    Args:
      columns: ``{name: 1-D array}`` of equal lengths.
      batch_size: rows per batch (the last one may be smaller).
      seed: shuffle seed; ``None`` keeps the rows in order.
      input_context: only this input pipeline's rows (every
        ``num_input_pipelines``-th row from ``input_pipeline_id``).
    """
    tensors = {name: tf.constant(values) for name, values in columns.items()}
    rows = int(next(iter(tensors.values())).shape[0]) if tensors else 0
    first, step = 0, 1
    if input_context is not None and input_context.num_input_pipelines > 1:
        first, step = input_context.input_pipeline_id, input_context.num_input_pipelines
    index = tf.range(first, rows, step, dtype=tf.int64)
    count = len(range(first, rows, step))
    lengths = [batch_size] * (count // batch_size)
    lengths += [count % batch_size] if count % batch_size else []

    def cut(order):
        order = tf.RaggedTensor.from_row_lengths(order, tf.constant(lengths, tf.int64))
        return tf.data.Dataset.from_tensor_slices(order)

    if seed is None:
        plan = cut(index)
    else:
        draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        plan = draws.take(1).flat_map(
            lambda draw: cut(
                tf.random.experimental.stateless_shuffle(
                    index, seed=tf.stack([draw, tf.constant(seed, tf.int64)])
                )
            )
        )

    def gather(rows_of_batch):
        return {name: tf.gather(t, rows_of_batch) for name, t in tensors.items()}

    # Known to Keras (``flat_map`` hides it): with an unknown cardinality
    # ``fit`` counts one optimizer step too many per epoch.
    plan = plan.apply(tf.data.experimental.assert_cardinality(len(lengths)))
    return plan.map(
        gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    ).prefetch(tf.data.AUTOTUNE)


def _selection(
    prepared: Prepared,
    config: RunConfig,
    held_out: tf.data.Dataset,
    rows: Columns | None,
) -> tf.data.Dataset | None:
    """``data.validation`` files (prepared), else the held-out validation
    ``rows``; None without selection."""
    if config.train.selection.metric is None:
        return None
    if not config.data.validation:
        if rows is None:
            return held_out
        return memory_batches(rows, config.train.eval_batch_size)
    data = prepare_data(
        config.data.validation,
        prepared.schema,
        prepared_directory(config),
        file_format=config.data.format,
        chunk_rows=config.data.chunk_rows,
        rows_per_shard=config.data.rows_per_shard,
    )
    return native_dataset(data, config.train.eval_batch_size, shuffle=False)
