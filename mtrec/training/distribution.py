"""``make_strategy(config)``: the ``tf.distribute`` strategy of a run.

``train.distribution.strategy`` names it; the cluster of the multi-process
strategies comes from ``TF_CONFIG`` (:mod:`mtrec.training.cluster`), checked
before any data is read, with errors naming the variable and the field.
"""

import os
import re
from collections.abc import Mapping

import tensorflow as tf

from mtrec.training.cluster import cluster_spec
from mtrec.training.cluster import resolver
from mtrec.training.config import ConfigError
from mtrec.training.config import RunConfig

#: Shard size of ``parameter_server`` without ``num_shards`` or
#: ``min_shard_bytes``: TensorFlow's ``MinSizePartitioner`` default.
DEFAULT_MIN_SHARD_BYTES = 256 << 10

#: Variables smaller than this stay whole under ``num_shards``: loss-weighting
#: state, biases and other small vectors that code reads as one variable.
MIN_SHARDED_BYTES = 1 << 10


class WholeBelow(tf.distribute.experimental.partitioners.Partitioner):
    """A partitioner that leaves variables under ``min_bytes`` whole.

    Args:
      partitioner: splits the other variables.
      min_bytes: the smallest variable split.

    Example:

    >>> fixed = tf.distribute.experimental.partitioners.FixedShardsPartitioner(2)
    >>> partitioner = WholeBelow(fixed, min_bytes=1024)
    >>> partitioner(tf.TensorShape([2]), tf.float32), partitioner(
    ...     tf.TensorShape([1000, 8]), tf.float32)
    ([1], [2, 1])
    """

    def __init__(self, partitioner, min_bytes: int):
        self.partitioner = partitioner
        self.min_bytes = min_bytes

    def __call__(self, shape, dtype, axis=0):
        shape, dtype = tf.TensorShape(shape), tf.as_dtype(dtype)
        if shape.num_elements() * dtype.size < self.min_bytes:
            return [1] * shape.rank
        return self.partitioner(shape, dtype, axis)


def variable_partitioner(config: RunConfig, environ: Mapping[str, str] | None = None):
    """The ``parameter_server`` partitioner of ``train.distribution``.

    ``num_shards``: ``FixedShardsPartitioner`` for every variable of at least
    :data:`MIN_SHARDED_BYTES`; else ``MinSizePartitioner`` with
    ``min_shard_bytes`` (default 256 KiB) and at most one shard per ps task.
    Small variables stay whole; large embedding tables are split along their
    rows into ``ShardedVariable`` s.
    """
    dist = config.train.distribution
    partitioners = tf.distribute.experimental.partitioners
    if dist.num_shards is not None:
        return WholeBelow(
            partitioners.FixedShardsPartitioner(dist.num_shards), MIN_SHARDED_BYTES
        )
    spec = cluster_spec("parameter_server", environ)
    return partitioners.MinSizePartitioner(
        min_shard_bytes=dist.min_shard_bytes or DEFAULT_MIN_SHARD_BYTES,
        max_shards=spec.count("ps"),
    )


def make_strategy(
    config: RunConfig, environ: Mapping[str, str] | None = None
) -> tf.distribute.Strategy:
    """The strategy ``train.distribution.strategy`` names, cluster checked.

    - ``none``: TensorFlow's default strategy (one process, as without the
      section).
    - ``mirrored``: ``MirroredStrategy`` over the local GPUs, else the CPU
      (one replica; the same training as ``none``).
    - ``multi_worker_mirrored``: ``MultiWorkerMirroredStrategy`` over the
      ``chief`` and ``worker`` tasks of ``TF_CONFIG`` (ring all-reduce on
      CPUs, NCCL on GPUs): every task runs ``mtrec train`` and they step in
      lock-step. Create it before any other TensorFlow op of the process.
    - ``parameter_server``: ``ParameterServerStrategy`` with the
      :func:`variable_partitioner`: variables on the ``ps`` tasks, large
      embedding tables sharded over them; this process (the ``chief``) is the
      coordinator and schedules steps on the ``worker`` tasks (started with
      ``mtrec cluster-server``).

    Raises:
      ConfigError: a bad ``TF_CONFIG`` for the strategy, naming the field.

    Example:

    >>> from mtrec.training import load_config
    >>> config = load_config({
    ...     "features": [{"name": "city", "kind": "categorical"}],
    ...     "tasks": [{"name": "ctr", "label": "click"}],
    ...     "train": {"distribution": {"strategy": "mirrored"}},
    ... }, in_memory=True)
    >>> make_strategy(config).num_replicas_in_sync >= 1
    True
    """
    name = config.train.distribution.strategy
    spec = cluster_spec(name, environ)
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy(
            devices=[d.name for d in gpus] if gpus else ["/cpu:0"]
        )
    if name == "multi_worker_mirrored":
        implementation = tf.distribute.experimental.CommunicationImplementation
        gpus = tf.config.list_physical_devices("GPU")
        return tf.distribute.MultiWorkerMirroredStrategy(
            cluster_resolver=resolver(spec),
            communication_options=tf.distribute.experimental.CommunicationOptions(
                implementation=implementation.NCCL if gpus else implementation.RING
            ),
        )
    os.environ.setdefault("GRPC_FAIL_FAST", "use_caller")
    return tf.distribute.ParameterServerStrategy(
        resolver(spec), variable_partitioner=variable_partitioner(config, environ)
    )


