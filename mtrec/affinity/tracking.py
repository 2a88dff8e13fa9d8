"""Inter-task affinity during training (TAG's lookahead).

Fifty et al., "Efficiently Identifying Task Groupings for Multi-Task
Learning", NeurIPS 2021: every ``k`` steps, on the batch about to be trained
on, for each task ``i`` take one SGD step of the *shared* parameters ``θ_s``
with task ``i``'s gradient alone, at the optimiser's current learning rate
``η``, and measure every task ``j``'s loss with the task-specific parameters
unchanged:

    θ_s' = θ_s - η ∇_{θ_s} L_i(θ_s, θ_i)
    Z(i→j) = 1 - L_j(θ_s', θ_j) / L_j(θ_s, θ_j)

``Z(i→j) > 0``: a step on ``i`` lowers ``j``'s loss (``i`` helps ``j``).
Averaged over the run (and per epoch) into the affinity matrix.

The shared parameters are the embeddings, the cross layers and the backbone
(``MultiTaskRanker.shared_candidates``); the task-specific ones (towers,
ESMM's heads) do not move. Losses are each task's training loss (binary
cross-entropy from the tower's logit, or squared error; masked by the task's
``condition``; the mean over the batch, as in training) computed with
``training=False``: no dropout draw, no metric update. The shared variables
are restored exactly (assigned their saved values; embedding rows by scatter),
so tracking leaves the training trajectory bit for bit as it is (tested).

Supervised outputs are the tasks: ESMM's are ``ctr`` and ``ctcvr``.
"""

import logging

import numpy as np
import tensorflow as tf

logger = logging.getLogger(__name__)


def _task_losses(model, batch) -> dict[str, tf.Tensor]:
    """``{output: L}`` on ``batch`` without side effects (``training=False``)."""
    outputs, logits = model(batch, training=False, return_logits=True)
    from_logits = model.logit_outputs
    losses = {}
    for out, task in model.supervised_tasks().items():
        labels = tf.reshape(tf.cast(batch[task.label], tf.float32), (-1, 1))
        if task.kind == "binary" and out in from_logits:
            per_row = tf.nn.sigmoid_cross_entropy_with_logits(labels, logits[out])
        elif task.kind == "binary":
            p = tf.clip_by_value(outputs[out], 1e-7, 1.0 - 1e-7)
            per_row = -(labels * tf.math.log(p) + (1 - labels) * tf.math.log(1 - p))
        else:
            per_row = tf.square(labels - outputs[out])
        if task.condition:
            per_row *= tf.reshape(tf.cast(batch[task.condition], tf.float32), (-1, 1))
        losses[out] = tf.reduce_mean(per_row)
    return losses


def _current_learning_rate(optimizer) -> tf.Tensor:
    rate = optimizer.learning_rate
    if callable(rate):  # a schedule (legacy optimisers keep it unevaluated)
        rate = rate(optimizer.iterations)
    return tf.cast(rate, tf.float32)


