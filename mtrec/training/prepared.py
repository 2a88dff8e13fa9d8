"""``prepare(config) -> Prepared``: validated config, features, fitted preprocessing."""

import dataclasses
import logging
import os
import pathlib
import tempfile
from collections.abc import Iterator

import numpy as np

from mtrec.data.prepare import PreparedData
from mtrec.data.prepare import prepare_data
from mtrec.data.reader import ColumnSchema
from mtrec.data.reader import ReadStats
from mtrec.data.reader import Split
from mtrec.data.reader import iter_chunks
from mtrec.data.schema import DataError
from mtrec.features.feature_set import FeatureSet
from mtrec.features.preprocessing import PreprocessingState
from mtrec.features.preprocessing import fit_preprocessing
from mtrec.metrics.ranking import missing_class
from mtrec.models.task import Task
from mtrec.training.builders import build_feature_set
from mtrec.training.builders import build_tasks
from mtrec.training.builders import column_schema
from mtrec.training.config import ConfigError
from mtrec.training.config import RunConfig
from mtrec.training.config import prepared_directory
from mtrec.training.config import validate_config
from mtrec.training.tables import Columns
from mtrec.training.tables import Table
from mtrec.training.tables import read_table

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class FileSource:
    """Rows read from click-log files as the config names them.

    Attributes:
      train: ``data.train``.
      train_split: the train part of the hash split (``None``: every row).
      eval: the held-out files (``data.eval``, or ``data.train`` when split).
      eval_split: the eval part of the hash split (``None``: every row).
      validation: ``data.validation`` for the per-epoch selection, if any.
      prepared: the validated rows as TFRecord shards
        (:func:`prepare_files`); ``None`` until prepared.
    """

    train: str
    train_split: Split | None
    eval: str
    eval_split: Split | None
    validation: str | None = None
    prepared: "PreparedFiles | None" = None


@dataclasses.dataclass(frozen=True)
class PreparedFiles:
    """The prepared shard sets of a run's files (``mtrec.data.prepare_data``).

    Attributes:
      train: ``(prepared data, part)`` of the train rows.
      eval: ``(prepared data, part)`` of the held-out rows.
      validation: ``(prepared data, part)`` of ``data.validation``, if any.
    """

    train: tuple[PreparedData, str]
    eval: tuple[PreparedData, str]
    validation: tuple[PreparedData, str] | None = None


def prepare_files(
    config: RunConfig, schema: ColumnSchema | None = None
) -> PreparedFiles:
    """Validates the run's files once and writes them as TFRecord shards.

    ``data.train`` with the hash split of ``data.eval_fraction`` (a ``train``
    and an ``eval`` part in one pass) or, with ``data.eval``, each file set
    whole; ``data.validation`` too. Entries are cached in ``data.prepared_dir``
    by content hash, so a second run on the same files reads no raw row.

    Args:
      config: the run's config (``mtrec prepare`` and ``prepare`` call this).
      schema: the columns to read; default the config's features, tasks,
        oracle and group columns.

    Raises:
      ConfigError: a bad config value, naming its key.
      DataError: a bad file or value (file, line or row, column, value).
    """
    if schema is None:
        validate_config(config)
        feature_set = build_feature_set(config)
        schema = column_schema(config, feature_set, build_tasks(config))
    data = config.data
    common = dict(
        file_format=data.format,
        chunk_rows=data.chunk_rows,
        rows_per_shard=data.rows_per_shard,
    )

    def whole(paths: str) -> tuple[PreparedData, str]:
        return prepare_data(paths, schema, prepared_directory(config), **common), "all"

    args = _split_args(config, bool(config.data.eval))
    split = None
    if args is not None:
        split = prepare_data(
            data.train, schema, prepared_directory(config), **args, **common
        )
    train = whole(data.train) if split is None else (split, "train")
    held_out = whole(data.eval) if data.eval else (split, "eval")
    validation = None
    if data.validation:
        validation = whole(data.validation)
    elif held_out_validation(config):
        validation = (split, "validation")
    for key, (prepared, part) in (
        ("data.train", train),
        ("data.eval" if data.eval else "data.eval_fraction", held_out),
        *([("data.validation", validation)] if validation else []),
    ):
        _check_not_empty(key, prepared, part)
    return PreparedFiles(train, held_out, validation)


