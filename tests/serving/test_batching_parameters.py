"""The BatchingParameters reader: TF Serving's text format, strict errors."""

import pytest

from mtrec.serving.batching_parameters import BatchingParameters
from mtrec.serving.batching_parameters import read_batching_parameters


def _read(tmp_path, text: str) -> BatchingParameters:
    path = tmp_path / "batching.txt"
    path.write_text(text)
    return read_batching_parameters(path)


def test_every_field_is_read(tmp_path):
    parameters = _read(
        tmp_path,
        """
        # a comment
        max_batch_size { value: 64 }   # trailing comment
        batch_timeout_micros { value: 500 }
        max_enqueued_batches { value: 3 }
        num_batch_threads { value: 2 }
        thread_pool_name { value: "pool" }
        enable_large_batch_splitting { value: true }
        max_execution_batch_size { value: 16 }
        allowed_batch_sizes: 8
        allowed_batch_sizes: 16
        pad_variable_length_inputs: false
        """,
    )
    assert parameters == BatchingParameters(
        max_batch_size=64,
        batch_timeout_micros=500,
        max_enqueued_batches=3,
        num_batch_threads=2,
        thread_pool_name="pool",
        enable_large_batch_splitting=True,
        max_execution_batch_size=16,
        allowed_batch_sizes=(8, 16),
        pad_variable_length_inputs=False,
    )
    assert parameters.execution_batch_size == 16


def test_left_out_fields_take_tf_servings_defaults(tmp_path):
    parameters = _read(tmp_path, "num_batch_threads { value: 1 }\n")
    assert parameters.max_batch_size == 1000
    assert parameters.max_enqueued_batches == 10
    assert parameters.batch_timeout_micros == 0
    assert not parameters.enable_large_batch_splitting


@pytest.mark.parametrize(
    "text, line, fragment",
    [
        ("max_batch_size { value: 8 }\nmax_batch_siz { value: 8 }", 2, "unknown"),
        ("max_batch_size: 8", 1, "is a wrapper field: write `max_batch_size {"),
        ("max_batch_size { value: 8.5 }", 1, "must be an integer"),
        ("max_batch_size { value: 8 }\nmax_batch_size { value: 9 }", 2, "twice"),
        ("enable_large_batch_splitting { value: yes }", 1, "true or false"),
        ("thread_pool_name { value: pool }", 1, "quoted string"),
        ("num_batch_threads { value: 2 ", 1, "expected `field { value: V }`"),
        ("allowed_batch_sizes: x", 1, "must be an integer"),
    ],
)
def test_a_bad_line_is_an_error_naming_file_and_line(tmp_path, text, line, fragment):
    with pytest.raises(ValueError, match=r"batching\.txt:(\d+)") as info:
        _read(tmp_path, text)
    assert f"batching.txt:{line}:" in str(info.value)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("max_batch_size { value: 0 }", "`max_batch_size` must be an int >= 1"),
        ("num_batch_threads { value: -1 }", "`num_batch_threads` must be an int >= 1"),
        ("batch_timeout_micros { value: -5 }", "`batch_timeout_micros` must be >= 0"),
        (
            "max_batch_size { value: 64 }\nallowed_batch_sizes: 8\n"
            "allowed_batch_sizes: 32",
            "must equal max_batch_size (64)",
        ),
        (
            "max_batch_size { value: 64 }\nallowed_batch_sizes: 64\n"
            "allowed_batch_sizes: 8",
            "positive and increasing",
        ),
        (
            "max_batch_size { value: 8 }\nmax_execution_batch_size { value: 9 }",
            "`max_execution_batch_size` must be in [1, max_batch_size=8]",
        ),
    ],
)
def test_values_out_of_range_are_errors_naming_the_file(tmp_path, text, fragment):
    with pytest.raises(ValueError) as info:
        _read(tmp_path, text)
    assert str(info.value).startswith(str(tmp_path / "batching.txt"))
    assert fragment in str(info.value)


def test_a_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(OSError):
        read_batching_parameters(tmp_path / "nope.txt")
