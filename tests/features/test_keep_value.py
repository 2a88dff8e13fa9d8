"""A bucketised dense feature with ``keep_value``: its bucket embedding and
its z-scored value, both in the model input."""

import numpy as np
import pytest
import tensorflow as tf

from mtrec.features import DenseFeature
from mtrec.features import FeatureEmbedding
from mtrec.features import FeatureSet
from mtrec.features import bucket_columns

FEATURES = [
    {"name": "city", "kind": "categorical", "embedding_dim": 2},
    {
        "name": "gain",
        "kind": "dense",
        "log1p": True,
        "boundaries": [0.5, 2.0],
        "keep_value": True,
        "embedding_dim": 2,
    },
    {"name": "price", "kind": "dense"},
]
STATS = {
    "gain": {"mean": 1.0, "std": 2.0, "boundaries": [0.5, 2.0]},
    "price": {"mean": 10.0, "std": 5.0, "boundaries": None},
}
BATCH = {
    "city": tf.constant(["a", "b", "zz"]),
    "gain": tf.constant([0.0, np.e - 1.0, 999.0]),
    "price": tf.constant([10.0, 20.0, 0.0]),
}


def _layer(order: str) -> FeatureEmbedding:
    layer = FeatureEmbedding(FEATURES, {"city": ["a", "b"]}, STATS, output_order=order)
    layer(BATCH)
    for name in layer.embedding_table_names:  # row i: [i, 10 i]
        rows, dim = layer.embedding_table(name).shape
        layer.set_embedding_table(
            name, np.arange(rows)[:, None] * (10.0 ** np.arange(dim))[None, :]
        )
    return layer


@pytest.mark.parametrize(
    "order, columns",
    [
        # grouped: the gathered rows (city, gain's bucket), then the values
        # in feature order (gain's, price's).
        ("grouped", {"city": [0, 1], "bucket": [2, 3], "gain": 4, "price": 5}),
        ("features", {"city": [0, 1], "bucket": [2, 3], "gain": 4, "price": 5}),
    ],
)
def test_the_input_holds_the_bucket_embedding_and_the_zscored_value(order, columns):
    layer = _layer(order)
    out = layer(BATCH).numpy()
    assert layer.output_dim == 2 + (2 + 1) + 1 == out.shape[1]
    # log1p(gain): 0, 1, 6.9 -> buckets 0, 1, 2 (rows [b, 10 b]).
    np.testing.assert_array_equal(
        out[:, columns["bucket"]], [[0.0, 0.0], [1.0, 10.0], [2.0, 20.0]]
    )
    # The value: (log1p(gain) - 1) / 2.
    np.testing.assert_allclose(
        out[:, columns["gain"]],
        [-0.5, 0.0, (np.log1p(999.0) - 1.0) / 2.0],
        rtol=1e-6,
    )
    np.testing.assert_allclose(out[:, columns["price"]], [0.0, 2.0, -2.0])
    # city: a, b -> rows 1, 2 (row 0 the OOV row).
    np.testing.assert_array_equal(out[:, columns["city"]], [[1, 10], [2, 20], [0, 0]])


def test_features_order_puts_the_value_right_after_its_bucket():
    features = [FEATURES[2], FEATURES[1]]  # price, then gain
    layer = FeatureEmbedding(features, None, STATS, output_order="features")
    out = layer({k: BATCH[k] for k in ("price", "gain")}).numpy()
    # price's value, gain's bucket embedding (2 columns), gain's value.
    assert out.shape == (3, 4)
    np.testing.assert_allclose(out[:, 0], [0.0, 2.0, -2.0])
    np.testing.assert_allclose(
        out[:, 3], [-0.5, 0.0, (np.log1p(999.0) - 1) / 2], rtol=1e-6
    )
    grouped = FeatureEmbedding(features, None, STATS)
    grouped.set_embedding_table("gain", layer.embedding_table("gain"))
    mixed = grouped({k: BATCH[k] for k in ("price", "gain")}).numpy()
    # grouped: gain's bucket embedding, then the values: price, gain.
    np.testing.assert_allclose(mixed, out[:, [1, 2, 0, 3]])


def test_keep_value_round_trips_and_is_validated():
    fs = FeatureSet.from_dicts(FEATURES)
    assert fs.to_dicts()[1]["keep_value"] is True
    assert "keep_value" not in fs.to_dicts()[2]
    assert FeatureSet.from_dicts(fs.to_dicts()).to_dicts() == fs.to_dicts()
    layer = FeatureEmbedding.from_config(_layer("grouped").get_config())
    assert layer.feature_set["gain"].keep_value is True
    assert layer.output_dim == 6
    with pytest.raises(ValueError) as error:
        DenseFeature("price", keep_value=True)
    assert str(error.value) == (
        "Feature 'price': `keep_value` keeps the value beside the bucket "
        "embedding; give `boundaries` or `num_buckets` with it. Received: "
        "`keep_value=True` without buckets."
    )
    with pytest.raises(ValueError) as error:
        DenseFeature("price", num_buckets=4, keep_value="yes")
    assert str(error.value) == (
        "Feature 'price': `keep_value` must be a boolean. Received: `keep_value='yes'`"
    )


def test_bucket_columns_equals_each_features_discretization():
    rng = np.random.default_rng(0)
    boundaries = [sorted(rng.normal(size=n).round(2).tolist()) for n in (1, 5, 63, 12)]
    # Random values, each boundary itself, and values just beside them.
    columns = []
    for bounds in boundaries:
        b = np.asarray(bounds, np.float32)
        extra = np.concatenate([b, np.nextafter(b, -np.inf), np.nextafter(b, np.inf)])
        values = np.concatenate([rng.normal(scale=2, size=200), extra]).astype(
            np.float32
        )
        columns.append(np.resize(values, 400))
    columns = np.stack(columns)
    ids = bucket_columns(tf.constant(columns), boundaries).numpy()
    assert ids.shape == (4, 400) and ids.dtype == np.int64
    for row, bounds in enumerate(boundaries):
        expected = tf.keras.layers.Discretization(bin_boundaries=bounds)(
            columns[row]
        ).numpy()
        np.testing.assert_array_equal(ids[row], expected)