def _check_not_empty(key: str, prepared: PreparedData, part: str) -> None:
    """A split with no rows cannot train, select or evaluate anything."""
    if prepared.part(part).rows > 0:
        return
    files = ", ".join(str(path) for path in prepared.sources)
    share = "" if part == "all" else f" (the {part} share of the hash split)"
    raise DataError(
        f"'{key}': no rows to use{share}; {prepared.rows_read} data row(s) read "
        f"from {files}. Give more rows, or set the split's files explicitly "
        "(data.eval, data.validation)"
    )


@dataclasses.dataclass(frozen=True)
class MemorySource:
    """Rows given as in-memory tables, validated and converted.

    Attributes:
      train: ``{column: np.ndarray}`` of the train rows.
      eval: the held-out rows.
      validation: ``data.validation`` files for the per-epoch selection, if any.
      selection: rows held out of ``train`` for the per-epoch selection
        (without ``validation`` files), or ``None``.
    """

    train: Columns = dataclasses.field(repr=False)
    eval: Columns = dataclasses.field(repr=False)
    validation: str | None = None
    selection: Columns | None = dataclasses.field(default=None, repr=False)


@dataclasses.dataclass(frozen=True)
class Prepared:
    """Everything the model and the datasets are built from.

    Attributes:
      config: the config, with the features inline (what the run directory
        saves).
      feature_set: the features.
      tasks: the tasks.
      schema: the reader's column contract (features, labels, oracle and
        group columns).
      preprocessing: vocabularies and dense statistics fitted on the train rows.
      vocabulary_files: ``{table: vocabulary file}`` written by ``prepare``.
      train_rows: train rows (one epoch).
      train_rows_dropped: train rows dropped for ``label_requires`` violations.
      source: where the rows come from (:class:`FileSource` or
        :class:`MemorySource`).
    """

    config: RunConfig
    feature_set: FeatureSet
    tasks: tuple[Task, ...]
    schema: ColumnSchema
    preprocessing: PreprocessingState
    vocabulary_files: dict[str, str]
    train_rows: int
    train_rows_dropped: int
    source: FileSource | MemorySource


def held_out_validation(config: RunConfig) -> bool:
    """Whether selection scores rows held out of ``data.train`` (no files)."""
    return config.train.selection.metric is not None and not config.data.validation


def _split_args(config: RunConfig, separate_eval: bool) -> dict | None:
    """``Split`` arguments of ``data.train`` (``None``: every row is train).

    Without ``data.eval``, ``eval_fraction`` is held out, and with
    :func:`held_out_validation` ``validation_fraction`` of it is the
    validation part; with ``data.eval``, only the validation part is held out.
    """
    data, seed = config.data, config.seed
    validation = data.validation_fraction if held_out_validation(config) else 0.0
    if not separate_eval:
        return dict(
            eval_fraction=data.eval_fraction, seed=seed, validation_fraction=validation
        )
    if validation:
        return dict(eval_fraction=validation, seed=seed, validation_fraction=validation)
    return None


def file_source(config: RunConfig) -> FileSource:
    """The files and hash splits ``config.data`` describes."""
    data = config.data
    args = _split_args(config, bool(config.data.eval))
    train_split = None if args is None else Split("train", **args)
    if data.eval:
        return FileSource(data.train, train_split, data.eval, None, data.validation)
    return FileSource(
        data.train, train_split, data.train, Split("eval", **args), data.validation
    )


