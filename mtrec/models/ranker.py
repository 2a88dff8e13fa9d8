"""The multi-task ranker: features -> backbone -> one tower per task."""

import functools
from collections.abc import Mapping
from collections.abc import Sequence

import tensorflow as tf
import tensorflow_recommenders as tfrs

from mtrec.checks import check_bool
from mtrec.layers import apply_layers
from mtrec.models.backbones import GatedBackbone
from mtrec.models.backbones import shared_layer_variables
from mtrec.models.compiled_predict import check_predict_jit_compile
from mtrec.models.compiled_predict import compiled_predict_step
from mtrec.models.compiled_predict import compiles_prediction
from mtrec.models.eager_build import build_before_fit
from mtrec.models.multi_step import DEFAULT_STEPS_PER_CALL
from mtrec.models.multi_step import StepFunctionCache
from mtrec.models.multi_step import check_steps_per_call
from mtrec.models.multi_step import fit_in_runs
from mtrec.models.multi_step import predict_in_runs
from mtrec.models.predict_loop import keeps_outputs_linear
from mtrec.models.predict_loop import linear_predict_function
from mtrec.models.ranker_layers import cross_stack
from mtrec.models.ranker_layers import tower_layers
from mtrec.models.ranking_tasks import ranking_task
from mtrec.models.ranking_tasks import resolve_weighting
from mtrec.models.ranking_tasks import trackers
from mtrec.models.shared_variables import shared_layout
from mtrec.models.task import EvalTarget
from mtrec.models.task import Task
from mtrec.models.train_steps import gradient_train_step
from mtrec.models.train_steps import replicated_train_step
from mtrec.weighting import LossWeighting
from mtrec.weighting.epoch_update import with_epoch_update


def _checked_tasks(tasks: Sequence[Task]) -> list[Task]:
    """``tasks`` as a list, validated.

    Raises:
      ValueError: no task, or two with the same name.
    """
    tasks = list(tasks)
    names = [t.name for t in tasks]
    if not tasks or len(set(names)) != len(names):
        raise ValueError(
            f"`tasks` must be non-empty with unique names. Received: {names}"
        )
    return tasks


#: Position of ``callbacks`` in ``tf.keras.Model.fit``'s arguments.
_FIT_CALLBACKS = 5