def check_batch_size(config: RunConfig, replicas: int) -> None:
    """``train.batch_size`` splits evenly over ``replicas`` synchronous replicas.

    Raises:
      ConfigError: it does not, naming the key, the strategy and the count.
    """
    batch_size = config.train.batch_size
    if replicas > 1 and batch_size % replicas:
        raise ConfigError(
            f"'train.batch_size' must be a multiple of the {replicas} replicas of "
            f"'train.distribution.strategy: {config.train.distribution.strategy}' "
            f"(each replica trains on an equal share of a batch). Received: "
            f"{batch_size}"
        )


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run: not a non-chief mirrored worker.

    Under ``multi_worker_mirrored`` the ``chief`` task (or, without one,
    worker 0) writes checkpoints, metrics and the export; the other workers
    train in lock-step and write nothing that lasts. Every other strategy
    has one writing process.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    return bool(strategy.extended.should_checkpoint)


def coordinated(strategy: tf.distribute.Strategy) -> bool:
    """Whether ``Model.fit`` runs through a ``ClusterCoordinator`` (ps training)."""
    return isinstance(strategy, tf.distribute.ParameterServerStrategy)


def multi_process(strategy: tf.distribute.Strategy) -> bool:
    """Whether the strategy spans several processes (a ``TF_CONFIG`` cluster)."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or (
        coordinated(strategy)
    )


_PART = re.compile(r"^(?P<name>.+)/part_(?P<index>\d+)(:\d+)?$")


def sharded_variables(model: tf.keras.Model) -> dict[str, list[dict]]:
    """The model's variables split over ``ps`` tasks, shard by shard.

    Returns:
      ``{variable: [{"device": ..., "shape": [...]}, ...]}`` in shard order,
      for every variable of more than one shard (``parameter_server`` with a
      partitioner); ``{}`` under every other strategy.
    """
    groups: list[tuple[str, list]] = []
    for variable in model.variables:
        match = _PART.match(variable.name)
        if match is None:
            continue
        if int(match["index"]) == 0:  # the shards of one variable are adjacent
            groups.append((match["name"], []))
        groups[-1][1].append(
            {"device": variable.device, "shape": variable.shape.as_list()}
        )
    sharded: dict[str, list[dict]] = {}
    for name, shards in groups:
        if len(shards) < 2:
            continue
        key, copy = name, 1
        while key in sharded:  # variable names need not be unique
            key, copy = f"{name}_{copy}", copy + 1
        sharded[key] = shards
    return sharded


def distribution_report(config: RunConfig, model: tf.keras.Model) -> dict:
    """``metrics.json``'s ``distribution``: the strategy, cluster and shards."""
    name = config.train.distribution.strategy
    report: dict = {
        "strategy": name,
        "replicas_in_sync": model.distribute_strategy.num_replicas_in_sync,
    }
    spec = cluster_spec(name)  # None for the one-process strategies
    if spec is not None:
        report["cluster"] = {role: spec.count(role) for role in sorted(spec.cluster)}
    sharded = sharded_variables(model)
    if sharded:
        report["sharded_variables"] = sharded
    return report
