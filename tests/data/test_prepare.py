"""Tests of the validating prepare pass and its content-hash cache."""

import mtrec  # noqa: F401  (the Keras switch, before TensorFlow)

# isort: split
import json
import os
import re
import shutil

import numpy as np
import pytest
import tensorflow as tf
from native_helpers import DROP_SCHEMA
from native_helpers import SCHEMA
from native_helpers import two_logs

from mtrec.data import prepare as prepare_module
from mtrec.data.native import parse_spec
from mtrec.data.prepare import PreparedData
from mtrec.data.prepare import load_prepared
from mtrec.data.prepare import prepare_data
from mtrec.data.reader import ReadStats
from mtrec.data.reader import Split
from mtrec.data.reader import iter_chunks
from mtrec.data.schema import DataError


def item_ids(prepared: PreparedData, part: str) -> list[int]:
    """The item ids of a part's shards, in shard and row order."""
    files = [str(path) for path in prepared.part(part).shards]
    if not files:
        return []
    spec = {"item_id": parse_spec(prepared)["item_id"]}
    dataset = tf.data.TFRecordDataset(files).batch(1000)
    return [
        int(v)
        for batch in dataset
        for v in tf.io.parse_example(batch, spec)["item_id"].flat_values.numpy()
    ]


def reader_ids(directory, schema, split=None, stats=None) -> list[int]:
    chunks = iter_chunks(directory, schema, split=split, stats=stats)
    return [int(v) for chunk in chunks for v in chunk["item_id"]]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_shards_hold_every_row_in_order(tmp_path, suffix):
    logs = two_logs(tmp_path / "logs", suffix)
    prepared = prepare_data(
        logs, SCHEMA, tmp_path / "cache", rows_per_shard=10, rows_per_example=5
    )
    part = prepared.part()
    assert list(prepared.parts) == ["all"]
    # Whole Examples per shard; Examples never span two files (37 + 40 rows).
    assert part.rows_per_shard == (10, 10, 10, 7, 10, 10, 10, 10)
    assert prepared.rows_per_example == 5
    assert part.rows == prepared.rows_read == 77
    assert part.rows_dropped == 0
    assert [p.name for p in part.shards] == [f"all-{i:05d}.tfrecord" for i in range(8)]
    assert item_ids(prepared, "all") == reader_ids(logs, SCHEMA)
    assert prepared.passthrough == ("true_ctr", "session")
    assert prepared.schema == SCHEMA
    assert prepared.sources == (logs / f"a{suffix}", logs / f"b{suffix}")
    assert load_prepared(prepared.directory) == prepared
    manifest = json.loads((prepared.directory / "manifest.json").read_text())
    examples = [shard["examples"] for shard in manifest["parts"]["all"]["shards"]]
    assert examples == [2, 2, 2, 2, 2, 2, 2, 2]
    assert (manifest["rows_per_shard"], manifest["rows_per_example"]) == (10, 5)
    assert manifest["columns"] == {
        "user_id": "string",
        "tags": "string",
        "item_id": "int64",
        "price": "float32",
        "age": "float32",
        "click": "float32",
        "conversion": "float32",
        "dwell": "float32",
        "true_ctr": "float32",
        "session": "string",
    }


@pytest.mark.parametrize("schema", [SCHEMA, DROP_SCHEMA], ids=["error", "drop"])
def test_split_parts_are_the_readers_split(tmp_path, schema):
    logs = two_logs(tmp_path / "logs", ".csv", violations=schema is DROP_SCHEMA)
    prepared = prepare_data(
        logs,
        schema,
        tmp_path / "cache",
        eval_fraction=0.3,
        seed=4,
        rows_per_shard=8,
        rows_per_example=3,
    )
    assert list(prepared.parts) == ["train", "eval"]
    assert (prepared.eval_fraction, prepared.split_seed) == (0.3, 4)
    total_dropped = 0
    for part in ("train", "eval"):
        stats = ReadStats()
        expected = reader_ids(logs, schema, Split(part, 0.3, seed=4), stats)
        assert item_ids(prepared, part) == expected
        assert prepared.parts[part].rows == len(expected)
        assert prepared.parts[part].rows_dropped == stats.rows_dropped
        total_dropped += stats.rows_dropped
    assert prepared.rows_read == 77
    if schema is DROP_SCHEMA:
        assert total_dropped > 0
    rows = sum(p.rows for p in prepared.parts.values())
    assert rows + total_dropped == 77


