"""The multi-task ranker's training steps beyond ``tfrs.Model.train_step``:
on synchronous replicas, and with a gradient-based loss weighting.

``MultiTaskRanker.train_step`` picks one: a loss-based weighting on one
replica goes through ``tfrs.Model.train_step`` on the weighted total;
:func:`replicated_train_step` is that step under a ``tf.distribute``
strategy with several replicas; :func:`gradient_train_step` runs a
``GradientWeighting`` (``grad_norm_static``, ``gradnorm``, ``pcgrad``) on one
gradient per task.
"""

import tensorflow as tf

from mtrec.layers import separate_matmuls
from mtrec.weighting import gradients


def regularization_loss(model: tf.keras.Model) -> tf.Tensor:
    """The sum of the layers' penalties, as ``tfrs.Model.train_step`` adds."""
    return tf.reduce_sum([tf.reduce_sum(term) for term in model.losses])


def step_metrics(model, loss, regularization) -> dict[str, tf.Tensor]:
    """What a step returns: every metric's result, then ``loss``,
    ``regularization_loss`` and ``total_loss``, as ``tfrs.Model.train_step``."""
    metrics = {metric.name: metric.result() for metric in model.metrics}
    metrics["loss"] = loss
    metrics["regularization_loss"] = regularization
    metrics["total_loss"] = loss + regularization
    return metrics


def replicated_train_step(model, inputs, replicas: int) -> dict[str, tf.Tensor]:
    """``tfrs.Model.train_step`` on one of ``replicas`` synchronous replicas.

    Each replica's loss is the mean over its share of the batch, and the
    optimiser sums the replicas' gradients: scaling each replica's loss by
    ``1 / replicas`` makes the update that of the mean over the global
    batch (and counts the regularization and any loss-weighting term once).
    Every reported value is divided by ``replicas`` too, as Keras sums the
    replicas' logs.

    Args:
      model: a ``MultiTaskRanker``.
      inputs: the batch (features and labels).
      replicas: the strategy's ``num_replicas_in_sync``.
    """
    with tf.GradientTape() as tape:
        loss = model.compute_loss(inputs, training=True)
        regularization = regularization_loss(model)
        scaled = (loss + regularization) / replicas
    grads = tape.gradient(scaled, model.trainable_variables)
    model.optimizer.apply_gradients(zip(grads, model.trainable_variables))
    metrics = step_metrics(model, loss, regularization)
    # Keras sums what each replica returns (``distribute_reduction_method``
    # "auto"): a replica reports its share.
    return {name: value / replicas for name, value in metrics.items()}


def gradient_train_step(model, inputs) -> dict[str, tf.Tensor]:
    """One step of a ``GradientWeighting``: per-task gradients, combined.

    The task losses are taken on a persistent tape; each task's gradient on
    every trainable variable (the weighting's own aside) goes, with which
    variables are shared (``model.shared_layout``), to the weighting's
    ``gradient_update``, whose combined gradients (plus the penalties') the
    optimizer applies. Traced inside ``separate_matmuls``: a task's gradient
    reaches exactly the variables its loss uses.

    Args:
      model: a ``MultiTaskRanker`` whose ``weighting.uses_gradients``.
      inputs: the batch (features and labels).
    """
    with separate_matmuls(), tf.GradientTape(persistent=True) as tape:
        losses = model.task_losses(inputs, training=True)
        regularization = regularization_loss(model)
    # Listed after the forward pass, which builds the model on first use.
    own = {v.ref() for v in model.weighting.trainable_variables}
    variables = [v for v in model.trainable_variables if v.ref() not in own]
    task_grads = {k: tape.gradient(losses[k], variables) for k in losses}
    shared, shared_layer = model.shared_layout(variables, task_grads)
    grads, total, weights, own_grads = model.weighting.gradient_update(
        losses, task_grads, shared, shared_layer
    )
    if model.losses:
        grads = [
            gradients.add([g, r])
            for g, r in zip(
                grads, tape.gradient(regularization, variables), strict=True
            )
        ]
    del tape
    pairs = [(g, v) for g, v in zip(grads, variables, strict=True) if g is not None]
    model.optimizer.apply_gradients(pairs + list(own_grads))
    model.weighting.after_apply()
    model.track_weights(weights)
    return step_metrics(model, total, regularization)
