"""transforms.dense_block: every dense feature's input as one block of columns,
bit for bit the transforms computed one feature at a time; dense_value is its
one-feature case."""

import numpy as np
import pytest
import tensorflow as tf

from mtrec.features import dense_block
from mtrec.features import dense_value
from mtrec.features.dense import DenseFeature

SPECS = [
    DenseFeature("plain", normalization="none"),
    DenseFeature("scored"),
    DenseFeature("counts", log1p=True),
    DenseFeature("filled", fill_value=-2.5),
    DenseFeature("filled_log", log1p=True, fill_value=0.0, normalization="none"),
    DenseFeature("unbounded"),
]
STATS = {
    "plain": {"min": -1.0, "max": 1.0},
    "scored": {"mean": 3.0, "std": 7.0, "min": -20.0, "max": 20.0},
    "counts": {"mean": 2.0, "std": 0.5, "min": 0.0, "max": 9.0},
    "filled": {"mean": -1.0, "std": 3.0, "min": -5.0, "max": 5.0},
    "filled_log": {"min": 0.0, "max": 4.0},
    "unbounded": {"mean": 0.25, "std": 4.0},
}


def one_at_a_time(specs, raws, stats) -> np.ndarray:
    """The transforms written out per feature, as the layer computed them
    before the block: fill, log1p, clip, z-score."""
    columns = []
    for spec, raw in zip(specs, raws, strict=True):
        x = tf.cast(raw, tf.float32)
        if spec.fill_value is not None:
            x = tf.where(tf.math.is_nan(x), tf.constant(spec.fill_value), x)
        if spec.log1p:
            x = tf.sign(x) * tf.math.log1p(tf.abs(x))
        s = stats.get(spec.name, {})
        if s.get("min") is not None and s.get("max") is not None:
            x = tf.clip_by_value(x, s["min"], s["max"])
        if spec.normalization == "zscore":
            x = (x - s["mean"]) / s["std"]
        columns.append(x.numpy())
    return np.stack(columns, axis=1)


def test_equal_bit_for_bit_to_one_feature_at_a_time():
    rng = np.random.default_rng(0)
    raws = [
        tf.constant(rng.normal(scale=30.0, size=257).astype(np.float32)) for _ in SPECS
    ]
    # Missing cells where the features read NaN as missing.
    for j in (3, 4):
        values = raws[j].numpy()
        values[::5] = np.nan
        raws[j] = tf.constant(values)
    block = dense_block(SPECS, raws, STATS).numpy()
    assert block.shape == (257, len(SPECS)) and block.dtype == np.float32
    np.testing.assert_array_equal(block, one_at_a_time(SPECS, raws, STATS))
    assert not np.isnan(block).any()


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        (
            0,
            np.nan,
            "Input `plain` is NaN or infinite at row 2 of the batch (value nan)",
        ),
        (
            3,
            np.inf,
            "Input `filled` is NaN or infinite at row 2 of the batch (value inf)",
        ),
        (5, -np.inf, "Input `unbounded` is NaN or infinite at row 2 of the batch"),
    ],
)
def test_a_non_finite_value_is_refused_naming_the_feature_and_row(
    column, value, message
):
    raws = [np.zeros(4, np.float32) for _ in SPECS]
    raws[column][2] = value
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        dense_block(SPECS, [tf.constant(r) for r in raws], STATS)
    assert message in str(error.value)
    assert "give the feature a fill_value" in str(error.value)


def test_dense_value_is_the_one_feature_column():
    raws = [tf.constant([np.nan, -3.0, 1e6], tf.float32)]
    spec = SPECS[4]  # filled_log: fill 0, log1p, clip to [0, 4]
    value = dense_value(spec, raws[0], STATS[spec.name]).numpy()
    np.testing.assert_array_equal(value, one_at_a_time([spec], raws, STATS)[:, 0])
    assert value.shape == (3,)
