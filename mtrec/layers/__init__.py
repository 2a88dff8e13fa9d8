"""Keras layers for multi-task ranking: experts, gates, bottoms and towers."""

from mtrec.layers.mlp import MLP
from mtrec.layers.shared_bottom import SharedBottom
from mtrec.layers.tower import Tower

__all__ = ["MLP", "SharedBottom", "Tower"]
