"""The losses a multi-task ranker trains on: one TFRS ranking task per
supervised output, and the weighting that combines them."""

from collections.abc import Mapping

import tensorflow as tf
import tensorflow_recommenders as tfrs

from mtrec.models.task import Task
from mtrec.precision import precision_scope
from mtrec.weighting import FixedWeighting
from mtrec.weighting import LossWeighting
from mtrec.weighting import build_weighting


def ranking_task(
    task: Task, output: str, from_logits: bool = False, metrics: bool = True
) -> tfrs.tasks.Ranking:
    """The TFRS task (loss + training metrics) for one supervised output.

    Args:
      task: the task (its ``kind`` picks log loss or MSE).
      output: the output name, prefix of the loss and metric names.
      from_logits: a binary task's predictions are logits ``z``: the log loss
        is ``max(z, 0) - z y + log(1 + exp(-|z|))`` (exact for any ``z``)
        instead of the log of a probability clipped to ``[1e-7, 1 - 1e-7]``,
        and the AUC applies the sigmoid first.
      metrics: with ``False`` the task carries no training metric (no per-step
        AUC or RMSE), only its loss.

    The task returns per-example losses (``Reduction.NONE``, times the sample
    weight): ``MultiTaskRanker.task_losses`` averages them over the batch
    itself, which is what lets the model train under a ``tf.distribute``
    strategy (Keras refuses automatic reduction there).

    Built as a float32 layer whatever the global precision policy
    (``mtrec.precision``): under ``mixed_bfloat16`` it would cast labels and
    predictions to bfloat16, losing the loss's and the AUC's precision.
    """
    with precision_scope("float32"):
        return _ranking_task(task, output, from_logits, metrics)


def _ranking_task(
    task: Task, output: str, from_logits: bool, metrics: bool
) -> tfrs.tasks.Ranking:
    if task.kind == "binary":
        return tfrs.tasks.Ranking(
            loss=tf.keras.losses.BinaryCrossentropy(
                from_logits=from_logits,
                reduction=tf.keras.losses.Reduction.NONE,
                name=f"{output}_logloss",
            ),
            metrics=[
                tf.keras.metrics.AUC(
                    name=f"{output}_auc", num_thresholds=1000, from_logits=from_logits
                )
            ]
            if metrics
            else None,
            name=f"task_{output}",
        )
    return tfrs.tasks.Ranking(
        loss=tf.keras.losses.MeanSquaredError(
            reduction=tf.keras.losses.Reduction.NONE, name=f"{output}_mse"
        ),
        metrics=[tf.keras.metrics.RootMeanSquaredError(name=f"{output}_rmse")]
        if metrics
        else None,
        name=f"task_{output}",
    )


def resolve_weighting(weighting, supervised: Mapping[str, Task]) -> LossWeighting:
    """The model's ``LossWeighting`` from its ``weighting`` argument.

    Args:
      weighting: an instance (kept), a registry name (built with
        ``mtrec.weighting.build_weighting`` for ``supervised``), ``None``
        (``"fixed"``).
      supervised: ``{output: Task}``.

    Raises:
      ValueError: an unknown name, a value of another type, or a weighting
        for other outputs than ``supervised``.
    """
    if weighting is None:
        resolved = FixedWeighting.from_tasks(supervised)
    elif isinstance(weighting, LossWeighting):
        resolved = weighting
    elif isinstance(weighting, str):
        resolved = build_weighting(weighting, supervised)
    else:
        raise ValueError(
            "`weighting` must be a LossWeighting, a name of "
            f"mtrec.weighting.WEIGHTINGS or None. Received: `weighting={weighting!r}`"
        )
    if list(resolved.task_names) != list(supervised):
        raise ValueError(
            f"The weighting is for {resolved.task_names}, the model trains "
            f"{list(supervised)}"
        )
    return resolved


def trackers(pattern: str, outputs) -> dict[str, tf.keras.metrics.Mean]:
    """``{output: Mean(name=pattern.format(output))}``: a running mean per output
    (a ranker's ``<output>_loss`` and ``weight_<output>``)."""
    return {out: tf.keras.metrics.Mean(name=pattern.format(out)) for out in outputs}
