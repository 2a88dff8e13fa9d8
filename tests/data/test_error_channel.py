"""mtrec.data.error_channel: a reader's DataError comes back as itself."""

import mtrec  # noqa: F401  (the Keras switch, before TensorFlow)

# isort: split

import pytest
import tensorflow as tf

from mtrec.data import make_dataset
from mtrec.data import surface_data_errors
from mtrec.data.error_channel import DataErrorChannel
from mtrec.data.schema import ColumnSchema
from mtrec.data.schema import DataError

SCHEMA = ColumnSchema(
    string_columns=("user_id",), int_columns=("item_id",), label_columns=("click",)
)


def bad_log(path, bad_line: int = 32, rows: int = 40):
    """A log whose CSV line ``bad_line`` has the label 'yes'."""
    lines = ["user_id,item_id,click"]
    lines += [f"u{i % 7},{i},{i % 2}" for i in range(rows)]
    lines[bad_line - 1] = "u,30,yes"
    path.write_text("\n".join(lines) + "\n")
    return path


def op_error(text: str) -> tf.errors.InvalidArgumentError:
    return tf.errors.InvalidArgumentError(None, None, text)


def test_streaming_data_error_surfaces_as_the_readers_exception(tmp_path):
    path = bad_log(tmp_path / "click_log.csv")
    dataset = make_dataset(path, SCHEMA, batch_size=4, shuffle=False, chunk_rows=8)
    with pytest.raises(DataError) as info:
        with surface_data_errors():
            for _ in dataset:
                pass
    assert type(info.value) is DataError
    assert str(info.value) == (
        f"{path}, line 32, column 'click': label must be 0 or 1, got 'yes'"
    )
    # Without the context, tf.data's wrapper is what the caller gets.
    with pytest.raises((tf.errors.InvalidArgumentError, tf.errors.UnknownError)):
        for _ in make_dataset(path, SCHEMA, batch_size=4, shuffle=False):
            pass


def test_op_error_with_another_cause_passes_unchanged():
    channel = DataErrorChannel()
    channel.record(DataError("a.csv, line 2, column 'click': bad"))
    error = op_error("Input `price` is NaN or infinite at row 3 of the batch")
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        with surface_data_errors(channel):
            raise error
    assert info.value is error


def test_error_recorded_before_the_context_is_not_surfaced():
    channel = DataErrorChannel()
    old = DataError("a.csv, line 2, column 'click': bad")
    channel.record(old)
    with pytest.raises(tf.errors.InvalidArgumentError):
        with surface_data_errors(channel):
            raise op_error(f"DataError: {old}")
    # Recorded inside the context: surfaced once, then gone.
    with pytest.raises(DataError) as info:
        with surface_data_errors(channel):
            new = DataError("b.csv, line 5, column 'click': bad")
            channel.record(new)
            raise op_error(f"Traceback ... DataError: {new}\n")
    assert info.value is new
    assert channel.take(op_error(f"DataError: {new}"), since=0) is None


def test_channel_matches_the_error_the_op_error_carries_and_keeps_a_bounded_tail():
    channel = DataErrorChannel(capacity=2)
    first = DataError("a.csv, line 2, column 'click': bad")
    second = DataError("b.csv, line 9, column 'click': bad")
    third = DataError("c.csv, line 4, column 'click': bad")
    for error in (first, second, third):
        channel.record(error)
    assert channel.position() == 3
    # The first fell out of the two kept; the one the message names is taken.
    assert channel.take(op_error(f"DataError: {first}"), since=0) is None
    assert channel.take(op_error(f"DataError: {second}"), since=0) is second
    assert channel.take(op_error(f"DataError: {third}"), since=3) is None
    assert channel.take(op_error(f"DataError: {third}"), since=2) is third
