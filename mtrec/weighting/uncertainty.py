"""Homoscedastic-uncertainty weighting with a learnable log-variance per task."""

from collections.abc import Mapping
from collections.abc import Sequence

import tensorflow as tf

from mtrec.weighting.base import LossWeighting

#: Task kinds and the factor ``c`` of their likelihood term.
_FACTORS = {"binary": 1.0, "regression": 0.5}


@tf.keras.utils.register_keras_serializable(package="mtrec")
class UncertaintyWeighting(LossWeighting):
    """Kendall et al.'s uncertainty weighting.

    With a learnable log-variance ``s_k = log σ_k²`` per task:

    - classification (``binary``): ``exp(-s_k) · L_k + s_k``;
    - regression: ``0.5 · exp(-s_k) · L_k + 0.5 · s_k``;

    ``L = Σ_k c_k (exp(-s_k) L_k + s_k)`` with ``c_k = 1`` or ``0.5``. The
    effective weight of task ``k`` is ``c_k exp(-s_k)``; at the optimum over
    ``s_k``, ``exp(s_k) = L_k``, so noisier (higher-loss) tasks are weighed
    down. The ``s_k`` are trainable variables, updated by the model's
    optimiser and saved in checkpoints.

    A ``Task.weight`` other than 1 is refused (``ValueError``): a constant
    factor ``a_k`` on ``L_k`` moves the optimum to ``exp(s_k) = a_k L_k``,
    where the effective weight times ``a_k`` is again ``c_k / L_k``, so the
    factor would be learned away.

    Args:
      task_names: the supervised outputs.
      task_kinds: ``{task: "binary" | "regression"}``; missing tasks are
        binary.
      initial_log_variance: starting ``s_k``. Default 0 (weights 1 and 0.5).

    Example:

    >>> w = UncertaintyWeighting(["ctr", "dwell"], task_kinds={"dwell": "regression"})
    >>> float(w({"ctr": tf.constant(0.5), "dwell": tf.constant(2.0)}))
    1.5

    References:
      Kendall, Gal & Cipolla, "Multi-Task Learning Using Uncertainty to Weigh
      Losses for Scene Geometry and Semantics", CVPR 2018.
    """

    combines_task_weight = False
    task_weight_refusal = "the learned variances would absorb a constant factor"

    def __init__(
        self,
        task_names: Sequence[str],
        task_kinds: dict | None = None,
        initial_log_variance: float = 0.0,
        **kwargs,
    ):
        super().__init__(task_names, **kwargs)
        task_kinds = dict(task_kinds or {})
        unknown = sorted(set(task_kinds) - set(self.task_names))
        if unknown:
            raise ValueError(
                f"`task_kinds` names unknown tasks {unknown}; tasks are "
                f"{self.task_names}"
            )
        for name, kind in task_kinds.items():
            if kind not in _FACTORS:
                raise ValueError(
                    f"`task_kinds[{name!r}]` must be one of {sorted(_FACTORS)}. "
                    f"Received: {kind!r}"
                )
        self.task_kinds = {k: task_kinds.get(k, "binary") for k in self.task_names}
        self.initial_log_variance = float(initial_log_variance)
        self.factors = tf.constant(
            [_FACTORS[self.task_kinds[k]] for k in self.task_names], tf.float32
        )
        self.log_variance = self._task_state(
            "log_variance",
            initializer=tf.keras.initializers.Constant(self.initial_log_variance),
            trainable=True,
        )

    @classmethod
    def from_tasks(cls, tasks: Mapping, seed: int | None = None, **kwargs):
        kwargs.setdefault("task_kinds", {out: t.kind for out, t in tasks.items()})
        return super().from_tasks(tasks, **kwargs)

    def compute_weights(self, losses, training=None):
        return self._unstack(self.factors * tf.exp(-self.log_variance))

    def combine(self, losses, weights):
        weighted = super().combine(losses, weights)
        return weighted + tf.reduce_sum(self.factors * self.log_variance)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "task_kinds": self.task_kinds,
                "initial_log_variance": self.initial_log_variance,
            }
        )
        return config
