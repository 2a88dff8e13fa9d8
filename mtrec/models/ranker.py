"""The multi-task ranker: features -> backbone -> one tower per task."""

import inspect
from collections.abc import Sequence

import tensorflow as tf
import tensorflow_recommenders as tfrs

from mtrec.layers.tower import Tower
from mtrec.models.task import EvalTarget
from mtrec.models.task import Task
from mtrec.weighting.base import LossWeighting
from mtrec.weighting.fixed import FixedWeighting


def ranking_task(task: Task, output: str) -> tfrs.tasks.Ranking:
    """The TFRS task (loss + training metrics) for one supervised output."""
    if task.kind == "binary":
        return tfrs.tasks.Ranking(
            loss=tf.keras.losses.BinaryCrossentropy(name=f"{output}_logloss"),
            metrics=[tf.keras.metrics.AUC(name=f"{output}_auc", num_thresholds=1000)],
            name=f"task_{output}",
        )
    return tfrs.tasks.Ranking(
        loss=tf.keras.losses.MeanSquaredError(name=f"{output}_mse"),
        metrics=[tf.keras.metrics.RootMeanSquaredError(name=f"{output}_rmse")],
        name=f"task_{output}",
    )


class MultiTaskRanker(tfrs.Model):
    """A multi-task ranking model on ``tfrs.Model``.

    ``h = features(x)``; ``{h_k} = backbone(h)``; ``z_k = tower_k(h_k)``;
    output ``p_k = sigmoid(z_k)`` for binary tasks and ``z_k`` for regression.
    The loss is ``weighting({k: L_k})`` with ``L_k`` from one
    ``tfrs.tasks.Ranking`` per task (log loss or MSE), masked by the task's
    ``condition`` column when it has one.

    Args:
      feature_layer: maps the raw input dict to ``(batch, d)``
        (``mtrec.features.FeatureEmbedding``).
      backbone: maps ``(batch, d)`` to ``{task name: (batch, d_k)}``
        (``SharedBottom``, ``MMoE``, ...), with one key per tower.
      tasks: the tasks.
      tower_units, tower_activation, tower_dropout, tower_l2: the towers.
      weighting: a ``LossWeighting``; default fixed weights from ``Task.weight``.
      cross_layers: DCN-v2 cross layers (``tfrs.layers.dcn.Cross``) applied to
        the embeddings before the backbone. Default 0.
      cross_projection_dim: low-rank projection of the cross layers (``None``:
        full rank).

    Call returns a dict ``{task name: (batch, 1)}``.
    """

    def __init__(
        self,
        feature_layer: tf.keras.layers.Layer,
        backbone: tf.keras.layers.Layer,
        tasks: Sequence[Task],
        tower_units: Sequence[int] = (64,),
        tower_activation: str = "relu",
        tower_dropout: float = 0.0,
        tower_l2: float = 0.0,
        weighting: LossWeighting | None = None,
        cross_layers: int = 0,
        cross_projection_dim: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        tasks = list(tasks)
        names = [t.name for t in tasks]
        if not tasks or len(set(names)) != len(names):
            raise ValueError(
                f"`tasks` must be non-empty with unique names. Received: {names}"
            )
        self.feature_layer = feature_layer
        self.backbone = backbone
        self.tasks = tasks
        self.tower_units = [int(u) for u in tower_units]
        self.tower_activation = tower_activation
        self.tower_dropout = float(tower_dropout)
        self.tower_l2 = float(tower_l2)
        if not isinstance(cross_layers, int) or cross_layers < 0:
            raise ValueError(
                f"`cross_layers` must be an integer >= 0. Received: `cross_layers={cross_layers!r}`"
            )
        if cross_projection_dim is not None and cross_projection_dim < 1:
            raise ValueError(
                "`cross_projection_dim` must be >= 1 or None. Received: "
                f"`cross_projection_dim={cross_projection_dim!r}`"
            )
        self.cross_layers = cross_layers
        self.cross_projection_dim = cross_projection_dim
        self.crosses = [
            tfrs.layers.dcn.Cross(
                projection_dim=cross_projection_dim, name=f"cross_{i}"
            )
            for i in range(cross_layers)
        ]
        self.towers = {
            t.name: Tower(
                self.tower_units,
                activation=tower_activation,
                dropout=tower_dropout,
                l2=tower_l2,
                name=f"tower_{t.name}",
            )
            for t in self.tower_tasks
        }
        supervised = self.supervised_tasks()
        self.ranking_tasks = {
            out: ranking_task(task, out) for out, task in supervised.items()
        }
        self.loss_trackers = {
            out: tf.keras.metrics.Mean(name=f"{out}_loss") for out in supervised
        }
        self.weighting = weighting or FixedWeighting(
            list(supervised),
            weights={out: task.weight for out, task in supervised.items()},
        )
        if list(self.weighting.task_names) != list(supervised):
            raise ValueError(
                f"The weighting is for {self.weighting.task_names}, the model trains "
                f"{list(supervised)}"
            )

    @property
    def tower_tasks(self) -> list[Task]:
        """The tasks that get a tower (and a backbone output)."""
        return self.tasks

    @property
    def prediction_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def supervised_tasks(self) -> dict[str, Task]:
        """Output name -> the task (label, mask) its loss is computed against."""
        return {t.name: t for t in self.tasks}

    def evaluation_targets(self) -> list[EvalTarget]:
        """What evaluation scores: each output against its label and rows."""
        return [EvalTarget(t.name, t.label, t.kind, t.condition) for t in self.tasks]

    def shared_input(self, inputs) -> tf.Tensor:
        """The backbone input: embeddings, then the DCN-v2 cross layers if any.

        ``x_0 = features(inputs)``, ``x_{l+1} = x_0 ⊙ (W_l x_l + b_l) + x_l``
        (``W_l = U_l V_l`` with ``cross_projection_dim``).
        """
        x0 = self.feature_layer(inputs)
        x = x0
        for cross in self.crosses:
            x = cross(x0, x)
        return x

    @property
    def has_gates(self) -> bool:
        """Whether the backbone is a gated mixture of experts (``return_gates``)."""
        return "return_gates" in inspect.signature(self.backbone.call).parameters

    def gate_weights(self, inputs, training=None) -> dict[str, tf.Tensor]:
        """The backbone's softmax gate weights ``{gate: (batch, n_experts)}``.

        Raises:
          TypeError: the backbone has no gates (e.g. shared-bottom).
        """
        if not self.has_gates:
            raise TypeError(
                f"backbone {type(self.backbone).__name__} has no gates to inspect"
            )
        _, gates = self.backbone(
            self.shared_input(inputs), training=training, return_gates=True
        )
        return gates

    def tower_outputs(self, inputs, training=None) -> dict[str, tf.Tensor]:
        """``{task: p_k}`` (probability for binary tasks) from the towers."""
        hidden = self.backbone(self.shared_input(inputs), training=training)
        outputs = {}
        for task in self.tower_tasks:
            z = self.towers[task.name](hidden[task.name], training=training)
            outputs[task.name] = tf.sigmoid(z) if task.kind == "binary" else z
        return outputs

    def call(self, inputs, training=None):
        return self.tower_outputs(inputs, training=training)

    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        outputs = self(inputs, training=training)
        losses = {}
        for out, task in self.supervised_tasks().items():
            labels = tf.reshape(tf.cast(inputs[task.label], tf.float32), (-1, 1))
            weight = (
                tf.cast(inputs[task.condition], tf.float32) if task.condition else None
            )
            loss = self.ranking_tasks[out](
                labels=labels,
                predictions=outputs[out],
                sample_weight=weight,
                training=training,
            )
            self.loss_trackers[out].update_state(loss)
            losses[out] = loss
        return self.weighting(losses)
