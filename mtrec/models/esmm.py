"""ESMM: the entire-space multi-task model for post-click conversion."""

from collections.abc import Sequence

import tensorflow as tf

from mtrec.models.ranker import MultiTaskRanker
from mtrec.models.task import EvalTarget
from mtrec.models.task import Task


def esmm_supervised_tasks(
    ctr_task: Task, cvr_task: Task, extra_tasks: Sequence[Task], ctcvr_name: str
) -> dict[str, Task]:
    """ESMM's loss outputs: CTR, CTCVR (the CVR label over all impressions,
    with the CVR task's weight), then the extra tasks."""
    ctcvr = Task(ctcvr_name, cvr_task.label, weight=cvr_task.weight)
    out = {ctr_task.name: ctr_task, ctcvr_name: ctcvr}
    out.update({t.name: t for t in extra_tasks})
    return out


@tf.keras.utils.register_keras_serializable(package="mtrec")
class ESMM(MultiTaskRanker):
    """Entire Space Multi-task Model over any backbone.

    ``pCTR = sigmoid(z_ctr)``, ``pCVR = sigmoid(z_cvr)``,
    ``pCTCVR = pCTR × pCVR``. Both supervised losses are over all impressions:
    ``L = w_ctr · logloss(click, pCTR) + w_cvr · logloss(conversion, pCTCVR)``;
    the first is computed from the logit ``z_ctr`` (numerically stable), the
    second from the product of probabilities (clipped to ``[1e-7, 1 - 1e-7]``).
    The CVR tower is never fitted on clicked rows alone; it learns only through
    the product, which removes the sample-selection bias of a CVR model trained
    on clicks.

    Args:
      feature_layer: raw inputs -> ``(batch, d)``.
      backbone: ``(batch, d)`` -> ``{ctr name, cvr name, *extra names: (batch, d_k)}``.
      ctr_task: the click task, e.g. ``Task("ctr", "click")``.
      cvr_task: the conversion task, with ``condition`` = the click label, e.g.
        ``Task("cvr", "conversion", condition="click")``; its ``weight`` weighs
        the CTCVR loss.
      extra_tasks: further tasks trained as in ``MultiTaskRanker``.
      ctcvr_name: name of the product output. Default ``"ctcvr"``.
      **kwargs: tower, weighting and ``training_metrics`` arguments of
        ``MultiTaskRanker``.

    Call returns ``{ctr, cvr, ctcvr, *extras: (batch, 1)}``.

    References:
      Ma et al., "Entire Space Multi-Task Model: An Effective Approach for
      Estimating Post-Click Conversion Rate", SIGIR 2018.
    """

    def __init__(
        self,
        feature_layer: tf.keras.layers.Layer,
        backbone: tf.keras.layers.Layer,
        ctr_task: Task,
        cvr_task: Task,
        extra_tasks: Sequence[Task] = (),
        ctcvr_name: str = "ctcvr",
        **kwargs,
    ):
        if ctr_task.kind != "binary" or cvr_task.kind != "binary":
            raise ValueError("ESMM's CTR and CVR tasks must both be binary.")
        if cvr_task.condition != ctr_task.label:
            raise ValueError(
                f"ESMM's CVR task must be conditioned on the click label: set "
                f"`condition: {ctr_task.label}` on task {cvr_task.name!r} "
                f"(received condition={cvr_task.condition!r})."
            )
        if ctr_task.condition is not None:
            raise ValueError(
                f"ESMM's CTR task {ctr_task.name!r} is over all impressions; "
                "remove its `condition`."
            )
        names = [ctr_task.name, cvr_task.name, *(t.name for t in extra_tasks)]
        if ctcvr_name in names:
            raise ValueError(f"`ctcvr_name` {ctcvr_name!r} clashes with a task name.")
        super().__init__(
            feature_layer,
            backbone,
            [ctr_task, cvr_task, *extra_tasks],
            supervised=esmm_supervised_tasks(
                ctr_task, cvr_task, extra_tasks, ctcvr_name
            ),
            **kwargs,
        )
        self.ctr_task = ctr_task
        self.cvr_task = cvr_task
        self.ctcvr_name = ctcvr_name

    def get_config(self) -> dict:
        """ESMM's own arguments replace the base's ``tasks`` and ``supervised``."""
        config = super().get_config()
        del config["tasks"], config["supervised"]
        config.update(
            {
                "ctr_task": self.ctr_task.to_dict(),
                "cvr_task": self.cvr_task.to_dict(),
                "extra_tasks": [t.to_dict() for t in self.extra_tasks],
                "ctcvr_name": self.ctcvr_name,
            }
        )
        return config

    @property
    def extra_tasks(self) -> list[Task]:
        return list(self.tasks[2:])

    @property
    def prediction_names(self) -> list[str]:
        return [
            self.ctr_task.name,
            self.cvr_task.name,
            self.ctcvr_name,
            *(t.name for t in self.extra_tasks),
        ]

    @classmethod
    def _deserialize_arguments(cls, config: dict) -> dict:
        config = super()._deserialize_arguments(config)
        for key in ("ctr_task", "cvr_task"):
            if isinstance(config.get(key), dict):
                config[key] = Task.from_dict(config[key])
        if "extra_tasks" in config:
            config["extra_tasks"] = [Task.from_dict(t) for t in config["extra_tasks"]]
        return config

    def evaluation_targets(self) -> list[EvalTarget]:
        ctr, cvr = self.ctr_task, self.cvr_task
        return [
            EvalTarget(ctr.name, ctr.label),
            EvalTarget(cvr.name, cvr.label, condition=ctr.label),
            EvalTarget(self.ctcvr_name, cvr.label),
            *(
                EvalTarget(t.name, t.label, t.kind, t.condition)
                for t in self.extra_tasks
            ),
        ]

    def call(self, inputs, training=None, return_logits=False):
        logits = self.tower_logits(inputs, training=training)
        outputs = self.activate(logits)
        ctr, cvr = outputs[self.ctr_task.name], outputs[self.cvr_task.name]
        result = {
            self.ctr_task.name: ctr,
            self.cvr_task.name: cvr,
            self.ctcvr_name: ctr * cvr,
        }
        result.update({t.name: outputs[t.name] for t in self.extra_tasks})
        return (result, logits) if return_logits else result
