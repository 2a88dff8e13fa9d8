"""Random loss weighting: fresh random weights at every step."""

from collections.abc import Sequence

import tensorflow as tf

from mtrec.weighting.base import LossWeighting


@tf.keras.utils.register_keras_serializable(package="mtrec")
class RandomLossWeighting(LossWeighting):
    """Random loss weighting (RLW), a cheap baseline.

    At every training step ``z ~ N(0, I_K)`` and ``w = K · softmax(z)``,
    ``L = Σ_k Task.weight_k · w_k L_k``. (The paper's weights sum to 1; the
    factor ``K`` makes their mean 1, as in equal weighting, which only
    rescales the learning rate.) Outside training the weights are 1. The draws are
    ``tf.random.stateless_normal`` seeded by ``(seed, step)``, with ``step``
    a checkpointed counter, so a seeded run, and a resumed one, draws the same
    sequence.

    Args:
      task_names: the supervised outputs.
      seed: seed of the draws; ``None`` draws one at random.

    Example:

    >>> w = RandomLossWeighting(["ctr", "ctcvr"], seed=1)
    >>> total = w({"ctr": tf.constant(0.5), "ctcvr": tf.constant(0.1)}, training=True)
    >>> float(tf.reduce_sum(w.last_weights))
    2.0

    References:
      Lin et al., "Reasonable Effectiveness of Random Weighting: A Litmus Test
      for Multi-Task Learning", TMLR 2022.
    """

    seeded = True

    def __init__(self, task_names: Sequence[str], seed: int | None = None, **kwargs):
        super().__init__(task_names, **kwargs)
        self._seeded_stream(seed)

    def compute_weights(self, losses, training=None):
        if not training:
            return self._unstack(tf.ones([self.num_tasks]))
        z = tf.random.stateless_normal(
            [self.num_tasks],
            seed=tf.stack([tf.constant(self.seed, tf.int64), self.step]),
        )
        self.step.assign_add(1)
        return self._unstack(self.num_tasks * tf.nn.softmax(z))

    def get_config(self):
        config = super().get_config()
        config["seed"] = self.seed
        return config
