"""Tests of the vectorised ``tf.train.Example`` encoder."""

import mtrec  # noqa: F401  (the Keras switch, before TensorFlow)

# isort: split
import numpy as np
import pyarrow as pa
import pytest
import tensorflow as tf

from mtrec.data.example_encoding import encode_examples

STRINGS = ["", "u1", "é" * 70, "x" * 200, "y" * 20_000, "a|b|c", "NA", "日本"]
INTS = [0, 1, -1, 127, 128, 16_383, 16_384, 2**63 - 1, -(2**63)]
FLOATS = [0.0, -0.0, 1.5, np.nan, np.inf, -np.inf, 3.4e38, 1e-45]


def reference(columns: dict) -> list[tf.train.Example]:
    """The same rows built with the protobuf API."""
    rows = len(next(iter(columns.values())))
    examples = []
    for i in range(rows):
        example = tf.train.Example()
        features = example.features.feature
        for name, values in columns.items():
            if isinstance(values, pa.Array):
                features[name].bytes_list.value.append(values[i].as_py().encode())
            elif values.dtype == object:
                features[name].bytes_list.value.append(values[i].encode())
            elif values.dtype == np.int64:
                features[name].int64_list.value.append(int(values[i]))
            else:
                features[name].float_list.value.append(float(values[i]))
        examples.append(example)
    return examples


def columns_of(rows: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "arrow": pa.array([STRINGS[i] for i in rng.integers(0, len(STRINGS), rows)]),
        "numpy": np.array(
            [STRINGS[i] for i in rng.integers(0, len(STRINGS), rows)], dtype=object
        ),
        "ids": np.array([INTS[i] for i in rng.integers(0, len(INTS), rows)]),
        "dense": np.array(
            [FLOATS[i] for i in rng.integers(0, len(FLOATS), rows)], dtype=np.float32
        ),
    }


def test_protos_equal_the_protobuf_api():
    columns = columns_of(300)
    encoded = encode_examples(columns)
    assert len(encoded) == 300
    for proto, expected in zip(encoded, reference(columns), strict=True):
        parsed = tf.train.Example.FromString(proto)
        # NaN != NaN in proto comparison: compare the float bits separately.
        dense = parsed.features.feature["dense"].float_list.value
        want = expected.features.feature["dense"].float_list.value
        np.testing.assert_array_equal(
            np.array(dense, np.float32).view(np.uint32),
            np.array(want, np.float32).view(np.uint32),
        )
        del parsed.features.feature["dense"], expected.features.feature["dense"]
        assert parsed == expected


def test_parse_example_reads_every_value_back():
    columns = columns_of(1000, seed=1)
    spec = {
        "arrow": tf.io.FixedLenFeature([], tf.string),
        "numpy": tf.io.FixedLenFeature([], tf.string),
        "ids": tf.io.FixedLenFeature([], tf.int64),
        "dense": tf.io.FixedLenFeature([], tf.float32),
    }
    parsed = tf.io.parse_example(tf.constant(encode_examples(columns)), spec)
    assert [v.decode() for v in parsed["arrow"].numpy()] == columns["arrow"].to_pylist()
    assert [v.decode() for v in parsed["numpy"].numpy()] == columns["numpy"].tolist()
    np.testing.assert_array_equal(parsed["ids"].numpy(), columns["ids"])
    np.testing.assert_array_equal(parsed["dense"].numpy(), columns["dense"])


def test_sliced_and_filtered_arrow_strings():
    strings = pa.array(STRINGS)
    sliced = strings.slice(3, 4)
    filtered = strings.filter(pa.array([i % 2 == 0 for i in range(len(STRINGS))]))
    for values in (sliced, filtered):
        encoded = encode_examples({"s": values})
        got = [
            tf.train.Example.FromString(p).features.feature["s"].bytes_list.value[0]
            for p in encoded
        ]
        assert got == [v.encode() for v in values.to_pylist()]