class AffinityTracker(tf.keras.callbacks.Callback):
    """Measures ``Z(i→j)`` every ``every`` training steps (module docstring).

    ``attach(model)`` decorates the model's ``train_step`` (before ``fit``
    builds its train function) so the lookahead sees each step's batch; as a
    callback it closes each epoch's matrix. Results:
    :meth:`matrix` (the mean over epochs), :attr:`epochs` (one matrix per epoch)
    and ``logs["affinity/<i>-><j>"]`` at every epoch end (TensorBoard,
    ``metrics.json``'s history).

    Args:
      every: measure on every ``every``-th training step (>= 1).

    Example:

    >>> AffinityTracker(every=0)
    Traceback (most recent call last):
    ...
    ValueError: `every` must be an int >= 1. Received: `every=0`
    """

    def __init__(self, every: int = 10):
        super().__init__()
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(
                f"`every` must be an int >= 1. Received: `every={every!r}`"
            )
        self.every = every
        self.tasks: list[str] = []
        self.epochs: list[dict] = []
        self._sums = None

    def attach(self, model) -> None:
        """Wraps ``model.train_step``; call before ``model.fit``."""
        self.tasks = list(model.supervised_tasks())
        n = len(self.tasks)
        self._sums = tf.Variable(tf.zeros((n, n)), trainable=False, name="affinity_sum")
        self._count = tf.Variable(0, trainable=False, dtype=tf.int64, name="affinity_n")
        self._step = tf.Variable(
            0, trainable=False, dtype=tf.int64, name="affinity_step"
        )
        train_step = model.train_step

        def tracked_train_step(batch):
            if isinstance(batch, tuple):  # (features, labels) is not mtrec's form
                raise TypeError("AffinityTracker needs mtrec's dict batches")
            measure = tf.equal(self._step % self.every, 0)
            tf.cond(
                measure,
                lambda: self._measure(model, batch),
                lambda: tf.constant(False),
            )
            self._step.assign_add(1)
            return train_step(batch)

        model.train_step = tracked_train_step
        model.train_function = None  # rebuilt around the tracked step

    def _measure(self, model, batch):
        shared = model.shared_candidates()
        rate = _current_learning_rate(model.optimizer)
        with tf.GradientTape(persistent=True) as tape:
            before = _task_losses(model, batch)
        rows = []
        for source in self.tasks:
            grads = tape.gradient(before[source], shared)
            restore = []
            for variable, grad in zip(shared, grads, strict=True):
                if grad is None:
                    continue
                if isinstance(grad, tf.IndexedSlices):
                    ids, _ = tf.unique(grad.indices)
                    restore.append((variable, ids, tf.gather(variable, ids)))
                    variable.scatter_sub(
                        tf.IndexedSlices(rate * grad.values, grad.indices)
                    )
                else:
                    restore.append((variable, None, tf.identity(variable)))
                    variable.assign_sub(rate * grad)
            after = _task_losses(model, batch)
            rows.append(
                [1.0 - after[t] / tf.maximum(before[t], 1e-12) for t in self.tasks]
            )
            for variable, ids, saved in restore:
                if ids is None:
                    variable.assign(saved)
                else:
                    variable.scatter_update(tf.IndexedSlices(saved, ids))
        del tape
        self._sums.assign_add(tf.stack([tf.stack(r) for r in rows]))
        self._count.assign_add(1)
        return tf.constant(True)

    def on_epoch_begin(self, epoch, logs=None):
        if self._sums is None:
            raise ValueError(
                "AffinityTracker is not attached: call tracker.attach(model) "
                "before model.fit"
            )
        self._sums.assign(tf.zeros_like(self._sums))
        self._count.assign(0)

    def on_epoch_end(self, epoch, logs=None):
        count = int(self._count.numpy())
        if not count:
            return
        matrix = affinity_dict(
            self.tasks, self._sums.numpy().astype(np.float64) / count
        )
        self.epochs.append({"epoch": epoch + 1, "measurements": count, **matrix})
        if logs is not None:
            for i, row in matrix["affinity"].items():
                for j, value in row.items():
                    logs[f"affinity/{i}->{j}"] = value

    def matrix(self) -> dict:
        """``{"tasks", "affinity": {i: {j: Z(i→j)}}, "measurements"}``: the mean
        of the epochs' matrices, as ``metrics.json``'s ``affinity`` (see
        :func:`affinity_from_history`)."""
        if not self.epochs:
            raise ValueError("no affinity measured yet (train at least one epoch)")
        mean = np.mean(
            [
                [[e["affinity"][i][j] for j in self.tasks] for i in self.tasks]
                for e in self.epochs
            ],
            axis=0,
        )
        return {
            "tasks": list(self.tasks),
            "measurements": sum(e["measurements"] for e in self.epochs),
            **affinity_dict(self.tasks, mean),
        }


def affinity_dict(tasks: list[str], values) -> dict:
    """``{"affinity": {i: {j: Z(i→j)}}}`` of a square ``values`` over ``tasks``."""
    return {
        "affinity": {
            i: {j: float(values[a][b]) for b, j in enumerate(tasks)}
            for a, i in enumerate(tasks)
        }
    }


def affinity_from_history(history: dict) -> dict | None:
    """The run's affinity matrix from a run's per-epoch history.

    ``fit`` logs ``affinity/<i>-><j>`` every epoch (the epoch's mean); the
    run's matrix is their mean over epochs, with the per-epoch matrices.
    ``None`` when the run did not track affinity.
    """
    pairs = {}
    for key, values in history.items():
        if key.startswith("affinity/") and "->" in key:
            source, target = key[len("affinity/") :].split("->", 1)
            pairs[(source, target)] = values
    if not pairs:
        return None
    tasks = list(dict.fromkeys([s for s, _ in pairs] + [t for _, t in pairs]))
    epochs = len(next(iter(pairs.values())))
    mean = [[float(np.mean(pairs.get((i, j), [np.nan]))) for j in tasks] for i in tasks]
    per_epoch = [
        {
            "epoch": e + 1,
            **affinity_dict(
                tasks,
                [
                    [pairs.get((i, j), [np.nan] * epochs)[e] for j in tasks]
                    for i in tasks
                ],
            ),
        }
        for e in range(epochs)
    ]
    return {"tasks": tasks, **affinity_dict(tasks, mean), "epochs": per_epoch}
