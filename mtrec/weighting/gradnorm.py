"""GradNorm: learnable weights that balance the tasks' gradient norms."""

from collections.abc import Sequence

import tensorflow as tf

from mtrec.weighting import gradients as G
from mtrec.weighting.base import EPSILON
from mtrec.weighting.base import GradientWeighting
from mtrec.weighting.base import reference_losses


def gradnorm_weight_gradient(weights, norms, loss_ratios, alpha: float) -> tf.Tensor:
    """``∂L_grad / ∂w`` of GradNorm's auxiliary loss.

    With ``G_k = w_k n_k`` (``n_k = ||∇_W L_k||``), ``Ḡ = mean_k G_k``,
    ``r_k = L̃_k / mean_j L̃_j`` (``L̃_k = L_k(t) / L_k(0)``) and the target
    ``T_k = sg(Ḡ · r_k^α)``: ``L_grad = Σ_k |G_k - T_k|``, so
    ``∂L_grad / ∂w_k = sign(G_k - T_k) · n_k``.
    """
    weights = tf.convert_to_tensor(weights, tf.float32)
    norms = tf.convert_to_tensor(norms, tf.float32)
    loss_ratios = tf.convert_to_tensor(loss_ratios, tf.float32)
    g = weights * norms
    rate = loss_ratios / tf.maximum(tf.reduce_mean(loss_ratios), EPSILON)
    target = tf.stop_gradient(tf.reduce_mean(g) * tf.pow(rate, alpha))
    return tf.sign(g - target) * norms


def renormalize(weights) -> tf.Tensor:
    """``K · w / Σ w`` after clipping at a small positive floor."""
    weights = tf.maximum(tf.convert_to_tensor(weights, tf.float32), 1e-3)
    size = tf.cast(tf.size(weights), tf.float32)
    return size * weights / tf.reduce_sum(weights)


@tf.keras.utils.register_keras_serializable(package="mtrec")
class GradNorm(GradientWeighting):
    """GradNorm (Chen et al.): learnable loss weights trained on gradient norms.

    The model minimises ``L = Σ_k w_k L_k`` with the ``w_k`` held fixed. In
    the same step the weights take one optimiser step on
    ``L_grad = Σ_k |G_k - sg(Ḡ · r_k^α)|``, where
    ``G_k = ||∇_W w_k L_k||`` is the norm of the weighted task gradient on the
    last shared layer's kernel ``W``, ``Ḡ`` the mean of the ``G_k``, and
    ``r_k = L̃_k / mean_j L̃_j`` the relative inverse training rate with
    ``L̃_k = L_k(t) / L_k(0)``: a task that has trained less (higher ``r_k``)
    is pushed towards a larger gradient norm. After each step the weights are
    renormalised to ``Σ_k w_k = K``. The weights are trainable variables
    (updated by the model's optimiser, saved in checkpoints); the initial
    losses are non-trainable variables.

    ``W`` is the paper's "last shared layer of weights", defined per backbone
    by ``mtrec.models.backbones.shared_layer_variables`` (``SharedBottom``:
    its last dense kernel; ``OMoE``/``MMoE``: every expert's last kernel;
    ``CGC``/``PLE``: the (last level's) shared experts' last kernels); with
    several variables, ``n_k`` is the norm of their concatenation.

    A ``Task.weight`` other than 1 is refused (``ValueError``): GradNorm
    learns ``w_k`` so that ``w_k ||∇_W L_k||`` meets its target, so a
    constant factor on ``L_k`` is divided out by the learned weight.

    Args:
      task_names: the supervised outputs.
      alpha: the asymmetry ``α >= 0``: 0 equalises the gradient norms,
        larger values favour the slower tasks. Default 1.5.

    References:
      Chen, Badrinarayanan, Lee & Rabinovich, "GradNorm: Gradient
      Normalization for Adaptive Loss Balancing in Deep Multitask Networks",
      ICML 2018.
    """

    uses_shared_layer = True
    combines_task_weight = False
    task_weight_refusal = "the learned weights would divide a constant factor out"

    def __init__(self, task_names: Sequence[str], alpha: float = 1.5, **kwargs):
        super().__init__(task_names, **kwargs)
        if not float(alpha) >= 0:
            raise ValueError(f"`alpha` must be >= 0. Received: `alpha={alpha!r}`")
        self.alpha = float(alpha)
        self.loss_weights = self._task_state(
            "loss_weights", initializer="ones", trainable=True
        )
        self.initial_losses = self._task_state("initial_losses")
        self.recorded = self._task_state("recorded")

    def combine_gradients(self, losses, task_grads, shared, shared_layer=()):
        self._check(losses)
        if not shared_layer:
            raise ValueError(
                "GradNorm needs the last shared layer's variables `W`; the model "
                "gave none (a single task, or a backbone with no shared layer)."
            )
        weights = tf.identity(self.loss_weights)
        norms = tf.stack(
            [
                tf.sqrt(G.squared_norm([task_grads[k][i] for i in shared_layer]))
                for k in self.task_names
            ]
        )
        current = tf.stop_gradient(self._stack(losses))
        initial = reference_losses(
            self.initial_losses, self.recorded, current, training=True
        )
        ratios = current / tf.maximum(initial, EPSILON)
        weight_grad = gradnorm_weight_gradient(weights, norms, ratios, self.alpha)
        grads = G.weighted_sum([task_grads[k] for k in self.task_names], weights)
        by_task = self._unstack(weights)
        total = self.combine(losses, by_task)
        return grads, total, by_task, [(weight_grad, self.loss_weights)]

    def after_apply(self) -> None:
        self.loss_weights.assign(renormalize(self.loss_weights))

    def get_config(self):
        config = super().get_config()
        config["alpha"] = self.alpha
        return config
