"""encode_prepared: a prepared shard set rewritten with columns encoded, once."""

import mtrec  # noqa: F401  (the Keras switch, before TensorFlow)

# isort: split
import numpy as np
import pytest
import tensorflow as tf
from native_helpers import SCHEMA
from native_helpers import rows_of
from native_helpers import two_logs

from mtrec.data import encode_prepared
from mtrec.data.native import native_dataset
from mtrec.data.prepare import prepare_data

RENAMED = {"user_id": "user_row", "item_id": "item_row"}
TRACES = []


def _encode(columns: dict) -> dict:
    """user_id -> a hash bucket, item_id -> its row number (ids are scaled)."""
    TRACES.append(1)
    out = {k: v for k, v in columns.items() if k not in RENAMED}
    out["user_row"] = tf.strings.to_hash_bucket_fast(columns["user_id"], 50)
    out["item_row"] = columns["item_id"] // 1_000_003
    return out


def _by_hand(batch: dict) -> dict:
    return {k: v.numpy() for k, v in _encode(batch).items()}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """77 rows in two CSV files, split, shards of at most 10 rows, 3 per Example."""
    tmp = tmp_path_factory.mktemp("encoded")
    return prepare_data(
        two_logs(tmp / "logs", ".csv"),
        SCHEMA,
        tmp / "cache",
        eval_fraction=0.3,
        seed=4,
        rows_per_shard=10,
        rows_per_example=3,
    )


def _records(path) -> list[int]:
    """Rows per Example of a shard."""
    spec = {"click": tf.io.RaggedFeature(tf.float32, row_splits_dtype=tf.int64)}
    return [
        int(tf.io.parse_single_example(r, spec)["click"].shape[0])
        for r in tf.data.TFRecordDataset(str(path))
    ]


def test_the_encoded_part_keeps_shards_rows_and_examples(prepared):
    encoded = encode_prepared(prepared, _encode, RENAMED, "v1", ["train"])
    assert list(encoded.parts) == ["train"]
    raw, new = prepared.part("train"), encoded.part("train")
    assert new.rows == raw.rows and new.rows_per_shard == raw.rows_per_shard
    assert [p.name for p in new.shards] == [p.name for p in raw.shards]
    assert new.shards[0].parent == prepared.directory / encoded.directory.name
    for before, after in zip(raw.shards, new.shards, strict=True):
        assert _records(after) == _records(before)
    signature = encoded.output_signature
    assert "user_id" not in signature and "item_id" not in signature
    assert signature["user_row"].dtype == signature["item_row"].dtype == tf.int64
    assert set(signature) == (set(prepared.output_signature) - set(RENAMED)) | set(
        RENAMED.values()
    )


@pytest.mark.parametrize("pipelines", [None, 2])
def test_shuffled_batches_are_the_raw_batches_encoded(prepared, pipelines):
    encoded = encode_prepared(prepared, _encode, RENAMED, "v1", ["train"])
    context = None
    if pipelines:
        context = tf.distribute.InputContext(pipelines, 1, pipelines)
    args = dict(part="train", shuffle=True, seed=9, epoch=2, input_context=context)
    raw = list(native_dataset(prepared, 8, **args))
    new = list(native_dataset(encoded, 8, **args))
    assert len(raw) == len(new) > 1
    assert rows_of([_by_hand(b) for b in raw]) == rows_of(new)
    # and from a mid-epoch batch on, as a resumed run reads them
    resumed = list(native_dataset(encoded, 8, **args, start_batch=2))
    assert rows_of(resumed) == rows_of(new[2:])


def test_a_second_call_is_a_cache_hit_and_the_fingerprint_is_the_key(prepared):
    first = encode_prepared(prepared, _encode, RENAMED, "v2", ["train"])
    TRACES.clear()
    assert encode_prepared(prepared, _encode, RENAMED, "v2", ["train"]) == first
    assert not TRACES  # nothing encoded again
    other = encode_prepared(prepared, _encode, RENAMED, "v3", ["train"])
    assert other.directory != first.directory and TRACES
    both = encode_prepared(prepared, _encode, RENAMED, "v2")
    assert sorted(both.parts) == ["eval", "train"]
    assert both.directory != first.directory
    # A damaged entry is not trusted: it is written again.
    shard = first.part("train").shards[0]
    shard.write_bytes(shard.read_bytes()[:-3])
    again = encode_prepared(prepared, _encode, RENAMED, "v2", ["train"])
    assert again.directory == first.directory
    assert rows_of(native_dataset(again, 100, part="train", shuffle=False)) == (
        rows_of(native_dataset(other, 100, part="train", shuffle=False))
    )


def test_bad_arguments_are_named_and_leave_nothing(prepared):
    before = sorted(p.name for p in prepared.directory.iterdir())
    with pytest.raises(ValueError, match="Cannot encode column 'city'"):
        encode_prepared(prepared, _encode, {"city": "city_row"}, "x")
    with pytest.raises(ValueError, match=r"encode into the columns \['click'\]"):
        encode_prepared(prepared, _encode, {"user_id": "click"}, "x")
    with pytest.raises(ValueError, match="`part` must be one of"):
        encode_prepared(prepared, _encode, RENAMED, "x", ["test"])

    def wrong(columns):
        return {"click": columns["click"]}

    with pytest.raises(ValueError, match="`encode` must return the columns"):
        encode_prepared(prepared, wrong, RENAMED, "x-wrong")
    after = sorted(p.name for p in prepared.directory.iterdir())
    assert [n for n in after if n not in before] == []
    assert not any(n.startswith(".tmp") for n in after)
    assert np.all([p.is_file() for p in prepared.part("train").shards])