def test_validation_part_is_the_readers_validation_split(tmp_path):
    logs = two_logs(tmp_path / "logs", ".csv")
    args = dict(eval_fraction=0.4, seed=4, rows_per_shard=8, rows_per_example=3)
    plain = prepare_data(logs, SCHEMA, tmp_path / "cache", **args)
    cut = prepare_data(
        logs, SCHEMA, tmp_path / "cache", validation_fraction=0.2, **args
    )
    assert cut.directory != plain.directory  # a different cache entry
    assert list(cut.parts) == ["train", "eval", "validation"]
    assert item_ids(cut, "train") == item_ids(plain, "train")
    for part in ("eval", "validation"):
        split = Split(part, 0.4, seed=4, validation_fraction=0.2)
        assert item_ids(cut, part) == reader_ids(logs, SCHEMA, split)
    assert sorted(item_ids(cut, "eval") + item_ids(cut, "validation")) == sorted(
        item_ids(plain, "eval")
    )
    with pytest.raises(ValueError, match="`validation_fraction` needs a split"):
        prepare_data(logs, SCHEMA, tmp_path / "cache", validation_fraction=0.1)


def test_second_call_reuses_the_cache(tmp_path, monkeypatch):
    logs = two_logs(tmp_path / "logs", ".csv")
    first = prepare_data(logs, SCHEMA, tmp_path / "cache", eval_fraction=0.2, seed=1)
    stamps = [os.stat(p).st_mtime_ns for p in first.part("train").shards]

    def no_rewrite(*args, **kwargs):
        raise AssertionError("the cache was not reused")

    monkeypatch.setattr(prepare_module, "write_parts", no_rewrite)
    second = prepare_data(logs, SCHEMA, tmp_path / "cache", eval_fraction=0.2, seed=1)
    assert second == first
    assert [os.stat(p).st_mtime_ns for p in second.part("train").shards] == stamps
    # Content-addressed: the same bytes under other names hit the same entry.
    moved = tmp_path / "moved"
    moved.mkdir()
    for path in sorted(logs.iterdir()):
        (moved / ("x-" + path.name)).write_bytes(path.read_bytes())
    third = prepare_data(moved, SCHEMA, tmp_path / "cache", eval_fraction=0.2, seed=1)
    assert third.cache_key == first.cache_key
    assert len(list((tmp_path / "cache").iterdir())) == 1


def test_a_changed_input_or_setting_is_a_new_entry(tmp_path):
    logs = two_logs(tmp_path / "logs", ".csv")
    cache = tmp_path / "cache"
    first = prepare_data(logs, SCHEMA, cache)
    # Same size, one digit changed: a new key with the new value.
    path = logs / "b.csv"
    text = path.read_text()
    old = str(76 * 1_000_003)
    path.write_text(text.replace(old, old[:-1] + "9"))
    assert path.stat().st_size == len(text)
    second = prepare_data(logs, SCHEMA, cache)
    assert second.cache_key != first.cache_key
    assert item_ids(second, "all")[-1] == int(old[:-1] + "9")
    assert item_ids(first, "all")[-1] == int(old)  # the old entry is untouched
    keys = {
        prepare_data(logs, SCHEMA, cache, eval_fraction=0.2, seed=1).cache_key,
        prepare_data(logs, SCHEMA, cache, eval_fraction=0.2, seed=2).cache_key,
        prepare_data(logs, SCHEMA, cache, rows_per_shard=5).cache_key,
        prepare_data(logs, SCHEMA, cache, rows_per_example=1).cache_key,
        prepare_data(logs, DROP_SCHEMA, cache).cache_key,
        second.cache_key,
    }
    assert len(keys) == 6