def prepare(
    config: RunConfig,
    train: Table | None = None,
    eval: Table | None = None,  # noqa: A002  (the config's name for the split)
    *,
    preprocessing_dir: str | os.PathLike | None = None,
) -> Prepared:
    """Validates a config, builds features and tasks, fits the preprocessing.

    With files (``train`` not given), the prepare pass (:func:`prepare_files`)
    first validates every row of every file and writes them as TFRecord
    shards (cached by content), then one streaming pass over the train split
    of ``config.data.train`` fits the vocabularies and dense statistics. With
    in-memory rows (a pandas DataFrame, a dict of 1-D numpy arrays or a pyarrow
    Table), ``train`` and ``eval`` are validated and converted by the same
    reader as files (:mod:`mtrec.training.tables`), so a bad value is reported
    by table, row and column; without ``eval``, ``data.eval_fraction`` of
    ``train`` is held out by the same hash split a single file gets.

    Args:
      config: the run's config.
      train: in-memory train rows; ``None`` reads ``config.data.train``.
      eval: in-memory held-out rows (only with ``train``).
      preprocessing_dir: where the vocabulary files and dense statistics are
        written (the model's lookup tables read them); default a new
        temporary directory.

    Returns:
      The :class:`Prepared` run.

    Raises:
      ConfigError: a bad config value, naming the key.
      DataError: a bad file or value, naming file or table, line or row, column.

    Example:

    >>> import numpy as np
    >>> from mtrec.training import load_config, prepare
    >>> config = load_config({
    ...     "features": [{"name": "city", "kind": "categorical",
    ...                   "embedding_dim": 2}],
    ...     "tasks": [{"name": "ctr", "label": "click"}],
    ...     "model": {"architecture": "multi_task"},
    ... }, in_memory=True)
    >>> rows = {"city": np.array(["a", "b", "a", "c"] * 50),
    ...         "click": np.array([0, 1, 1, 0] * 50)}
    >>> prepared = prepare(config, train=rows)
    >>> sorted(prepared.preprocessing.vocabularies["city"]), prepared.train_rows > 0
    (['a', 'b', 'c'], True)
    """
    if eval is not None and train is None:
        raise ValueError("`eval` rows need `train` rows; got `eval` alone")
    in_memory = train is not None
    feature_set, tasks, schema = _checked_parts(config, in_memory=in_memory)
    config = dataclasses.replace(config, features=feature_set.to_dicts())
    if preprocessing_dir is None:
        preprocessing_dir = tempfile.mkdtemp(prefix="mtrec-preprocessing-")
    stats = ReadStats()
    if in_memory:
        source, chunks = _memory_train_chunks(config, schema, train, eval, stats)
    else:
        source, chunks = _file_train_chunks(config, schema, stats)
    state = _fit_on_train(config, feature_set, tasks, chunks)
    vocabulary_files = state.save(pathlib.Path(preprocessing_dir))
    return Prepared(
        config=config,
        feature_set=feature_set,
        tasks=tasks,
        schema=schema,
        preprocessing=state,
        vocabulary_files=vocabulary_files,
        train_rows=stats.rows_yielded,
        train_rows_dropped=stats.rows_dropped,
        source=source,
    )


def _memory_train_chunks(
    config: RunConfig,
    schema: ColumnSchema,
    train: Table,
    eval: Table | None,  # noqa: A002
    stats: ReadStats,
) -> tuple[MemorySource, Iterator[Columns]]:
    """The in-memory source, its eval columns checked, and its train chunks."""
    source = _memory_source(config, schema, train, eval, stats)
    _check_eval_columns(config, set(source.eval), "the eval table")
    return source, _slices(source.train, config.data.chunk_rows)


def _file_train_chunks(
    config: RunConfig, schema: ColumnSchema, stats: ReadStats
) -> tuple[FileSource, Iterator[Columns]]:
    """The prepare pass over the files, the eval columns checked, and a reader
    of the train split (counting into ``stats``)."""
    logger.info("validating and preparing the data files")
    source = dataclasses.replace(
        file_source(config), prepared=prepare_files(config, schema)
    )
    held_out, _ = source.prepared.eval
    _check_eval_columns(
        config,
        set(held_out.output_signature),
        f"the eval rows of {', '.join(str(f) for f in held_out.sources)}",
    )
    chunks = iter_chunks(
        source.train,
        schema,
        chunk_rows=config.data.chunk_rows,
        file_format=config.data.format,
        split=source.train_split,
        stats=stats,
    )
    return source, chunks


def _fit_on_train(
    config: RunConfig,
    feature_set: FeatureSet,
    tasks: tuple[Task, ...],
    chunks: Iterator[Columns],
) -> PreprocessingState:
    """Fits the preprocessing in one pass over ``chunks``, warning of binary
    tasks whose train rows hold one class only."""
    logger.info("fitting vocabularies and statistics on the train split")
    counts: dict[str, list[int]] = {}
    state = fit_preprocessing(
        feature_set, _counting_labels(chunks, tasks, counts), seed=config.seed
    )
    _warn_single_class(tasks, counts)
    return state


def _counting_labels(chunks, tasks, counts: dict[str, list[int]]):
    """Passes ``chunks`` on, counting ``[positives, rows]`` per binary task
    (rows where its condition is 1)."""
    binary = [task for task in tasks if task.kind == "binary"]
    for chunk in chunks:
        for task in binary:
            labels = np.asarray(chunk[task.label], dtype=np.float64)
            if task.condition:
                labels = labels[np.asarray(chunk[task.condition]) > 0.5]
            count = counts.setdefault(task.name, [0, 0])
            count[0] += int((labels > 0.5).sum())
            count[1] += int(labels.size)
        yield chunk


