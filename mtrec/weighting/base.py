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

    ``Task.weight`` (``task_weight``, filled in by ``from_tasks``) is part of
    every strategy's contract: a strategy either multiplies it in,
    ``w_k = task_weight_k · s_k`` with ``s_k`` the strategy's own weight
    (``combines_task_weight = True``: ``fixed``, ``initial_loss``,
    ``realtime``, ``dwa``, ``lbtw``, ``dtp``, ``rlw``, ``grad_norm_static``,
    ``pcgrad``), or refuses a task weight other than 1 with a ``ValueError``
    naming the task (``equal``, whose definition is "every weight is 1", and
    the learned ``uncertainty`` and ``gradnorm``, whose learned weights would
    absorb any constant factor: at their optimum the factor cancels).

    The current effective weights live in one variable, ``last_weights``
    (those of the last training step, or of the next one where the strategy
    fixes them in advance); ``task_weights()`` reads it.

    Three families:

    - loss-based (``fixed``, ``equal``, ``initial_loss``, ``realtime``,
      ``uncertainty``, ``rlw``): the weights depend on the current losses and
      the layer's own variables only;
    - epoch-based (``dwa``, ``lbtw``, ``dtp``): the weights also depend on a
      history of epoch-level losses or KPIs, which ``on_epoch_begin`` and
      ``on_epoch_end`` update (``MultiTaskRanker.fit`` attaches the
      ``mtrec.weighting.EpochUpdate`` callback that calls them);
    - gradient-based (``grad_norm_static``, ``gradnorm``, ``pcgrad``,
      subclasses of ``GradientWeighting``): they need each task's gradient on
      the shared parameters; ``MultiTaskRanker.train_step`` computes them.

    Args:
      task_names: names of the supervised outputs, in a fixed order.
      task_weight: ``{task: Task.weight}``; missing tasks get 1. Multiplied
        into the strategy's weights, or refused (see above).

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
    #: Whether ``Task.weight`` multiplies the strategy's weights; if not, a
    #: task weight other than 1 is refused, for the reason below.
    combines_task_weight = True
    task_weight_refusal = ""
    #: Whether the constructor takes ``seed`` (``from_tasks`` passes it on).
    seeded = False

    def __init__(
        self,
        task_names: Sequence[str],
        task_weight: Mapping[str, float] | None = None,
        **kwargs,
    ):
        # Losses are float32 under any precision policy (``mtrec.precision``).
        kwargs.setdefault("dtype", "float32")
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
        self.task_weight = self._check_task_weight(task_weight)
        self.last_weights = self.add_weight(
            name="last_weights",
            shape=(len(task_names),),
            initializer=tf.keras.initializers.Constant(
                [self.task_weight[k] for k in task_names]
            ),
            trainable=False,
        )

    def _check_task_weight(self, task_weight) -> dict[str, float]:
        task_weight = dict(task_weight or {})
        unknown = sorted(set(task_weight) - set(self.task_names))
        if unknown:
            raise ValueError(
                f"`task_weight` names unknown tasks {unknown}; tasks are "
                f"{self.task_names}. Received: `task_weight={task_weight}`"
            )
        out = {}
        for name in self.task_names:
            value = task_weight.get(name, 1.0)
            if not float(value) >= 0.0:
                raise ValueError(
                    f"`task_weight[{name!r}]` must be >= 0. Received: "
                    f"`task_weight={task_weight}`"
                )
            if not self.combines_task_weight and float(value) != 1.0:
                raise ValueError(
                    f"{type(self).__name__} does not take `Task.weight` "
                    f"({self.task_weight_refusal}): task {name!r} has "
                    f"`weight={value}`. Set the task's weight to 1, or use a "
                    "weighting that multiplies it in ('fixed', 'dwa', 'lbtw', "
                    "'dtp', 'initial_loss', 'realtime', 'rlw', "
                    "'grad_norm_static', 'pcgrad'). Received: "
                    f"`task_weight={task_weight}`"
                )
            out[name] = float(value)
        return out

    @property
    def num_tasks(self) -> int:
        return len(self.task_names)

    @classmethod
    def from_tasks(cls, tasks: Mapping, seed: int | None = None, **kwargs):
        """The strategy for ``{output: Task}`` (the model's supervised tasks).

        ``task_weight`` is ``{output: Task.weight}``. Subclasses that need the
        tasks' kinds, or a seed, read them here; the others ignore ``seed``.
        """
        kwargs.setdefault("task_weight", {out: t.weight for out, t in tasks.items()})
        if cls.seeded:
            kwargs.setdefault("seed", seed)
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
        """``{task: s_k}``, the strategy's own weights for these losses (may
        update state when training); ``call`` multiplies in ``task_weight``."""
        raise NotImplementedError

    def with_task_weight(self, weights: Mapping) -> dict[str, tf.Tensor]:
        """``{task: task_weight_k · s_k}``: the effective weights."""
        return {k: self.task_weight[k] * weights[k] for k in self.task_names}

    def _record(self, weights: Mapping) -> None:
        """Stores the effective weights ``{task: w_k}`` in ``last_weights``."""
        self.last_weights.assign(tf.stop_gradient(self._stack(weights)))

    def combine(self, losses: Mapping, weights: Mapping) -> tf.Tensor:
        """The total: ``Σ_k w_k L_k``."""
        return tf.add_n([weights[k] * losses[k] for k in self.task_names])

    def call(self, losses, training=None, return_weights=False):
        self._check(losses)
        weights = self.with_task_weight(self.compute_weights(losses, training))
        total = self.combine(losses, weights)
        if training:
            self._record(weights)
        if return_weights:
            return total, {k: tf.stop_gradient(w) for k, w in weights.items()}
        return total

    def task_weights(self) -> dict[str, tf.Tensor]:
        """The current effective weights ``{task: w_k}`` (``last_weights``).

        Subclasses do not override this: every strategy keeps its current
        weights in ``last_weights`` (``_record``).
        """
        return self._unstack(tf.identity(self.last_weights))

    def on_epoch_begin(self, epoch: int) -> None:
        """Called before each training epoch (epoch-based strategies)."""

    def on_epoch_end(self, epoch: int, logs: Mapping) -> None:
        """Called after each training epoch with its logs (``<task>_loss``,
        ``<task>_auc``, ...); epoch-based strategies update their history."""

    def get_config(self):
        config = super().get_config()
        config["task_names"] = self.task_names
        config["task_weight"] = self.task_weight
        return config