def test_a_failed_prepare_leaves_nothing_trusted(tmp_path):
    logs = two_logs(tmp_path / "logs", ".csv")
    path = logs / "b.csv"
    lines = path.read_text().splitlines()
    fields = lines[30].split(",")
    fields[5] = "yes"  # the click label of data row 29 of b.csv: line 31
    lines[30] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as caught:
        prepare_data(logs, SCHEMA, cache, rows_per_shard=4)
    with pytest.raises(DataError) as expected:
        list(iter_chunks(logs, SCHEMA))
    assert str(caught.value) == str(expected.value)
    assert re.search(r"b\.csv, line 31, column 'click': .*got 'yes'", str(caught.value))
    assert list(cache.iterdir()) == []  # no entry, no temporary directory


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("item_id", "1.5", "expected an integer, got '1.5'"),
        ("age", "", "no fill value, got ''"),
        ("price", "abc", "expected a number, got 'abc'"),
        ("dwell", "NaN", "finite number, got 'NaN'"),
        ("true_ctr", "high", "expected a number, got 'high'"),
    ],
)
def test_bad_values_raise_the_readers_error(tmp_path, column, value, message):
    logs = two_logs(tmp_path / "logs", ".csv")
    path = logs / "a.csv"
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    fields = lines[12].split(",")
    fields[header.index(column)] = value
    lines[12] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as caught:
        prepare_data(logs, SCHEMA, tmp_path / "cache")
    pattern = rf"a\.csv, line 13, column '{column}': .*" + re.escape(message)
    assert re.search(pattern, str(caught.value))
    with pytest.raises(DataError, match=re.escape(str(caught.value))):
        list(iter_chunks(logs, SCHEMA))


def test_an_interrupted_or_corrupt_entry_is_not_trusted(tmp_path):
    logs = two_logs(tmp_path / "logs", ".csv")
    cache = tmp_path / "cache"
    good = prepare_data(logs, SCHEMA, cache, rows_per_shard=20, rows_per_example=4)
    expected = item_ids(good, "all")
    # A killed prepare's leftover and a truncated shard in the final entry.
    leftover = cache / f".tmp-{good.cache_key[:12]}-dead"
    leftover.mkdir()
    (leftover / "all-00000.tfrecord").write_bytes(b"junk")
    shard = good.part().shards[1]
    shard.write_bytes(shard.read_bytes()[:-7])
    with pytest.raises(DataError, match=r"all-00001\.tfrecord: shard missing or of"):
        load_prepared(good.directory)
    rebuilt = prepare_data(logs, SCHEMA, cache, rows_per_shard=20, rows_per_example=4)
    assert rebuilt == good
    assert item_ids(rebuilt, "all") == expected
    (good.directory / "manifest.json").write_text("{")
    with pytest.raises(DataError, match="cannot read the prepared-data manifest"):
        load_prepared(good.directory)
    again = prepare_data(logs, SCHEMA, cache, rows_per_shard=20, rows_per_example=4)
    assert again == good


def test_a_concurrent_writers_trusted_entry_is_kept_as_it_is(
    tmp_path, monkeypatch, caplog
):
    # Two workers of a cluster prepare the same data at once: the other one
    # renames its entry into place while this one is still writing. It may
    # already be reading that entry, so this one must not remove or replace
    # it, only drop its own copy and use the other's.
    logs = two_logs(tmp_path / "logs", ".csv")
    cache = tmp_path / "cache"
    write_parts = prepare_module.write_parts
    other = {}

    def racing(*args, **kwargs):
        if not other:
            monkeypatch.setattr(prepare_module, "write_parts", write_parts)
            other["entry"] = prepare_data(logs, SCHEMA, cache, rows_per_shard=20)
            other["files"] = {
                path.name: path.stat().st_ino
                for path in other["entry"].directory.iterdir()
            }
        return write_parts(*args, **kwargs)

    monkeypatch.setattr(prepare_module, "write_parts", racing)
    with caplog.at_level("WARNING", logger="mtrec.data.prepare"):
        mine = prepare_data(logs, SCHEMA, cache, rows_per_shard=20)
    assert mine == other["entry"]
    assert {
        path.name: path.stat().st_ino for path in mine.directory.iterdir()
    } == other["files"]
    assert not caplog.records, [record.getMessage() for record in caplog.records]
    assert [path.name for path in cache.iterdir()] == [mine.directory.name]
    assert item_ids(mine, "all") == reader_ids(logs, SCHEMA)


