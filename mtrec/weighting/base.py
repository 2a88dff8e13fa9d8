"""The interface every loss-weighting strategy implements."""

from collections.abc import Mapping
from collections.abc import Sequence

import tensorflow as tf

#: Floor of denominators (a masked task with no row in a batch has loss 0).
EPSILON = 1e-8


class LossWeighting(tf.keras.layers.Layer):
    """Combines per-task losses into the training objective.

    A strategy is a layer, so that its learnable weights (``uncertainty``,
    ``gradnorm``) and its state (initial losses, loss histories, step counters)
    are ``tf.Variable``s: trained, checkpointed and restored with the model.

    ``call({task: L_k}) -> L = combine(L, w)`` with ``w = compute_weights(L)``
    and, unless a strategy overrides ``combine``, ``L = Σ_k w_k L_k``. With
    ``return_weights=True`` the call also returns the effective weights
    ``{task: w_k}`` (gradient stopped), which ``MultiTaskRanker`` averages over
    each epoch and reports as the metrics ``weight_<task>``.

    Three families:

    - loss-based (``fixed``, ``equal``, ``initial_loss``, ``realtime``,
      ``uncertainty``, ``rlw``): the weights depend on the current losses and
      the layer's own variables only;
    - epoch-based (``dwa``, ``lbtw``, ``dtp``): the weights also depend on a
      history of epoch-level losses or KPIs, which ``on_epoch_begin`` and
      ``on_epoch_end`` update (``mtrec.training.callbacks.WeightingUpdate``
      calls them from ``fit``);
    - gradient-based (``grad_norm_static``, ``gradnorm``, ``pcgrad``,
      subclasses of ``GradientWeighting``): they need each task's gradient on
      the shared parameters; ``MultiTaskRanker.train_step`` computes them.

    Args:
      task_names: names of the supervised outputs, in a fixed order.

    Call arguments:
      losses: ``{task: scalar loss}`` with exactly the ``task_names``.
      training: whether this is a training step (state such as initial losses
        and step counters only changes in training steps).
      return_weights: also return ``{task: w_k}``.

    Returns:
      The scalar total, or ``(total, weights)`` with ``return_weights``.
    """

    #: Whether the strategy needs per-task gradients (``GradientWeighting``).
    uses_gradients = False

    def __init__(self, task_names: Sequence[str], **kwargs):
        super().__init__(**kwargs)
        task_names = list(task_names)
        if not task_names:
            raise ValueError(
                f"`task_names` must not be empty. Received: `task_names={task_names}`"
            )
        if len(set(task_names)) != len(task_names):
            raise ValueError(
                f"`task_names` must be unique. Received: `task_names={task_names}`"
            )
        self.task_names = task_names
        self.last_weights = self.add_weight(
            name="last_weights",
            shape=(len(task_names),),
            initializer="ones",
            trainable=False,
        )

    @property
    def num_tasks(self) -> int:
        return len(self.task_names)

    @classmethod
    def from_tasks(cls, tasks: Mapping, seed: int | None = None, **kwargs):
        """The strategy for ``{output: Task}`` (the model's supervised tasks).

        Subclasses that need the tasks' kinds or weights, or a seed, read them
        here; the others ignore ``seed``.
        """
        return cls(list(tasks), **kwargs)

    def _seeded_stream(self, seed: int | None) -> None:
        """Sets ``self.seed`` (drawn at random when ``None``) and ``self.step``.

        ``step`` is a checkpointed counter: stateless draws seeded by
        ``(seed, step)`` repeat exactly in a seeded run and in a resumed one.
        """
        if seed is None:
            seed = int(tf.random.uniform([], 0, 2**31 - 1, dtype=tf.int64))
        self.seed = int(seed)
        self.step = self.add_weight(
            name="step", shape=(), dtype=tf.int64, initializer="zeros", trainable=False
        )

    def _check(self, losses: Mapping) -> None:
        if set(losses) != set(self.task_names):
            raise ValueError(
                f"{type(self).__name__} expects losses for {sorted(self.task_names)}, "
                f"got {sorted(losses)}"
            )

    def _task_state(self, name: str, initializer="zeros", trainable=False):
        """A ``(num_tasks,)`` variable, checkpointed with the model."""
        return self.add_weight(
            name=name,
            shape=(self.num_tasks,),
            initializer=initializer,
            trainable=trainable,
        )

    def _stack(self, values: Mapping) -> tf.Tensor:
        """``[values[k] for k in task_names]`` as a float32 vector."""
        return tf.stack(
            [tf.cast(tf.reshape(values[k], []), tf.float32) for k in self.task_names]
        )

    def _unstack(self, vector: tf.Tensor) -> dict[str, tf.Tensor]:
        return {k: vector[i] for i, k in enumerate(self.task_names)}

    def compute_weights(self, losses: Mapping, training=None) -> dict[str, tf.Tensor]:
        """``{task: w_k}`` for these losses (may update state when training)."""
        raise NotImplementedError

    def combine(self, losses: Mapping, weights: Mapping) -> tf.Tensor:
        """The total: ``Σ_k w_k L_k``."""
        return tf.add_n([weights[k] * losses[k] for k in self.task_names])

    def call(self, losses, training=None, return_weights=False):
        self._check(losses)
        weights = self.compute_weights(losses, training=training)
        total = self.combine(losses, weights)
        if training:
            self.last_weights.assign(tf.stop_gradient(self._stack(weights)))
        if return_weights:
            return total, {k: tf.stop_gradient(w) for k, w in weights.items()}
        return total

    def task_weights(self) -> dict[str, tf.Tensor]:
        """The effective weights of the last training step."""
        return self._unstack(tf.identity(self.last_weights))

    def on_epoch_begin(self, epoch: int) -> None:
        """Called before each training epoch (epoch-based strategies)."""

    def on_epoch_end(self, epoch: int, logs: Mapping) -> None:
        """Called after each training epoch with its logs (``<task>_loss``,
        ``<task>_auc``, ...); epoch-based strategies update their history."""

    def get_config(self):
        config = super().get_config()
        config["task_names"] = self.task_names
        return config


