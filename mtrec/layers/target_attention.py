"""Target attention (DIN): pools a behaviour sequence by relevance to a candidate."""

from collections.abc import Sequence

import tensorflow as tf

from mtrec.layers import arguments
from mtrec.layers import mlp as mlp_lib
from mtrec.layers import validation

NORMALIZATIONS = ("none", "softmax")


@tf.keras.utils.register_keras_serializable(package="mtrec")
class TargetAttention(tf.keras.layers.Layer):
    """Weights each key of a sequence by its relevance to a query and sums them.

    The local activation unit of DIN (Zhou et al., 2018, "Deep Interest Network
    for Click-Through Rate Prediction"): for a query ``q`` (the candidate
    item's embedding) and keys ``k_1..k_n`` (the embeddings of the user's
    behaviours) with mask ``m_i``,

        a_i = w^T MLP([q, k_i, q - k_i, q * k_i]) + b
        w_i = a_i                                   (normalization="none", DIN)
        w_i = softmax_{j: m_j}(a)_i                 (normalization="softmax")
        output = Σ_i m_i w_i k_i

    Unnormalised weights (DIN's choice) keep the intensity of the interest:
    three behaviours matching the candidate weigh more than one. A sequence
    with no valid key gives the zero vector. Pooling by relevance lets the
    model see "the candidate's category is among the recent ones", which a
    mean of the sequence hides.

    Args:
      units: hidden sizes of the attention MLP, positive ints. Default
        ``(32,)``; empty makes the score linear in the features.
      activation: activation of the hidden layers. Default ``"relu"``.
      normalization: ``"none"`` (default) or ``"softmax"`` over valid keys.
      kernel_initializer: initialiser of the kernels; the MLP and the score
        layer each get a copy derived by their names (see
        ``derive_initializer``). Default ``"glorot_uniform"``.

    Call arguments:
      inputs: ``[query, keys]`` with ``query`` ``(batch, d)`` and ``keys``
        ``(batch, n, d)``.
      mask: optional ``(batch, n)`` boolean, True for valid keys. Default all
        valid.
      training: Python bool; passed to the MLP (which has no dropout).

    Returns:
      ``(batch, d)`` pooled keys.

    Sublayers: ``mlp`` (an :class:`MLP` on ``(batch, n, 4 d)``) and
    ``score`` (a one-unit ``Dense``).

    Example:

    >>> layer = TargetAttention(units=[8])
    >>> query, keys = tf.ones((2, 4)), tf.ones((2, 3, 4))
    >>> mask = tf.constant([[True, True, False], [False, False, False]])
    >>> out = layer([query, keys], mask=mask)
    >>> out.shape
    TensorShape([2, 4])
    >>> float(tf.reduce_sum(tf.abs(out[1])))
    0.0

    References:
      Zhou et al., "Deep Interest Network for Click-Through Rate Prediction",
      KDD 2018.
    """

    def __init__(
        self,
        units: Sequence[int] = (32,),
        activation: str = "relu",
        normalization: str = "none",
        kernel_initializer: str | dict = "glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = validation.check_units("units", units, allow_empty=True)
        self.activation = validation.check_activation("activation", activation)
        self.normalization = validation.check_choice(
            "normalization", normalization, NORMALIZATIONS
        )
        self.kernel_initializer = validation.check_initializer(
            "kernel_initializer", kernel_initializer
        )
        self.mlp = mlp_lib.MLP(
            self.units,
            activation=self.activation,
            kernel_initializer=mlp_lib.derive_initializer(
                self.kernel_initializer, "mlp"
            ),
            name="mlp",
        )
        self.score = mlp_lib.linear_head(1, self.kernel_initializer, name="score")

    def build(self, input_shape):
        query_shape, keys_shape = input_shape
        query_shape = tf.TensorShape(query_shape)
        keys_shape = tf.TensorShape(keys_shape)
        if query_shape[-1] != keys_shape[-1]:
            raise ValueError(
                f"The query and keys of `{self.name}` must have the same width. "
                f"Received: query shape {query_shape}, keys shape {keys_shape}"
            )
        features_shape = keys_shape[:-1].concatenate([4 * keys_shape[-1]])
        hidden = mlp_lib.build_in_scope(self.mlp, features_shape)
        mlp_lib.build_in_scope(self.score, hidden)
        super().build(input_shape)

    def call(self, inputs, mask=None, training=None):
        query, keys = inputs
        queries = tf.broadcast_to(query[:, None, :], tf.shape(keys))
        features = tf.concat([queries, keys, queries - keys, queries * keys], axis=-1)
        scores = tf.squeeze(self.score(self.mlp(features, training=training)), -1)
        if mask is None:
            mask = tf.ones_like(scores, dtype=tf.bool)
        if self.normalization == "softmax":
            scores = tf.where(mask, scores, tf.fill(tf.shape(scores), -1e9))
            weights = tf.nn.softmax(scores, axis=-1)
        else:
            weights = scores
        weights = tf.where(mask, weights, tf.zeros_like(weights))
        return tf.einsum("bn,bnd->bd", weights, keys)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        query_shape, _ = input_shape
        return tf.TensorShape(query_shape)

    def get_config(self):
        return {**super().get_config(), **arguments.constructor_config(self)}