def test_arguments(tmp_path):
    logs = two_logs(tmp_path / "logs", ".csv")
    with pytest.raises(ValueError, match="`eval_fraction` and `seed` must be given"):
        prepare_data(logs, SCHEMA, tmp_path / "c", eval_fraction=0.1)
    with pytest.raises(ValueError, match="`eval_fraction` must be a number in"):
        prepare_data(logs, SCHEMA, tmp_path / "c", eval_fraction=1.5, seed=1)
    with pytest.raises(ValueError, match="`rows_per_shard` must be an int >= 1"):
        prepare_data(logs, SCHEMA, tmp_path / "c", rows_per_shard=0)
    with pytest.raises(ValueError, match="`rows_per_example` must be an int >= 1"):
        prepare_data(logs, SCHEMA, tmp_path / "c", rows_per_example=True)
    with pytest.raises(DataError, match="no such file"):
        prepare_data(tmp_path / "absent.csv", SCHEMA, tmp_path / "c")
    prepared = prepare_data(logs, SCHEMA, tmp_path / "c", eval_fraction=0.1, seed=1)
    with pytest.raises(ValueError, match=r"`part` must be one of \['eval', 'train'\]"):
        prepared.part()
    assert np.isclose(prepared.parts["eval"].rows / 77, 0.1, atol=0.1)


@pytest.fixture(scope="module")
def prepared_dir(tmp_path_factory):
    """A prepared entry whose manifest the cases below corrupt (in copies)."""
    root = tmp_path_factory.mktemp("prepared")
    logs = two_logs(root / "logs", ".csv")
    return prepare_data(logs, SCHEMA, root / "cache", rows_per_shard=20).directory


def _entry_with(tmp_path, source, edit) -> tuple:
    """A copy of ``source`` whose manifest text ``edit`` rewrote."""
    entry = tmp_path / "entry"
    shutil.copytree(source, entry)
    path = entry / "manifest.json"
    path.write_text(edit(path.read_text()))
    return entry, path


def _json_edit(change):
    def edit(text):
        manifest = json.loads(text)
        change(manifest)
        return json.dumps(manifest)

    return edit


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda text: text[:40], "cannot read the prepared-data manifest: "),
        (
            _json_edit(lambda m: m.update(format_version=99)),
            "format_version 99, expected 1",
        ),
        (
            _json_edit(lambda m: m.pop("cache_key")),
            "invalid prepared-data manifest: KeyError('cache_key')",
        ),
        (
            _json_edit(lambda m: m["parts"]["all"]["shards"][0].pop("bytes")),
            "invalid prepared-data manifest: KeyError('bytes')",
        ),
        (
            _json_edit(lambda m: m["parts"]["all"].update(rows="many")),
            'invalid prepared-data manifest: ValueError("invalid literal',
        ),
    ],
    ids=["truncated", "version", "no-cache-key", "no-shard-bytes", "bad-rows"],
)
def test_a_bad_manifest_is_a_data_error_naming_it(
    tmp_path, prepared_dir, edit, message
):
    entry, path = _entry_with(tmp_path, prepared_dir, edit)
    with pytest.raises(DataError) as caught:
        load_prepared(entry)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_a_shard_of_another_size_names_the_shard_and_both_sizes(tmp_path, prepared_dir):
    entry, _ = _entry_with(tmp_path, prepared_dir, lambda text: text)
    loaded = load_prepared(entry)
    shard = loaded.part().shards[0]
    recorded = shard.stat().st_size
    shard.write_bytes(shard.read_bytes() + b"x")
    with pytest.raises(DataError) as caught:
        load_prepared(entry)
    assert str(caught.value) == (
        f"{shard}: shard missing or of {recorded + 1} bytes, "
        f"the manifest records {recorded}"
    )
    shard.unlink()
    with pytest.raises(DataError, match=r"shard missing or of None bytes"):
        load_prepared(entry)
