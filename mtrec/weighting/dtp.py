"""Dynamic task prioritisation: more weight to the tasks that score worse."""

from collections.abc import Mapping
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from mtrec.weighting.base import LossWeighting

#: Log keys whose values are errors (lower is better), mapped to ``1 / (1 + x)``.
ERROR_SUFFIXES = ("rmse", "mse", "mae", "loss")
#: KPIs are clipped to ``[KPI_FLOOR, 1 - KPI_FLOOR]``.
KPI_FLOOR = 1e-4


def dtp_weights(kpi, gamma: float) -> tf.Tensor:
    """``w_k = -(1 - κ_k)^γ · log(κ_k)`` (the focal-loss form)."""
    kpi = tf.clip_by_value(
        tf.convert_to_tensor(kpi, tf.float32), KPI_FLOOR, 1.0 - KPI_FLOOR
    )
    return -tf.pow(1.0 - kpi, gamma) * tf.math.log(kpi)


@tf.keras.utils.register_keras_serializable(package="mtrec")
class DynamicTaskPrioritization(LossWeighting):
    """Dynamic Task Prioritisation (DTP).

    Each task has a key performance indicator ``κ_k`` in ``[0, 1]``, tracked
    by an exponential moving average over epochs
    (``κ̄_k(t) = α κ_k(t) + (1 - α) κ̄_k(t-1)``, ``κ̄_k(1) = κ_k(1)``), and
    ``w_k = -(1 - κ̄_k)^γ · log(κ̄_k)``: a task the model does badly on gets
    more weight. The weights are 1 until the first epoch has ended.

    The KPI comes from the epoch's training logs: the task's AUC
    (``<task>_auc``) for binary tasks, ``1 / (1 + RMSE)`` (``<task>_rmse``)
    for regression tasks, or any log key given in ``kpis`` (keys ending in
    ``rmse``, ``mse``, ``mae`` or ``loss`` are errors, mapped to
    ``1 / (1 + x)``). ``Task.weight`` multiplies ``w_k``. ``on_epoch_end``
    updates the averages (non-trainable variables, restored on resume);
    ``MultiTaskRanker.fit`` attaches the callback that calls it
    (``mtrec.weighting.EpochUpdate``), so a plain ``model.fit`` trains with
    DTP.

    Args:
      task_names: the supervised outputs.
      task_kinds: ``{task: "binary" | "regression"}``; missing: binary.
      gamma: focusing parameter ``γ >= 0``. Default 1.
      alpha: weight of the newest KPI in the average, in ``(0, 1]``. Default 0.5.
      kpis: ``{task: log key}`` overriding the default KPI of a task.

    Example:

    >>> w = DynamicTaskPrioritization(["ctr", "ctcvr"], gamma=1.0)
    >>> w.on_epoch_end(0, {"ctr_auc": 0.75, "ctcvr_auc": 0.9})
    >>> [round(float(v), 4) for v in w.task_weights().values()]
    [0.0719, 0.0105]

    References:
      Guo, Haque, Huang, Yeung & Fei-Fei, "Dynamic Task Prioritization for
      Multitask Learning", ECCV 2018.
    """

    def __init__(
        self,
        task_names: Sequence[str],
        task_kinds: dict | None = None,
        gamma: float = 1.0,
        alpha: float = 0.5,
        kpis: dict | None = None,
        **kwargs,
    ):
        super().__init__(task_names, **kwargs)
        if not float(gamma) >= 0:
            raise ValueError(f"`gamma` must be >= 0. Received: `gamma={gamma!r}`")
        if not 0.0 < float(alpha) <= 1.0:
            raise ValueError(f"`alpha` must be in (0, 1]. Received: `alpha={alpha!r}`")
        task_kinds = dict(task_kinds or {})
        kpis = dict(kpis or {})
        unknown = sorted((set(task_kinds) | set(kpis)) - set(self.task_names))
        if unknown:
            raise ValueError(
                f"`task_kinds`/`kpis` name unknown tasks {unknown}; tasks are "
                f"{self.task_names}"
            )
        self.gamma = float(gamma)
        self.alpha = float(alpha)
        self.task_kinds = {k: task_kinds.get(k, "binary") for k in self.task_names}
        self.kpis = {
            k: kpis.get(
                k, f"{k}_auc" if self.task_kinds[k] == "binary" else f"{k}_rmse"
            )
            for k in self.task_names
        }
        self.kpi_average = self._task_state("kpi_average")
        self.epochs_seen = self.add_weight(
            name="epochs_seen",
            shape=(),
            dtype=tf.int64,
            initializer="zeros",
            trainable=False,
        )

    @classmethod
    def from_tasks(cls, tasks: Mapping, seed: int | None = None, **kwargs):
        kwargs.setdefault("task_kinds", {out: t.kind for out, t in tasks.items()})
        return super().from_tasks(tasks, **kwargs)

    def epoch_kpis(self, logs: Mapping) -> np.ndarray:
        """``κ_k`` of every task from an epoch's logs."""
        missing = [key for key in self.kpis.values() if key not in logs]
        if missing:
            raise KeyError(
                f"the epoch logs have no KPI {missing} for dynamic task "
                f"prioritisation. Logs: {sorted(logs)}"
            )
        values = []
        for k in self.task_names:
            key = self.kpis[k]
            value = float(logs[key])
            values.append(
                1.0 / (1.0 + value) if key.endswith(ERROR_SUFFIXES) else value
            )
        return np.array(values, np.float32)

    def compute_weights(self, losses, training=None):
        """``-(1 - κ̄)^γ log κ̄`` of the KPI averages; 1 before the first epoch."""
        weights = tf.where(
            self.epochs_seen >= 1,
            dtp_weights(self.kpi_average, self.gamma),
            tf.ones([self.num_tasks]),
        )
        return self._unstack(weights)

    def on_epoch_end(self, epoch: int, logs: Mapping) -> None:
        kpi = self.epoch_kpis(logs)
        if int(self.epochs_seen.numpy()) > 0:
            kpi = self.alpha * kpi + (1.0 - self.alpha) * self.kpi_average.numpy()
        self.kpi_average.assign(kpi)
        self.epochs_seen.assign_add(1)
        self._record(self.with_task_weight(self.compute_weights({})))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "task_kinds": self.task_kinds,
                "gamma": self.gamma,
                "alpha": self.alpha,
                "kpis": self.kpis,
            }
        )
        return config