def test_empty_and_invalid_columns():
    assert encode_examples({"a": np.zeros(0, np.int64)}) == []
    with pytest.raises(ValueError, match="at least one column"):
        encode_examples({})
    with pytest.raises(
        ValueError, match=r"equal lengths. Received: \{'a': 2, 'b': 1\}"
    ):
        encode_examples({"a": np.zeros(2, np.int64), "b": np.zeros(1, np.int64)})
    with pytest.raises(ValueError, match="Column 'a' must hold strings, int64"):
        encode_examples({"a": np.zeros(2, np.float64)})
    with pytest.raises(ValueError, match="must not hold nulls"):
        encode_examples({"a": pa.array(["x", None])})


@pytest.mark.parametrize("rows_per_example", [2, 3, 7, 50])
def test_blocks_of_rows_per_example(rows_per_example):
    columns = columns_of(20, seed=2)
    encoded = encode_examples(columns, rows_per_example)
    assert len(encoded) == -(-20 // rows_per_example)
    rows = reference(columns)
    for index, proto in enumerate(encoded):
        block = tf.train.Example.FromString(proto).features.feature
        first = index * rows_per_example
        expected = rows[first : first + rows_per_example]
        for name, kind in (("arrow", "bytes_list"), ("numpy", "bytes_list")):
            got = list(getattr(block[name], kind).value)
            want = [getattr(r.features.feature[name], kind).value[0] for r in expected]
            assert got == want, name
        got = list(block["ids"].int64_list.value)
        assert got == [r.features.feature["ids"].int64_list.value[0] for r in expected]
        got = np.array(block["dense"].float_list.value, np.float32)
        want = [r.features.feature["dense"].float_list.value[0] for r in expected]
        np.testing.assert_array_equal(got, np.array(want, np.float32))
    ragged = {
        "arrow": tf.io.RaggedFeature(tf.string),
        "ids": tf.io.RaggedFeature(tf.int64),
        "dense": tf.io.RaggedFeature(tf.float32),
    }
    parsed = tf.io.parse_example(tf.constant(encoded), ragged)
    assert parsed["ids"].row_lengths().numpy().tolist() == [
        min(rows_per_example, 20 - start) for start in range(0, 20, rows_per_example)
    ]
    np.testing.assert_array_equal(parsed["ids"].flat_values.numpy(), columns["ids"])
    np.testing.assert_array_equal(parsed["dense"].flat_values.numpy(), columns["dense"])
    strings = [v.decode() for v in parsed["arrow"].flat_values.numpy()]
    assert strings == columns["arrow"].to_pylist()


def test_rows_per_example_must_be_positive():
    with pytest.raises(ValueError, match="`rows_per_example` must be an int >= 1"):
        encode_examples({"a": np.zeros(2, np.int64)}, rows_per_example=0)


def test_example_rows_give_examples_of_uneven_sizes():
    columns = columns_of(20, seed=3)
    sizes = [4, 1, 7, 8]
    encoded = encode_examples(columns, example_rows=sizes)
    ragged = {
        "numpy": tf.io.RaggedFeature(tf.string),
        "ids": tf.io.RaggedFeature(tf.int64),
        "dense": tf.io.RaggedFeature(tf.float32),
    }
    parsed = tf.io.parse_example(tf.constant(encoded), ragged)
    assert parsed["ids"].row_lengths().numpy().tolist() == sizes
    np.testing.assert_array_equal(parsed["ids"].flat_values.numpy(), columns["ids"])
    np.testing.assert_array_equal(parsed["dense"].flat_values.numpy(), columns["dense"])
    strings = [v.decode() for v in parsed["numpy"].flat_values.numpy()]
    assert strings == list(columns["numpy"])
    # The same bytes as blocks of a fixed size, where the sizes are those.
    assert encode_examples(columns, example_rows=[3] * 6 + [2]) == encode_examples(
        columns, 3
    )


@pytest.mark.parametrize("sizes", [[4, 0, 16], [4, 4], [30]])
def test_example_rows_must_cover_the_rows_once(sizes):
    with pytest.raises(ValueError, match="`example_rows` must be >= 1 each and sum"):
        encode_examples({"a": np.zeros(20, np.int64)}, example_rows=sizes)
