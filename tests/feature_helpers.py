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


def click_buy_rows(n: int = 1000, seed: int = 0) -> dict:
    """``n`` random rows for :func:`city_price_features`: ``city`` (a to d),
    ``price``, and labels ``click`` and ``buy`` (a buy only after a click)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    click = (rng.random(n) < 0.5).astype(np.float32)
    return {
        "city": rng.choice(["a", "b", "c", "d"], n),
        "price": rng.normal(size=n).astype(np.float32),
        "click": click,
        "buy": click * (rng.random(n) < 0.5).astype(np.float32),
    }


def click_buy_ranker(backbone_cls=None, **kwargs):
    """A compiled, seeded ``MultiTaskRanker`` on :func:`city_price_features`
    with tasks ``click`` and ``buy`` over ``backbone_cls`` (default
    ``SharedBottom``) of units [8]; ``kwargs`` go to the ranker."""
    import tensorflow as tf

    from mtrec.layers import SharedBottom
    from mtrec.models import MultiTaskRanker
    from mtrec.models import Task

    tf.keras.utils.set_random_seed(0)
    model = MultiTaskRanker(
        city_price_features(),
        (backbone_cls or SharedBottom)(["click", "buy"], units=[8]),
        [Task("click", "click"), Task("buy", "buy")],
        tower_units=[4],
        **kwargs,
    )
    model.compile(optimizer="adam")
    return model


def branching_bottom_class():
    """A ``SharedBottom`` subclass with Python control flow on a tensor
    (always true), which only AutoGraph can trace."""
    import tensorflow as tf

    from mtrec.layers import SharedBottom

    class Branching(SharedBottom):
        def call(self, inputs, training=None):
            if tf.reduce_min(inputs) > -1e9:
                return super().call(inputs, training=training)
            return super().call(-inputs, training=training)

    return Branching