class GradientWeighting(LossWeighting):
    """A strategy that combines per-task gradients rather than losses.

    ``MultiTaskRanker.train_step`` computes ``g_k = ∇_θ L_k`` for every task
    and trainable model variable, marks which variables are shared (the
    embeddings, cross layers and backbone variables that at least two tasks
    reach), and asks the strategy for the update direction with
    ``combine_gradients``. ``call`` (used by evaluation and by a plain
    ``compute_loss``) weighs the losses with the strategy's current weights.
    """

    uses_gradients = True

    def compute_weights(self, losses, training=None):
        return self._unstack(tf.identity(self.last_weights))

    def call(self, losses, training=None, return_weights=False):
        # The loss value outside the gradient step: weights of the last step.
        self._check(losses)
        weights = self.compute_weights(losses, training=training)
        total = self.combine(losses, weights)
        if return_weights:
            return total, {k: tf.stop_gradient(w) for k, w in weights.items()}
        return total

    def combine_gradients(
        self,
        losses: Mapping,
        task_grads: Mapping,
        shared: Sequence[bool],
        last_shared: int | None,
    ):
        """The update direction from per-task gradients.

        Args:
          losses: ``{task: L_k}``.
          task_grads: ``{task: [g_k for each model variable]}`` with ``None``
            where the task does not reach a variable.
          shared: for each variable, whether it is a shared parameter.
          last_shared: index of the last shared layer's kernel (GradNorm's
            ``W``), or ``None`` if there is none.

        Returns:
          ``(grads, total, weights, own_grads)``: one gradient per model
          variable, the weighted total loss (for reporting), ``{task: w_k}``
          and ``[(gradient, variable)]`` for the strategy's own variables.
        """
        raise NotImplementedError

    def after_apply(self) -> None:
        """Called after the optimiser step (e.g. GradNorm's renormalisation)."""


def reference_losses(
    reference: tf.Variable, recorded: tf.Variable, current: tf.Tensor, training
) -> tf.Tensor:
    """Per-task reference losses ``L_k(0)``: each task's first positive loss.

    ``recorded[k]`` (0/1) says whether ``reference[k]`` holds task ``k``'s
    first positive loss; until it does, the current loss stands in and, in a
    training step, is stored. A masked task whose first batches have no row
    (loss 0) so gets its reference from its first batch with rows.

    Args:
      reference: float variable ``(K,)``.
      recorded: float variable ``(K,)`` of 0/1 flags.
      current: the current losses ``(K,)`` (gradient stopped by the caller).
      training: only a training step stores.

    Returns:
      The references ``(K,)`` to use in this step.
    """
    has = recorded > 0.5
    value = tf.where(has, reference, current)
    if training:
        reference.assign(value)
        recorded.assign(tf.cast(has | (current > 0.0), tf.float32))
    return value
