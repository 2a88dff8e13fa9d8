"""The run configuration's schema: typed sections, their defaults, their values.

``mtrec.training.config`` loads YAML into these dataclasses and
``mtrec.training.config_checks`` checks their values.
"""

import dataclasses
import pathlib
import typing


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the key."""


@dataclasses.dataclass
class DataConfig:
    """Where the click log is and how it is read."""

    #: Train file(s): a path, a glob or a directory (CSV or Parquet).
    train: str = ""
    #: Held-out file(s); when empty, ``eval_fraction`` of the train rows is held out.
    eval: str | None = None
    #: Fraction of rows held out by a deterministic hash split when ``eval`` is empty.
    eval_fraction: float = 0.1
    #: ``auto`` (from the suffix), ``csv`` or ``parquet``.
    format: str = "auto"
    #: Rows read per chunk; memory is bounded by this and the shuffle buffer.
    chunk_rows: int = 65_536
    #: Rows mixed by the streaming shuffle.
    shuffle_buffer_rows: int = 262_144
    #: ``{child: parent}`` label constraints, e.g. ``{conversion: click}``.
    label_requires: dict = dataclasses.field(default_factory=dict)
    #: ``error`` (default) or ``drop`` rows that break ``label_requires``.
    on_label_violation: str = "error"
    #: Validation file(s) for the per-epoch model selection
    #: (``train.selection``); when empty, ``validation_fraction`` of the rows
    #: is held out for it.
    validation: str | None = None
    #: Without ``validation`` files, the rows of ``train`` kept for selection
    #: by the hash split: taken out of the ``eval_fraction`` (the train rows do
    #: not change) or, with ``eval`` files, out of the train rows.
    validation_fraction: float = 0.05
    #: Shuffle the training rows (files and rows, seeded with ``seed``); ``false``
    #: keeps file and row order, e.g. to compare two input paths batch by batch.
    shuffle: bool = True
    #: Where the prepare pass keeps the validated rows as TFRecord shards
    #: (``mtrec.data.prepare_data``), one entry per content hash of the files,
    #: schema and split, reused by later runs on the same files. Default
    #: ``<runs_dir>/.prepared``.
    prepared_dir: str | None = None
    #: Rows per prepared TFRecord shard (the unit of parallel reads and of
    #: per-worker sharding).
    rows_per_shard: int = 131_072


@dataclasses.dataclass
class ModelConfig:
    """The architecture."""

    #: ``esmm`` or ``multi_task`` (one tower per task, ``single_task`` is one task).
    architecture: str = "esmm"
    #: Backbone name from ``mtrec.training.builders.BACKBONES``.
    backbone: str = "shared_bottom"
    #: Keyword arguments of the backbone layer (``units``, ``num_experts``, ...).
    backbone_args: dict = dataclasses.field(
        default_factory=lambda: {"units": [256, 128]}
    )
    #: Hidden sizes of every task tower.
    tower_units: list = dataclasses.field(default_factory=lambda: [64])
    tower_activation: str = "relu"
    tower_dropout: float = 0.0
    #: L2 on tower kernels.
    tower_l2: float = 0.0
    #: L2 on the embedding tables.
    embeddings_l2: float = 0.0
    #: Column order of the embedding layer's output
    #: (``FeatureEmbedding(output_order=...)``): ``grouped`` (default; the
    #: gathered embeddings first, as one slice, then the other features) or
    #: ``features`` (feature order; the layout of runs made before the option,
    #: which ``mtrec resume`` keeps for them). Equal models, the grouped one
    #: faster; a checkpoint only restores into the order it was written with.
    embedding_order: str = "grouped"
    #: DCN-v2 cross layers on the embeddings before the backbone (0: none).
    cross_layers: int = 0
    #: Low-rank projection of the cross layers (None: full rank).
    cross_projection_dim: int | None = None
    #: Name of ESMM's product output.
    ctcvr_name: str = "ctcvr"
    #: Compute precision (``mtrec.precision``): ``float32`` or
    #: ``mixed_bfloat16`` (float32 weights, bfloat16 matrix products; faster
    #: on CPUs with AMX/AVX512-BF16 where wide products dominate, slower on
    #: others, and it can cost AUC: measure first; outputs stay float32).
    precision: str = "float32"
    #: Predict through XLA (``MultiTaskRanker(predict_jit_compile=True)``):
    #: ``model.predict`` and ``mtrec train``'s evaluations run the model
    #: compiled, the input checks kept. Needs every categorical feature
    #: single-valued with encoded ids (``num_ids``) and one process
    #: (``train.distribution.strategy: none``). XLA compiles once per power
    #: of two of the batch size (batches are padded to one): faster for
    #: large scoring jobs (census PLE 1.25-1.44x on one core,
    #: ``benchmarks/compiled_predict.py``), slower for a few small ones.
    predict_jit_compile: bool = False


SELECTION_MODES = ("max", "min")
#: ``data.format`` values.
DATA_FORMATS = ("auto", "csv", "parquet")
#: ``data.on_label_violation`` values.
LABEL_VIOLATION_MODES = ("error", "drop")


@dataclasses.dataclass
class SelectionConfig:
    """Model selection and early stopping on held-out metrics after each epoch."""

    #: Metric to select on, as ``output.metric`` of the evaluation report
    #: (``ctr.auc``, ``cvr.gauc``, ``ctcvr.logloss``), or a weighted sum
    #: ``{ctr.auc: 0.5, cvr.auc: 0.5}``. ``auto`` (default): the mean held-out
    #: loss of the supervised outputs (log loss of binary ones, RMSE of
    #: regression ones), minimised, whatever ``mode`` says. ``None``: no
    #: per-epoch evaluation, the last epoch is kept.
    metric: str | dict | None = "auto"
    #: ``max`` (AUC, GAUC) or ``min`` (log loss, ECE).
    mode: str = "max"
    #: Stop after this many epochs without improvement (``None``: never).
    #: With ``train.epochs`` as the budget, the default 2 lets a small data set
    #: train for as many epochs as it improves and a large one stop after a
    #: look at two more.
    patience: int | None = 2
    #: Smallest change that counts as an improvement.
    min_delta: float = 0.0
    #: Evaluate and export the best epoch's weights rather than the last.
    restore_best: bool = True


#: ``train.distribution.strategy`` values (``mtrec.training.make_strategy``).
STRATEGIES = ("none", "mirrored", "multi_worker_mirrored", "parameter_server")


@dataclasses.dataclass
class DistributionConfig:
    """How training is spread over devices and machines (``tf.distribute``).

    The cluster of ``multi_worker_mirrored`` and ``parameter_server`` is read
    from the ``TF_CONFIG`` environment variable as TensorFlow defines it
    (``{"cluster": {...}, "task": {"type": ..., "index": ...}}``).
    """

    #: ``none`` (default: one process, TensorFlow's default strategy, exactly
    #: as without this section); ``mirrored`` (synchronous replicas on this
    #: machine's GPUs, or its CPU); ``multi_worker_mirrored`` (synchronous
    #: all-reduce across the ``worker`` tasks of ``TF_CONFIG``);
    #: ``parameter_server`` (variables on the ``ps`` tasks, embedding tables
    #: sharded over them; asynchronous ``worker`` tasks driven by the
    #: ``chief``, the coordinator).
    strategy: str = "none"
    #: ``parameter_server`` only: split every variable into this many shards
    #: (``tf.distribute.experimental.partitioners.FixedShardsPartitioner``).
    num_shards: int | None = None
    #: ``parameter_server`` only: split variables into shards of at least this
    #: many bytes, at most one per ps task
    #: (``MinSizePartitioner``; default 256 KiB when ``num_shards`` is unset).
    min_shard_bytes: int | None = None


@dataclasses.dataclass
class TrainConfig:
    """The optimisation."""

    batch_size: int = 1024
    #: The most epochs to train; with ``selection`` (the default) training
    #: stops earlier once the held-out loss stops improving, and the best
    #: epoch is kept. The same default fits a large click log (best after one
    #: pass, stopped after three) and a table of 80k rows (a dozen epochs).
    epochs: int = 50
    #: Stop each epoch after this many steps (``None``: a full pass).
    steps_per_epoch: int | None = None
    #: ``adam``, ``adagrad``, ``sgd``, ``rmsprop``, or ``composite``:
    #: ``embedding_optimizer`` on the embedding tables and Adam on every other
    #: variable (``tfrs.experimental.optimizers.CompositeOptimizer``).
    optimizer: str = "adam"
    #: The optimisers of ``tf.keras.optimizers.legacy`` (true, default): one
    #: fused kernel per variable (``ResourceApplyAdam``) where the newer
    #: ``tf.keras.optimizers`` run several ops; the same update rule. Census
    #: training epochs measured 1.04x (MMoE), 1.08x (PLE) and 1.07x (ESMM)
    #: faster on one core (``benchmarks/fused_optimizer.py``). A run written
    #: before this key resumes with ``false``, the optimiser its checkpoints
    #: hold.
    fused_optimizer: bool = True
    learning_rate: float = 0.003
    #: ``constant``; ``cosine``: decay from ``learning_rate`` to
    #: ``lr_final_fraction * learning_rate`` over all planned steps (settles the
    #: output bias, so predictions end calibrated; see the note on issue #2);
    #: ``cosine_epoch`` (default): the same decay within every epoch, restarting
    #: each epoch (SGDR), so every epoch ends calibrated and early stopping can
    #: keep any of them.
    lr_schedule: str = "cosine_epoch"
    #: Final learning rate of the cosine schedule, as a fraction of the first.
    lr_final_fraction: float = 0.02
    #: ``composite`` only: the embeddings' optimiser (``adagrad``, ``sgd``,
    #: ``adam``, ``rmsprop``).
    embedding_optimizer: str = "adagrad"
    #: ``composite`` only: the embeddings' learning rate (``None``: the
    #: ``learning_rate``; Adagrad usually wants a larger one, e.g. 0.05).
    embedding_learning_rate: float | None = None
    #: Checkpoints kept in ``<run>/checkpoints`` (one per epoch; resume reads
    #: the last).
    checkpoints_to_keep: int = 3
    #: Also checkpoint every this many steps within an epoch (``None``: only
    #: at epoch ends), with the input position, so ``mtrec resume`` continues
    #: a killed run at the next batch with the weights the uninterrupted run
    #: has there. A multiple of ``steps_per_execution``; one process only.
    checkpoint_every_steps: int | None = None
    #: Measure inter-task affinity (TAG's lookahead, ``mtrec.affinity``) on
    #: every this many training steps (``None``: off). Leaves the training
    #: trajectory unchanged; costs about ``tasks + 1`` forward passes and
    #: ``tasks`` backward passes per measurement. One process only.
    affinity_every_steps: int | None = None
    #: Also force deterministic kernels (``enable_op_determinism``, process
    #: wide, slower). Runs on CPU with the same seed already give identical
    #: metrics without it; set it on GPUs.
    deterministic: bool = False
    #: Per-epoch model selection and early stopping.
    selection: SelectionConfig = dataclasses.field(default_factory=SelectionConfig)
    #: Batch size of evaluation and export scoring.
    eval_batch_size: int = 8192
    #: Show a progress bar. It is the only per-batch callback work: with it the
    #: NaN/inf loss check also runs after every batch (naming the batch),
    #: without it once per epoch (naming the epoch; an epoch's running mean
    #: loss stays NaN once any batch was NaN, so nothing slips through).
    progress: bool = True
    #: Training steps per call of the compiled train function (``model.compile``'s
    #: ``steps_per_execution``): fewer Python round trips per batch. Callbacks'
    #: batch hooks then see every ``steps_per_execution``-th batch. 1 (the
    #: default) leaves it to the model: ``MultiTaskRanker.fit`` runs
    #: ``fit_steps_per_execution`` (64) batches per call where no callback has
    #: batch hooks and the data's length is known, which nothing can observe
    #: (``mtrec.models.multi_step``), else one.
    steps_per_execution: int = 1
    #: Compile the train step with XLA (``model.compile(jit_compile=True)``).
    #: Off by default: on CPU it measured slower (issue #11). The string
    #: lookups of raw ids cannot be compiled: it needs encoded ids
    #: (``num_ids``) or ``encode_ids``, which takes the single-valued
    #: categorical features' lookups out of the train step.
    jit_compile: bool = False
    #: Encode the training rows' categorical values to table rows once, before
    #: training (cached beside the prepared shards, keyed by the
    #: vocabularies), so the train step does no vocabulary or hash lookup.
    #: The model, its checkpoints and its serving graph are unchanged: eval,
    #: selection and serving read raw values. Single-valued categorical
    #: features only (``mtrec.features.IdEncoder``).
    encode_ids: bool = False
    #: Run the per-step training metrics (AUC per task) during ``fit``; ``false``
    #: skips them (a smaller, faster train step; the held-out evaluation is
    #: unchanged).
    training_metrics: bool = True
    #: TensorBoard writes the logs every ``epoch`` (default: no per-batch work)
    #: or every this many batches.
    tensorboard_update_freq: str | int = "epoch"
    #: Training on several devices or machines (``tf.distribute``).
    distribution: DistributionConfig = dataclasses.field(
        default_factory=DistributionConfig
    )


@dataclasses.dataclass
class EvalConfig:
    """What evaluation reports besides AUC and log loss."""

    #: ``{output: column}`` of true probabilities (synthetic data): the oracle AUC.
    oracle: dict = dataclasses.field(default_factory=dict)
    #: Column to group rows by for the group AUC (``gauc``), e.g. ``user_id``;
    #: a feature column or any other column of the data. ``None``: no GAUC.
    gauc_group: str | None = None
    #: Draw the run's figures into ``<run>/plots/`` at the end
    #: (``mtrec.plots.plot_run``; ``mtrec plot RUN`` draws them later too).
    plots: bool = True


@dataclasses.dataclass
class WeightingConfig:
    """How the task losses are combined (``mtrec.weighting.WEIGHTINGS``)."""

    #: ``fixed`` (the tasks' ``weight``), ``equal``, ``initial_loss``,
    #: ``realtime``, ``grad_norm_static``, ``uncertainty``, ``gradnorm``,
    #: ``dwa``, ``lbtw``, ``dtp``, ``pcgrad`` or ``rlw``.
    name: str = "fixed"
    #: Keyword arguments of the strategy, e.g. ``{temperature: 2.0}`` (dwa),
    #: ``{alpha: 1.5}`` (gradnorm), ``{gamma: 1.0}`` (dtp).
    args: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class ExportConfig:
    """Where the SavedModel goes."""

    #: ``mtrec train`` exports a SavedModel at the end of the run.
    enabled: bool = True
    #: The serving export base (versions ``<base>/<n>/``) that ``mtrec
    #: export RUN`` publishes to, and ``mtrec train`` too with ``publish``.
    base: str = "exports/mtrec"
    #: ``false`` (default): ``mtrec train`` exports into the run directory
    #: (``<run>/export/<n>/``), so an experiment never becomes the newest
    #: version a server loads; publish it with ``mtrec export RUN``.
    #: ``true``: ``mtrec train`` exports straight to ``base``.
    publish: bool = False


@dataclasses.dataclass
class RunConfig:
    """A whole run. Relative paths are resolved against the working directory,
    except ``features`` given as a file, which is relative to the config file."""

    name: str = "run"
    seed: int = 42
    #: Parent directory of run directories (``<runs_dir>/<name>-<timestamp>``).
    runs_dir: str = "runs"
    #: Feature specs: a list of dicts or the path of a YAML file holding one.
    features: typing.Any = None
    #: Task dicts: ``{name, label, kind, weight, condition}``.
    tasks: list = dataclasses.field(default_factory=list)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    weighting: WeightingConfig = dataclasses.field(default_factory=WeightingConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def prepared_directory(config: "RunConfig") -> pathlib.Path:
    """``data.prepared_dir``, default ``<runs_dir>/.prepared``."""
    if config.data.prepared_dir:
        return pathlib.Path(config.data.prepared_dir)
    return pathlib.Path(config.runs_dir) / ".prepared"


#: ``train.selection.metric`` that selects on the mean held-out loss.
AUTO_SELECTION = "auto"


def selection_terms(
    metric: str | dict, output_kinds: dict[str, str] | None = None
) -> dict[str, float]:
    """``{"output.metric": weight}`` of a ``train.selection.metric``.

    ``auto`` needs ``output_kinds`` (``{output: task kind}`` of the supervised
    outputs): the mean of their log losses (binary) and RMSEs (regression).
    """
    if metric == AUTO_SELECTION:
        if not output_kinds:
            raise ValueError("selection metric 'auto' needs the supervised outputs")
        weight = 1.0 / len(output_kinds)
        return {
            f"{output}.{'logloss' if kind == 'binary' else 'rmse'}": weight
            for output, kind in output_kinds.items()
        }
    return {metric: 1.0} if isinstance(metric, str) else dict(metric)


def selection_mode(selection: "SelectionConfig") -> str:
    """``min`` for the ``auto`` metric (a loss), else ``selection.mode``."""
    return "min" if selection.metric == AUTO_SELECTION else selection.mode
