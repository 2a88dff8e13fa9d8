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

Two further statistics are reported beside the paper's matrix, never instead
of it (docs/affinity.md has the measurements behind them):

- ``cosine``: the cosine of the two tasks' gradients on the shared
  parameters, ``cos(∇_{θ_s} L_i, ∇_{θ_s} L_j)``, from the same gradients as
  the lookahead (no extra pass). ``Z(i→j) ≈ η ∇L_i·∇L_j / L_j`` to first
  order, so it has ``Z``'s sign, but each measurement counts alike: the large
  gradients of the first steps do not dominate the mean.
- ``after_first_epoch``: both matrices averaged over the epochs after the
  first. Early on, every task pulls its predictions to its base rate through
  random towers, so which way each task moves the shared representation,
  and hence the early affinities, reflects the start more than the tasks.

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
    """Measures ``Z(i→j)`` and the gradient cosines every ``every`` training
    steps (module docstring).

    ``attach(model)`` decorates the model's ``train_step`` (before ``fit``
    builds its train function) so the lookahead sees each step's batch; as a
    callback it closes each epoch's matrices. Results:
    :meth:`matrix` (the means over epochs), :attr:`epochs` (the matrices of
    each epoch) and ``logs["affinity/<i>-><j>"]`` and
    ``logs["affinity_cosine/<i>-><j>"]`` at every epoch end (TensorBoard,
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
        self._cosine_sums = tf.Variable(
            tf.zeros((n, n)), trainable=False, name="affinity_cosine_sum"
        )
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
        grads = [tape.gradient(before[source], shared) for source in self.tasks]
        del tape
        rows = []
        for task_grads in grads:
            restore = []
            for variable, grad in zip(shared, task_grads, strict=True):
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
        self._sums.assign_add(tf.stack([tf.stack(r) for r in rows]))
        self._cosine_sums.assign_add(gradient_cosines(shared, grads))
        self._count.assign_add(1)
        return tf.constant(True)

    def on_epoch_begin(self, epoch, logs=None):
        if self._sums is None:
            raise ValueError(
                "AffinityTracker is not attached: call tracker.attach(model) "
                "before model.fit"
            )
        self._sums.assign(tf.zeros_like(self._sums))
        self._cosine_sums.assign(tf.zeros_like(self._cosine_sums))
        self._count.assign(0)

    def on_epoch_end(self, epoch, logs=None):
        count = int(self._count.numpy())
        if not count:
            return
        matrices = {
            key: affinity_dict(self.tasks, sums.numpy().astype(np.float64) / count)[
                "affinity"
            ]
            for key, sums in (("affinity", self._sums), ("cosine", self._cosine_sums))
        }
        self.epochs.append({"epoch": epoch + 1, "measurements": count, **matrices})
        if logs is not None:
            for key, prefix in _LOG_PREFIXES.items():
                for i, row in matrices[key].items():
                    for j, value in row.items():
                        logs[f"{prefix}{i}->{j}"] = value

    def matrix(self) -> dict:
        """The run's matrices, as ``metrics.json``'s ``affinity`` (see
        :func:`affinity_from_history`), plus ``measurements``: the count of
        lookaheads."""
        if not self.epochs:
            raise ValueError("no affinity measured yet (train at least one epoch)")
        return {
            **_summary(self.tasks, self.epochs),
            "measurements": sum(e["measurements"] for e in self.epochs),
        }


# The history keys of each per-epoch matrix: "affinity/<i>-><j>", ...
_LOG_PREFIXES = {"affinity": "affinity/", "cosine": "affinity_cosine/"}


def gradient_cosines(variables, grads) -> tf.Tensor:
    """The ``(T, T)`` cosines of ``T`` tasks' gradients over ``variables``.

    ``grads[t][k]`` is task ``t``'s gradient of ``variables[k]``: a tensor, a
    ``tf.IndexedSlices`` (embedding rows; repeated rows are summed) or
    ``None`` (zero). A task whose gradient is zero has cosine 0 with every
    task, itself included.
    """
    n = len(grads)
    gram = tf.zeros((n, n))
    for k, variable in enumerate(variables):
        per_task = [g[k] for g in grads]
        present = [g for g in per_task if g is not None]
        if not present:
            continue
        if all(isinstance(g, tf.IndexedSlices) for g in present):
            ids, position = tf.unique(tf.concat([g.indices for g in present], 0))
            width = tf.reduce_prod(tf.shape(variable)[1:])
            rows, start = [], 0
            for g in per_task:
                if g is None:
                    rows.append(tf.zeros((tf.size(ids), width)))
                    continue
                end = start + tf.size(g.indices)
                rows.append(
                    tf.reshape(
                        tf.math.unsorted_segment_sum(
                            tf.cast(g.values, tf.float32),
                            position[start:end],
                            tf.size(ids),
                        ),
                        (tf.size(ids), width),
                    )
                )
                start = end
            flat = tf.reshape(tf.stack(rows), (n, -1))
        else:
            flat = tf.stack(
                [
                    tf.reshape(
                        tf.zeros(variable.shape)
                        if g is None
                        else tf.cast(tf.convert_to_tensor(g), tf.float32),
                        [-1],
                    )
                    for g in per_task
                ]
            )
        gram += tf.matmul(flat, flat, transpose_b=True)
    norms = tf.sqrt(tf.linalg.diag_part(gram))
    return tf.math.divide_no_nan(gram, norms[:, None] * norms[None, :])


def _summary(tasks: list[str], epochs: list[dict]) -> dict:
    """The run's matrices from its per-epoch ones (every key a mean of epochs).

    ``affinity`` (the paper's matrix, over all epochs), ``cosine`` (when the
    epochs have it), ``after_first_epoch`` (both over epochs 2..E, when
    ``E >= 2``) and ``epochs``.
    """

    def mean(key: str, chosen: list[dict]) -> dict:
        values = [[[e[key][i][j] for j in tasks] for i in tasks] for e in chosen]
        return affinity_dict(tasks, np.mean(values, axis=0))["affinity"]

    keys = [k for k in _LOG_PREFIXES if all(k in e for e in epochs)]
    summary = {"tasks": list(tasks), **{k: mean(k, epochs) for k in keys}}
    if len(epochs) >= 2:
        summary["after_first_epoch"] = {k: mean(k, epochs[1:]) for k in keys}
    summary["epochs"] = epochs
    return summary


def affinity_dict(tasks: list[str], values) -> dict:
    """``{"affinity": {i: {j: Z(i→j)}}}`` of a square ``values`` over ``tasks``."""
    return {
        "affinity": {
            i: {j: float(values[a][b]) for b, j in enumerate(tasks)}
            for a, i in enumerate(tasks)
        }
    }


def affinity_from_history(history: dict) -> dict | None:
    """The run's affinity matrices from a run's per-epoch history.

    ``fit`` logs ``affinity/<i>-><j>`` and ``affinity_cosine/<i>-><j>`` every
    epoch (the epoch's means). Returns ``{"tasks", "affinity": {i: {j:
    Z(i→j)}}, "cosine", "after_first_epoch": {"affinity", "cosine"},
    "epochs"}``: the paper's matrix and the gradient cosines averaged over the
    epochs, both again over the epochs after the first (with at least two),
    and the per-epoch matrices (module docstring). ``cosine`` is absent from a
    history without it. ``None`` when the run did not track affinity.
    """
    pairs = {key: {} for key in _LOG_PREFIXES}
    for name, values in history.items():
        for key, prefix in _LOG_PREFIXES.items():
            if name.startswith(prefix) and "->" in name:
                source, target = name[len(prefix) :].split("->", 1)
                pairs[key][(source, target)] = values
    if not pairs["affinity"]:
        return None
    found = pairs["affinity"]
    tasks = list(dict.fromkeys([s for s, _ in found] + [t for _, t in found]))
    num_epochs = len(next(iter(found.values())))
    keys = [key for key in _LOG_PREFIXES if pairs[key]]
    epochs = [
        {
            "epoch": e + 1,
            **{
                key: {
                    i: {
                        j: float(pairs[key].get((i, j), [np.nan] * num_epochs)[e])
                        for j in tasks
                    }
                    for i in tasks
                }
                for key in keys
            },
        }
        for e in range(num_epochs)
    ]
    return _summary(tasks, epochs)