@tf.keras.utils.register_keras_serializable(package="mtrec")
class MultiTaskRanker(tfrs.Model):
    """A multi-task ranking model on ``tfrs.Model``.

    ``h = features(x)``; ``{h_k} = backbone(h)``; ``z_k = tower_k(h_k)``;
    output ``p_k = sigmoid(z_k)`` for binary tasks and ``z_k`` for regression.
    The loss is ``weighting({k: L_k})`` with ``L_k`` from one
    ``tfrs.tasks.Ranking`` per task (log loss or MSE), masked by the task's
    ``condition`` column when it has one (a per-task sample weight: masked
    rows count as zeros in the task's mean). The log loss of a tower's own
    output is computed from its logit,
    ``L_k = mean(max(z_k, 0) - z_k y_k + log(1 + exp(-|z_k|)))``, which stays
    exact where ``sigmoid(z_k)`` rounds to 0 or 1; outputs that are not a
    tower's (ESMM's ``pCTCVR = pCTR × pCVR``) keep the log loss of the
    probability.

    Training: a loss-based weighting (``fixed``, ``uncertainty``, ``dwa``...)
    goes through ``tfrs.Model.train_step`` on the weighted total. A
    gradient-based one (``GradientWeighting``: ``grad_norm_static``,
    ``gradnorm``, ``pcgrad``) gets one gradient per task from a persistent
    tape, on every trainable variable, and returns the update; the shared
    parameters are the variables of the embeddings, cross layers and backbone
    that at least two tasks reach (``shared_candidates``). Every step updates
    the metrics ``<output>_loss`` and ``weight_<output>`` (the effective
    weight), averaged over the epoch. ``fit`` attaches the weighting's epoch
    callback (``mtrec.weighting.EpochUpdate``) unless one is given, so the
    epoch-based strategies (``dwa``, ``lbtw``, ``dtp``) work under a plain
    ``model.fit``. GradNorm's ``W`` is the backbone's last shared layer
    (``mtrec.models.backbones.shared_layer_variables``).

    Args:
      feature_layer: maps the raw input dict to ``(batch, d)``
        (``mtrec.features.FeatureEmbedding``).
      backbone: maps ``(batch, d)`` to ``{task name: (batch, d_k)}``
        (``SharedBottom``, ``MMoE``, ...), with one key per tower.
      tasks: the tasks.
      tower_units, tower_activation, tower_dropout, tower_l2: the towers.
      weighting: a ``LossWeighting`` for the supervised outputs, or a name
        of ``mtrec.weighting.WEIGHTINGS`` (built for the supervised tasks,
        default arguments); default ``"fixed"`` (the ``Task.weight`` s).
        With arguments, build it first: ``mtrec.weighting.build_weighting(
        name, {output: Task}, args)`` (ESMM's outputs:
        ``mtrec.models.esmm_supervised_tasks``).
      cross_layers: DCN-v2 cross layers (``tfrs.layers.dcn.Cross``) applied to
        the embeddings before the backbone. Default 0.
      cross_projection_dim: low-rank projection of the cross layers (``None``:
        full rank).
      training_metrics: whether each task updates its metric (AUC or RMSE) on
        every training and evaluation step (``<output>_auc``). Default
        ``True``; ``False`` reports only the losses and weights, a smaller and
        faster step.
      fit_steps_per_execution: batches per graph call of ``fit`` where no
        one can tell (``mtrec.models.multi_step``): when Keras knows the
        number of batches in advance (arrays, datasets of known length) and
        no callback has per-batch hooks, ``fit`` runs this many inside one
        call instead of returning to Python after each: the same steps and
        epoch logs. Otherwise, and when ``compile`` was given its own
        ``steps_per_execution``, ``fit`` is Keras'. Default 64; 1 is Keras'.
      predict_steps_per_execution: the same for ``predict`` (where Keras
        knows the number of batches): the same predictions; its batch
        callbacks, if any, see every ``k``-th batch. Default 64.
      predict_jit_compile: ``predict`` runs the model compiled by XLA, its
        input checks kept (``mtrec.models.compiled_predict``): faster per
        batch for gated backbones once compiled, but compiled once per
        power of two of the batch size (each batch is padded to one), so
        for large scoring jobs. Needs a feature
        layer XLA can compile (encoded ids). Default ``False``; not under a
        distribution strategy.
      supervised: keyword only, for subclasses whose loss outputs are not
        their towers (ESMM): ``{output: Task}``, the outputs the loss is
        computed on, each an output of ``call``. Default one per task.

    Call arguments:
      inputs: the raw feature dict (labels may be present and are ignored).
      training: Keras' training flag.
      return_logits: also return ``{tower task: (batch, 1)}`` logits.

    Call returns a dict ``{task name: (batch, 1)}`` of predictions
    (probabilities for binary tasks), or ``(predictions, logits)`` with
    ``return_logits=True``.
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
        weighting: LossWeighting | str | None = None,
        cross_layers: int = 0,
        cross_projection_dim: int | None = None,
        training_metrics: bool = True,
        fit_steps_per_execution: int = DEFAULT_STEPS_PER_CALL,
        predict_steps_per_execution: int = DEFAULT_STEPS_PER_CALL,
        predict_jit_compile: bool = False,
        *,
        supervised: Mapping[str, Task] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.fit_steps_per_execution = check_steps_per_call(
            "fit_steps_per_execution", fit_steps_per_execution
        )
        self.predict_steps_per_execution = check_steps_per_call(
            "predict_steps_per_execution", predict_steps_per_execution
        )
        self._step_functions = StepFunctionCache()
        self.training_metrics = check_bool("training_metrics", training_metrics)
        tasks = _checked_tasks(tasks)
        # Keep the order below: it is the order of the argument checks (the
        # first error raised) and of the sublayers in ``model.variables``.
        self.feature_layer = feature_layer
        self.predict_jit_compile = check_predict_jit_compile(
            predict_jit_compile, feature_layer
        )
        self.backbone = backbone
        self.tasks = tasks
        self.tower_units = [int(u) for u in tower_units]
        self.tower_activation = tower_activation
        self.tower_dropout = float(tower_dropout)
        self.tower_l2 = float(tower_l2)
        self.crosses = cross_stack(cross_layers, cross_projection_dim)
        self.cross_layers = cross_layers
        self.cross_projection_dim = cross_projection_dim
        self.towers = tower_layers(
            tasks, self.tower_units, tower_activation, tower_dropout, tower_l2
        )
        self._init_losses(tasks, supervised, training_metrics, weighting)

    def _init_losses(
        self,
        tasks: list[Task],
        supervised: Mapping[str, Task] | None,
        training_metrics: bool,
        weighting: LossWeighting | str | None,
    ) -> None:
        """Sets the supervised outputs, each one's ranking task and loss and
        weight trackers, and the weighting that combines their losses."""
        # No seam a subclass overrides (``supervised_tasks``, ``logit_outputs``)
        # is called: what a subclass changes (the supervised outputs) arrives
        # as an argument.
        self.supervised = None if supervised is None else dict(supervised)
        supervised = dict(supervised or {t.name: t for t in tasks})
        self._supervised = supervised
        names = {t.name for t in tasks}
        self._logit_outputs = {
            out
            for out, task in supervised.items()
            if task.kind == "binary" and out in names
        }
        self.ranking_tasks = {
            out: ranking_task(
                task,
                out,
                from_logits=out in self._logit_outputs,
                metrics=training_metrics,
            )
            for out, task in supervised.items()
        }
        self.loss_trackers = trackers("{}_loss", supervised)
        self.weight_trackers = trackers("weight_{}", supervised)
        self.weighting = resolve_weighting(weighting, supervised)

    def get_config(self) -> dict:
        """Every constructor argument; layers as Keras configs, tasks as dicts."""
        serialize = tf.keras.utils.serialize_keras_object
        return {
            "name": self.name,
            "feature_layer": serialize(self.feature_layer),
            "backbone": serialize(self.backbone),
            "tasks": [t.to_dict() for t in self.tasks],
            "tower_units": list(self.tower_units),
            "tower_activation": self.tower_activation,
            "tower_dropout": self.tower_dropout,
            "tower_l2": self.tower_l2,
            "weighting": serialize(self.weighting),
            "cross_layers": self.cross_layers,
            "cross_projection_dim": self.cross_projection_dim,
            "training_metrics": self.training_metrics,
            "fit_steps_per_execution": self.fit_steps_per_execution,
            "predict_steps_per_execution": self.predict_steps_per_execution,
            "predict_jit_compile": self.predict_jit_compile,
            "supervised": None
            if self.supervised is None
            else {out: t.to_dict() for out, t in self.supervised.items()},
        }

    @classmethod
    def _deserialize_arguments(cls, config: dict) -> dict:
        """Constructor arguments from ``get_config``; subclasses add their keys."""
        config = dict(config)
        deserialize = tf.keras.layers.deserialize
        for key in ("feature_layer", "backbone", "weighting"):
            if isinstance(config.get(key), dict):
                config[key] = deserialize(config[key])
        if "tasks" in config:
            config["tasks"] = [Task.from_dict(t) for t in config["tasks"]]
        if isinstance(config.get("supervised"), dict):
            config["supervised"] = {
                out: Task.from_dict(t) for out, t in config["supervised"].items()
            }
        return config

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        with tf.keras.utils.custom_object_scope(custom_objects or {}):
            return cls(**cls._deserialize_arguments(config))

    @property
    def tower_tasks(self) -> list[Task]:
        """The tasks that get a tower (and a backbone output)."""
        return self.tasks

    @property
    def prediction_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def supervised_tasks(self) -> dict[str, Task]:
        """Output name -> the task (label, mask) its loss is computed against."""
        return dict(self._supervised)

    @property
    def logit_outputs(self) -> set[str]:
        """Binary outputs whose log loss is computed from the tower logit."""
        return set(self._logit_outputs)

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
        """Whether the backbone is gated (``mtrec.models.GatedBackbone``)."""
        return isinstance(self.backbone, GatedBackbone)

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

    def tower_logits(self, inputs, training=None) -> dict[str, tf.Tensor]:
        """``{task: z_k}``: each tower's logit (its output, for regression).

        float32 whatever the compute precision (``mtrec.precision``): the
        sigmoid, the losses and the outputs are computed in float32.
        """
        hidden = self.backbone(self.shared_input(inputs), training=training)
        # Towers reading the same tensor (ESMM, shared-bottom, OMoE) share
        # their first matmul, as the experts and gates of a mixture do.
        logits = apply_layers(
            [(hidden[task.name], self.towers[task.name]) for task in self.tower_tasks],
            training=training,
        )
        return {
            task.name: tf.cast(logit, tf.float32)
            for task, logit in zip(self.tower_tasks, logits, strict=True)
        }

    def activate(self, logits: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """``{task: p_k}``: the sigmoid of binary tasks' logits, others as they are."""
        return {
            task.name: tf.sigmoid(logits[task.name])
            if task.kind == "binary"
            else logits[task.name]
            for task in self.tower_tasks
        }

    def tower_outputs(self, inputs, training=None) -> dict[str, tf.Tensor]:
        """``{task: p_k}`` (probability for binary tasks) from the towers."""
        return self.activate(self.tower_logits(inputs, training=training))

    def call(self, inputs, training=None, return_logits=False):
        logits = self.tower_logits(inputs, training=training)
        outputs = self.activate(logits)
        return (outputs, logits) if return_logits else outputs

    def embedding_variables(self) -> list[tf.Variable]:
        """The embedding tables (the feature layer's trainable variables)."""
        return list(self.feature_layer.trainable_variables)

    def dense_variables(self) -> list[tf.Variable]:
        """Every other trainable variable (towers, backbone, learnable weights)."""
        embeddings = {v.ref() for v in self.embedding_variables()}
        return [v for v in self.trainable_variables if v.ref() not in embeddings]

    def shared_candidates(self) -> list[tf.Variable]:
        """Variables that may be shared: embeddings, cross layers, backbone."""
        out = list(self.feature_layer.trainable_variables)
        for cross in self.crosses:
            out.extend(cross.trainable_variables)
        out.extend(self.backbone.trainable_variables)
        return out

    def task_losses(self, inputs, training: bool = False) -> dict[str, tf.Tensor]:
        """``{output: L_k}``; updates each task's metrics and loss tracker.

        Binary tower outputs (``logit_outputs``) are scored from their logits.
        """
        outputs, logits = self(inputs, training=training, return_logits=True)
        from_logits = self.logit_outputs
        losses = {}
        for out, task in self.supervised_tasks().items():
            labels = tf.reshape(tf.cast(inputs[task.label], tf.float32), (-1, 1))
            weight = (
                tf.cast(inputs[task.condition], tf.float32) if task.condition else None
            )
            per_example = self.ranking_tasks[out](
                labels=labels,
                predictions=logits[out] if out in from_logits else outputs[out],
                sample_weight=weight,
                training=training,
            )
            # Keras' SUM_OVER_BATCH_SIZE: masked rows count in the denominator.
            loss = tf.reduce_mean(per_example)
            self.loss_trackers[out].update_state(loss)
            losses[out] = loss
        return losses

    def track_weights(self, weights: dict) -> None:
        """Updates each output's ``weight_<output>`` tracker."""
        for out, tracker in self.weight_trackers.items():
            tracker.update_state(weights[out])

    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        losses = self.task_losses(inputs, training=training)
        total, weights = self.weighting(losses, training=training, return_weights=True)
        self.track_weights(weights)
        return total

    def shared_layer_variables(self) -> list[tf.Variable]:
        """GradNorm's ``W``: the variables of the last shared layer.

        The backbone's (``mtrec.models.backbones.shared_layer_variables``);
        for a backbone with no shared layer, the last cross layer's kernel,
        or else the embedding tables (the last layer every task reads).
        """
        variables = shared_layer_variables(self.backbone)
        if variables:
            return variables
        if self.crosses:
            return [
                v for v in self.crosses[-1].trainable_variables if v.shape.rank == 2
            ][-1:]
        return list(self.feature_layer.trainable_variables)

    def shared_layout(
        self, variables: Sequence[tf.Variable], task_grads: dict
    ) -> tuple[list[bool], list[int]]:
        """Which of ``variables`` are shared (two tasks or more reach them),
        and the indices of GradNorm's ``W`` among them
        (``mtrec.models.shared_variables.shared_layout``)."""
        return shared_layout(self, variables, task_grads)

    def fit(self, *args, **kwargs):
        """``tf.keras.Model.fit`` with the weighting's epoch callback attached,
        ``fit_steps_per_execution`` batches per graph call where no one can
        tell (``mtrec.models.multi_step``), the model built first when its
        inputs are known from the data's spec (``mtrec.models.eager_build``:
        the training step is then traced once).

        An ``mtrec.weighting.EpochUpdate`` goes first in ``callbacks`` unless
        one (or ``mtrec.training.callbacks.WeightingUpdate``) is there, so
        ``dwa``, ``lbtw`` and ``dtp`` see every epoch exactly once.
        """
        if len(args) > _FIT_CALLBACKS:
            args = list(args)
            args[_FIT_CALLBACKS] = with_epoch_update(args[_FIT_CALLBACKS])
        else:
            kwargs["callbacks"] = with_epoch_update(kwargs.get("callbacks"))
        build_before_fit(self, args[0] if args else kwargs.get("x"))
        return fit_in_runs(
            self,
            super().fit,
            self.fit_steps_per_execution,
            self._step_functions,
            *args,
            **kwargs,
        )

    def compile(self, *args, **kwargs):
        """``tf.keras.Model.compile``; also drops the cached multi-step
        functions (compiling changes the optimizer, ``jit_compile`` and the
        strategy they were traced for)."""
        super().compile(*args, **kwargs)
        self._step_functions.clear()

    def predict(self, x, *args, **kwargs):
        """``tf.keras.Model.predict`` with ``predict_steps_per_execution``
        batches per graph call where Keras knows the number of batches
        (``mtrec.models.multi_step``); the same predictions."""
        return predict_in_runs(
            self,
            super().predict,
            self.predict_steps_per_execution,
            self._step_functions,
            x,
            *args,
            **kwargs,
        )

    def train_step(self, inputs):
        """One training step, traced once per compile however often Keras'
        train function calls it (``StepFunctionCache.traced``)."""
        return self._step_functions.traced(self, "train", self._train_step)(inputs)

    def test_step(self, inputs):
        """``tfrs.Model.test_step``, traced once per compile."""
        return self._step_functions.traced(self, "test", super().test_step)(inputs)

    def make_predict_function(self, force=False):
        """Keras' ``make_predict_function``; with several steps per call
        (``predict_steps_per_execution``), one that copies each batch's
        outputs once (``mtrec.models.predict_loop``)."""
        if (self.predict_function is None or force) and keeps_outputs_linear(self):
            self.predict_function = linear_predict_function(self)
            return self.predict_function
        return super().make_predict_function(force)

    def predict_step(self, data):
        """``tf.keras.Model.predict_step``, traced once per compile; the
        model compiled by XLA with ``predict_jit_compile`` outside any
        distribution strategy (``compiles_prediction``)."""
        step = super().predict_step
        if compiles_prediction(self):
            step = functools.partial(
                compiled_predict_step, self, cache=self._step_functions
            )
        return self._step_functions.traced(self, "predict", step)(data)

    def _train_step(self, inputs):
        if self.weighting.uses_gradients:
            return gradient_train_step(self, inputs)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas == 1:
            return super().train_step(inputs)
        return replicated_train_step(self, inputs, replicas)
