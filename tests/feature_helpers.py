"""A feature layer shared by model tests (imported as ``feature_helpers``:
tests/ is on the path through its conftest)."""


def city_price_features():
    """A fresh two-feature layer (categorical ``city`` in a, b, c; dense
    ``price``, standard) for model tests that need any feature layer."""
    from mtrec.features import FeatureEmbedding

    return FeatureEmbedding(
        [
            {"name": "city", "kind": "categorical", "embedding_dim": 4},
            {"name": "price", "kind": "dense"},
        ],
        vocabularies={"city": ["a", "b", "c"]},
        dense_stats={"price": {"mean": 0.0, "std": 1.0, "boundaries": None}},
    )
