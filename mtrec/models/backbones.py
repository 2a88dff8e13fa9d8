"""What the ranker asks of a backbone: is it gated, and its last shared layer.

Both are the backbone layers' own interface (:mod:`mtrec.layers`): gated
backbones are :class:`~mtrec.layers.GatedBackbone` instances, and every
backbone states its last shared layer with ``shared_layer_variables()``.
"""

import tensorflow as tf

from mtrec.layers import GatedBackbone


def shared_layer_variables(backbone: tf.keras.layers.Layer) -> list[tf.Variable]:
    """The variables of the backbone's last shared layer (GradNorm's ``W``).

    GradNorm (Chen et al., ICML 2018) measures each task's gradient norm on
    "the last shared layer of weights", the layer that produces the
    representation every task reads; each backbone says which that is
    (``SharedBottom``: its last dense kernel; ``OMoE``/``MMoE``: the experts'
    last kernel; ``CGC``/``PLE``: the shared experts' last kernel). An empty
    list means the backbone has no shared layer; the ranker then uses the
    layer below (the last cross layer, or the embeddings).

    Raises:
      TypeError: the backbone has no ``shared_layer_variables()`` method.
    """
    method = getattr(backbone, "shared_layer_variables", None)
    if not callable(method):
        raise TypeError(
            f"GradNorm needs the last shared layer of backbone "
            f"{type(backbone).__name__}: give the layer a `shared_layer_variables()` "
            "method returning that layer's kernel(s), as mtrec's backbones have."
        )
    return list(method())


__all__ = ["GatedBackbone", "shared_layer_variables"]
