"""Tests of the graph-only native input path against today's reader."""

import mtrec  # noqa: F401  (the Keras switch, before TensorFlow)

# isort: split
import collections

import pytest
import tensorflow as tf
from native_helpers import DROP_SCHEMA
from native_helpers import SCHEMA
from native_helpers import assert_same_batches
from native_helpers import rows_of
from native_helpers import two_logs

from mtrec.data.native import epoch_seeds
from mtrec.data.native import native_dataset
from mtrec.data.prepare import prepare_data
from mtrec.data.reader import Split
from mtrec.data.reader import make_dataset


def ids(dataset: tf.data.Dataset) -> list[list[int]]:
    return [batch["item_id"].numpy().tolist() for batch in dataset]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """77 rows in two CSV files, 8 shards of at most 10 rows, 3 rows per Example."""
    tmp = tmp_path_factory.mktemp("native")
    logs = two_logs(tmp / "logs", ".csv")
    return prepare_data(
        logs, SCHEMA, tmp / "cache", rows_per_shard=10, rows_per_example=3
    )


@pytest.mark.parametrize(
    ("suffix", "rows_per_example"), [(".csv", 1), (".csv", 4), (".parquet", 1024)]
)
@pytest.mark.parametrize("drop_remainder", [False, True])
def test_unshuffled_rows_equal_make_dataset(
    tmp_path, suffix, rows_per_example, drop_remainder
):
    logs = two_logs(tmp_path / "logs", suffix)
    prepared = prepare_data(
        logs,
        SCHEMA,
        tmp_path / "cache",
        rows_per_shard=9,
        rows_per_example=rows_per_example,
    )
    native = native_dataset(prepared, 16, shuffle=False, drop_remainder=drop_remainder)
    reader = make_dataset(
        logs, SCHEMA, batch_size=16, shuffle=False, drop_remainder=drop_remainder
    )
    expected = list(reader)
    assert_same_batches(list(native), expected)
    assert len(expected) == (4 if drop_remainder else 5)
    for name, spec in reader.element_spec.items():
        got = native.element_spec[name]
        assert (got.shape, got.dtype) == (spec.shape, spec.dtype), name
    assert sorted(native.element_spec) == sorted(prepared.output_signature)
    # Missing cells are filled as the reader fills them.
    batch = expected[0]
    assert b"" in batch["user_id"].numpy().tolist()
    assert 0.5 in batch["price"].numpy().tolist()
    assert any(b"|" in tags for tags in batch["tags"].numpy().tolist())


def test_unshuffled_split_parts_equal_make_dataset(tmp_path):
    logs = two_logs(tmp_path / "logs", ".parquet", violations=True)
    prepared = prepare_data(
        logs,
        DROP_SCHEMA,
        tmp_path / "c",
        eval_fraction=0.25,
        seed=9,
        rows_per_shard=7,
        rows_per_example=2,
    )
    for part in ("train", "eval"):
        split = Split(part, 0.25, seed=9)
        expected = list(
            make_dataset(logs, DROP_SCHEMA, batch_size=5, shuffle=False, split=split)
        )
        native = native_dataset(prepared, 5, part=part, shuffle=False)
        assert_same_batches(list(native), expected)


def test_shuffled_rows_are_the_same_multiset(prepared, tmp_path):
    logs = prepared.sources[0].parent
    native = native_dataset(prepared, 8, shuffle=True, seed=3, shuffle_buffer_rows=20)
    batches = list(native)
    expected = rows_of(make_dataset(logs, SCHEMA, batch_size=8, shuffle=False))
    assert collections.Counter(rows_of(batches)) == collections.Counter(expected)
    assert rows_of(batches) != expected
    assert [len(b["item_id"]) for b in batches] == [8] * 9 + [5]


def test_order_is_a_function_of_seed_and_epoch(prepared):
    def epoch(seed: int, number: int) -> list[list[int]]:
        return ids(
            native_dataset(
                prepared,
                10,
                shuffle=True,
                seed=seed,
                epoch=number,
                shuffle_buffer_rows=30,
            )
        )

    first = epoch(5, 0)
    assert epoch(5, 0) == first  # a fresh dataset: the same order
    tf.random.set_seed(123)  # the global seed plays no part
    assert epoch(5, 0) == first
    dataset = native_dataset(prepared, 10, shuffle=True, seed=5, shuffle_buffer_rows=30)
    assert ids(dataset) == ids(dataset) == first  # re-iteration: the same order
    assert epoch(5, 1) != first
    assert epoch(6, 0) != first
    assert sorted(sum(epoch(5, 1), [])) == sorted(sum(first, []))
    assert epoch_seeds(5, 0) == epoch_seeds(5, 0)
    assert len({epoch_seeds(5, 0), epoch_seeds(5, 1), epoch_seeds(6, 0)}) == 3
    assert all(0 <= s < 2**63 for s in epoch_seeds(-1, 7))


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("drop_remainder", [False, True])
def test_start_batch_resumes_at_the_exact_row(prepared, shuffle, drop_remainder):
    def batches(start: int) -> list[dict]:
        return list(
            native_dataset(
                prepared,
                6,
                shuffle=shuffle,
                seed=2,
                epoch=3,
                start_batch=start,
                shuffle_buffer_rows=25,
                drop_remainder=drop_remainder,
            )
        )

    full = batches(0)
    assert len(full) == (12 if drop_remainder else 13)
    for start in (1, 5, len(full) - 1, len(full), len(full) + 2):
        assert_same_batches(batches(start), full[start:])