class GradientWeighting(LossWeighting):
    """A strategy that combines per-task gradients rather than losses.

    ``MultiTaskRanker.train_step`` computes ``g_k = ∇_θ L_k`` for every task
    and trainable model variable, marks which variables are shared (the
    embeddings, cross layers and backbone variables that at least two tasks
    reach) and, for strategies with ``uses_shared_layer`` (GradNorm), which
    variables form the last shared layer ``W``
    (``mtrec.models.backbones.shared_layer_variables``), and asks the
    strategy for the update with ``gradient_update``. ``call`` (used by
    evaluation and by a plain ``compute_loss``) weighs the losses with the
    effective weights of the last step (``last_weights``).

    Embedding tables get ``tf.IndexedSlices`` gradients; strategies keep them
    sparse (``mtrec.weighting.gradients``): memory in the rows a batch
    touches, never in the vocabulary.
    """

    uses_gradients = True
    #: Whether ``gradient_update`` needs the last shared layer's variables.
    uses_shared_layer = False

    def call(self, losses, training=None, return_weights=False):
        # The loss value outside the gradient step: weights of the last step.
        self._check(losses)
        weights = self.task_weights()
        total = self.combine(losses, weights)
        if return_weights:
            return total, {k: tf.stop_gradient(w) for k, w in weights.items()}
        return total

    def gradient_update(
        self,
        losses: Mapping,
        task_grads: Mapping,
        shared: Sequence[bool],
        shared_layer: Sequence[int] = (),
    ):
        """``combine_gradients``, recording the effective weights it used.

        The model's train step calls this (the strategy owns its state).
        """
        grads, total, weights, own_grads = self.combine_gradients(
            losses, task_grads, shared, shared_layer
        )
        self._record(weights)
        return grads, total, weights, own_grads

    def combine_gradients(
        self,
        losses: Mapping,
        task_grads: Mapping,
        shared: Sequence[bool],
        shared_layer: Sequence[int] = (),
    ):
        """The update direction from per-task gradients.

        Args:
          losses: ``{task: L_k}``.
          task_grads: ``{task: [g_k for each model variable]}`` with ``None``
            where the task does not reach a variable.
          shared: for each variable, whether it is a shared parameter.
          shared_layer: indices of the variables of the last shared layer
            (GradNorm's ``W``); empty when the strategy does not ask for them
            or there is none.

        Returns:
          ``(grads, total, weights, own_grads)``: one gradient per model
          variable, the weighted total loss (for reporting), the effective
          weights ``{task: w_k}`` and ``[(gradient, variable)]`` for the
          strategy's own variables.
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
