"""PCGrad: gradient surgery on conflicting task gradients."""

from collections.abc import Sequence

import tensorflow as tf

from mtrec.weighting import gradients as G
from mtrec.weighting.base import EPSILON
from mtrec.weighting.base import GradientWeighting


def pcgrad_project(
    task_grads: Sequence[Sequence[tf.Tensor]], orders: tf.Tensor | None = None
) -> list[list[tf.Tensor]]:
    """Projects each task's gradient off the tasks it conflicts with.

    For each task ``i``, starting from ``g_i^PC = g_i`` and for each other
    task ``j`` in ``orders[i]`` (default: task order): if
    ``g_i^PC · g_j < 0``, ``g_i^PC -= (g_i^PC · g_j) / ||g_j||² · g_j``.

    Args:
      task_grads: ``K`` dense gradient lists (one tensor per shared variable).
      orders: ``(K, K)`` int tensor, row ``i`` a permutation of the tasks
        (``i`` itself is skipped).

    Returns:
      The ``K`` projected gradient lists.
    """
    num_tasks = len(task_grads)
    stacks = [
        tf.stack([task_grads[k][v] for k in range(num_tasks)])
        for v in range(len(task_grads[0]))
    ]
    squared = tf.stack([G.squared_norm(g) for g in task_grads])
    projected = []
    for i in range(num_tasks):
        g_i = list(task_grads[i])
        for p in range(num_tasks):
            j = orders[i, p] if orders is not None else p
            g_j = [tf.gather(s, j) for s in stacks]
            d = G.dot(g_i, g_j)
            conflict = tf.logical_and(d < 0.0, tf.not_equal(j, i))
            coef = tf.where(
                conflict, d / tf.maximum(tf.gather(squared, j), EPSILON), 0.0
            )
            g_i = [a - coef * b for a, b in zip(g_i, g_j, strict=True)]
        projected.append(g_i)
    return projected


@tf.keras.utils.register_keras_serializable(package="mtrec")
class PCGrad(GradientWeighting):
    """Projecting Conflicting Gradients (gradient surgery).

    On the shared parameters (embeddings, cross layers and backbone variables
    that at least two tasks reach), each task's gradient ``g_i`` loses its
    component along every other task's gradient ``g_j`` it conflicts with
    (``g_i · g_j < 0``): ``g_i -= (g_i · g_j) / ||g_j||² · g_j``, the other
    tasks taken in a random order (seeded by ``(seed, step)``); the update is
    ``Σ_i g_i^PC``. Task-specific parameters get the plain ``Σ_i g_i``. The
    loss is the plain sum (every weight is 1), or with ``Task.weight`` the
    weighted sum: each ``g_i`` is then ``Task.weight_i ∇L_i``, before the
    surgery.

    Args:
      task_names: the supervised outputs.
      seed: seed of the random task orders; ``None`` draws one at random.

    Example (two conflicting gradients):

    >>> g = pcgrad_project([[tf.constant([1.0, 0.0])], [tf.constant([-1.0, 1.0])]])
    >>> [v[0].numpy().tolist() for v in g]
    [[0.5, 0.5], [0.0, 1.0]]

    References:
      Yu, Kumar, Gupta, Levine, Hausman & Finn, "Gradient Surgery for
      Multi-Task Learning", NeurIPS 2020.
    """

    seeded = True

    def __init__(self, task_names: Sequence[str], seed: int | None = None, **kwargs):
        super().__init__(task_names, **kwargs)
        self._seeded_stream(seed)

    def combine_gradients(self, losses, task_grads, shared, shared_layer=()):
        self._check(losses)
        # Task.weight scales each task's gradient before the surgery.
        task_grads = {
            k: [G.scale(g, self.task_weight[k]) for g in task_grads[k]]
            for k in self.task_names
        }
        at = [i for i, s in enumerate(shared) if s]
        grads = [
            G.add([task_grads[k][i] for k in self.task_names])
            for i in range(len(shared))
        ]
        if at and self.num_tasks > 1:
            # Each shared variable on the rows its tasks touch (embedding
            # tables stay sparse); a task that does not reach it gives zeros.
            supports = [
                G.common_rows([task_grads[k][i] for k in self.task_names]) for i in at
            ]
            per_task = [
                [tensors[j] for tensors, _ in supports] for j in range(self.num_tasks)
            ]
            orders = None
            if self.num_tasks > 2:
                noise = tf.random.stateless_uniform(
                    [self.num_tasks, self.num_tasks],
                    seed=tf.stack([tf.constant(self.seed, tf.int64), self.step]),
                )
                orders = tf.argsort(noise, axis=1)
            self.step.assign_add(1)
            projected = pcgrad_project(per_task, orders)
            for n, i in enumerate(at):
                to_gradient = supports[n][1]
                grads[i] = to_gradient(tf.add_n([p[n] for p in projected]))
        by_task = self.with_task_weight(self._unstack(tf.ones([self.num_tasks])))
        total = self.combine(losses, by_task)
        return grads, total, by_task, []

    def get_config(self):
        config = super().get_config()
        config["seed"] = self.seed
        return config