def test_iterator_checkpoint_resumes_at_the_same_batch(prepared, tmp_path):
    dataset = native_dataset(prepared, 6, shuffle=True, seed=8, shuffle_buffer_rows=25)
    iterator = iter(dataset)
    checkpoint = tf.train.Checkpoint(iterator=iterator)
    for _ in range(4):
        next(iterator)
    path = checkpoint.save(tmp_path / "ckpt")
    rest = [next(iterator)["item_id"].numpy().tolist() for _ in range(5)]
    assert rest == ids(dataset)[4:9]
    fresh = iter(dataset)
    tf.train.Checkpoint(iterator=fresh).restore(path)
    assert [next(fresh)["item_id"].numpy().tolist() for _ in range(5)] == rest


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("pipelines", [2, 3, 8, 9])
def test_input_pipelines_read_every_row_once(prepared, shuffle, pipelines):
    # 8 shards: 2, 3 and 8 pipelines take whole shards, 9 every 9th Example.
    everything = sorted(sum(ids(native_dataset(prepared, 7, shuffle=False)), []))
    seen = []
    for pipeline in range(pipelines):
        context = tf.distribute.InputContext(
            num_input_pipelines=pipelines, input_pipeline_id=pipeline
        )
        dataset = native_dataset(
            prepared, 7, shuffle=shuffle, seed=1, input_context=context, epoch=2
        )
        rows = sum(ids(dataset), [])
        assert rows, pipeline
        seen += rows
    assert sorted(seen) == everything
    assert len(everything) == 77


def graph_ops(dataset: tf.data.Dataset) -> set[str]:
    """Every op type in a dataset's graph and its function library."""
    graph = tf.compat.v1.GraphDef.FromString(dataset._as_serialized_graph().numpy())
    ops = {node.op for node in graph.node}
    for function in graph.library.function:
        ops |= {node.op for node in function.node_def}
    return ops


def test_no_python_in_the_graph(prepared):
    python_ops = {"PyFunc", "PyFuncStateless", "EagerPyFunc", "GeneratorDataset"}
    reader = make_dataset(prepared.sources, SCHEMA, batch_size=8, shuffle=False)
    assert graph_ops(reader) & python_ops
    for shuffle in (False, True):
        native = native_dataset(prepared, 8, shuffle=shuffle, seed=1)
        ops = graph_ops(native)
        assert not ops & python_ops
        assert {"TFRecordDataset", "ParseExampleV2", "RebatchDatasetV2"} <= ops
    assert {"ParallelInterleaveDatasetV4", "StatelessShuffle"} <= ops


def test_empty_part_and_arguments(tmp_path):
    logs = two_logs(tmp_path / "logs", ".csv")
    tiny = prepare_data(
        logs / "a.csv", SCHEMA, tmp_path / "c", eval_fraction=0.001, seed=1
    )
    assert tiny.parts["eval"].rows == 0 and tiny.parts["eval"].shards == ()
    assert ids(native_dataset(tiny, 4, part="eval", shuffle=True, seed=1)) == []
    with pytest.raises(ValueError, match="`part` must be one of"):
        native_dataset(tiny, 4, shuffle=False)
    with pytest.raises(ValueError, match="`seed` must be an int when `shuffle=True`"):
        native_dataset(tiny, 4, part="train", shuffle=True)
    with pytest.raises(ValueError, match="`batch_size` must be an int >= 1"):
        native_dataset(tiny, 0, part="train", shuffle=False)
    with pytest.raises(ValueError, match="`start_batch` must be an int >= 0"):
        native_dataset(tiny, 4, part="train", shuffle=False, start_batch=-1)
    with pytest.raises(ValueError, match="`epoch` must be an int >= 0"):
        native_dataset(tiny, 4, part="train", shuffle=False, epoch=1.0)


@pytest.mark.parametrize("pipelines", [2, 9])
def test_a_pipelines_share_changes_from_epoch_to_epoch(prepared, pipelines):
    # Whole shards (2 pipelines) and every 9th Example (9): the share of epoch
    # 1 is not that of epoch 0, and every epoch still splits all rows.
    context = tf.distribute.InputContext(
        num_input_pipelines=pipelines, input_pipeline_id=0
    )

    def share(epoch, shuffle=True):
        dataset = native_dataset(
            prepared, 7, shuffle=shuffle, seed=1, input_context=context, epoch=epoch
        )
        return sorted(sum(ids(dataset), []))

    assert share(0) != share(1)
    assert share(0, shuffle=False) == share(0, shuffle=False)