def _warn_single_class(tasks, counts: dict[str, list[int]]) -> None:
    """Logs a warning per binary task whose train rows hold one class only."""
    for task in tasks:
        if task.name not in counts:
            continue
        positives, rows = counts[task.name]
        missing = missing_class(
            task.label, task.condition, rows, positives, rows_name="train rows"
        )
        if missing is not None:
            logger.warning(
                "task %r: %s; it cannot learn to rank (check the label column "
                "and the split)",
                task.name,
                missing,
            )


def _check_eval_columns(config: RunConfig, columns: set, where: str) -> None:
    """``eval.oracle`` and ``eval.gauc_group`` name columns of the eval rows.

    The reader carries such columns when a file has them, so a misspelt one
    would only surface (or silently not) after training; this checks it
    right after the prepare pass.

    Raises:
      ConfigError: naming the key, the column and the columns there are.
    """
    wanted = {
        f"eval.oracle.{output}": col for output, col in config.eval.oracle.items()
    }
    if config.eval.gauc_group:
        wanted["eval.gauc_group"] = config.eval.gauc_group
    for key, column in wanted.items():
        if column not in columns:
            raise ConfigError(
                f"'{key}': column {column!r} is not in {where}. Columns there: "
                f"{sorted(columns)}"
            )


def _memory_source(
    config: RunConfig,
    schema: ColumnSchema,
    train: Table,
    eval: Table | None,  # noqa: A002
    stats: ReadStats,
) -> MemorySource:
    chunk_rows = config.data.chunk_rows
    args = _split_args(config, separate_eval=eval is not None)

    def part(name: str) -> Split | None:
        return None if args is None else Split(name, **args)

    selection = None
    if held_out_validation(config):
        selection = read_table(
            train, schema, "train", split=part("validation"), chunk_rows=chunk_rows
        )
    if eval is None:
        held_out = read_table(
            train, schema, "train", split=part("eval"), chunk_rows=chunk_rows
        )
    else:
        held_out = read_table(eval, schema, "eval", chunk_rows=chunk_rows)
    return MemorySource(
        train=read_table(
            train,
            schema,
            "train",
            split=part("train"),
            stats=stats,
            chunk_rows=chunk_rows,
        ),
        eval=held_out,
        validation=config.data.validation,
        selection=selection,
    )


def _slices(columns: Columns, rows: int) -> Iterator[Columns]:
    """Chunks of ``rows`` rows, as the file reader would yield them."""
    total = len(next(iter(columns.values())))
    for start in range(0, total, rows):
        yield {name: values[start : start + rows] for name, values in columns.items()}


def load_prepared_run(
    config: RunConfig, preprocessing_dir: str | os.PathLike
) -> Prepared:
    """The :class:`Prepared` of an existing run, from its saved preprocessing.

    Reads nothing but ``preprocessing_dir`` (no data pass); the row counts are
    0, the caller keeps them in its ``TrainingState``. A run trained on
    in-memory tables (no ``data.train``) gets an empty :class:`FileSource`.
    """
    feature_set, tasks, schema = _checked_parts(config, in_memory=not config.data.train)
    state = PreprocessingState.load(preprocessing_dir, feature_set)
    return Prepared(
        config=config,
        feature_set=feature_set,
        tasks=tasks,
        schema=schema,
        preprocessing=state,
        vocabulary_files=PreprocessingState.vocabulary_files(preprocessing_dir),
        train_rows=0,
        train_rows_dropped=0,
        source=file_source(config),
    )


def _checked_parts(
    config: RunConfig, *, in_memory: bool
) -> tuple[FeatureSet, tuple[Task, ...], ColumnSchema]:
    """The config validated (before any data is read), then its feature set,
    tasks and the column schema they read."""
    validate_config(config, in_memory=in_memory)
    feature_set = build_feature_set(config)
    tasks = tuple(build_tasks(config))
    return feature_set, tasks, column_schema(config, feature_set, list(tasks))


__all__ = [
    "FileSource",
    "MemorySource",
    "Prepared",
    "PreparedFiles",
    "file_source",
    "load_prepared_run",
    "prepare",
    "prepare_files",
]
