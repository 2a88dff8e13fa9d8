"""``make_strategy(config)``: the ``tf.distribute`` strategy of a run.

``train.distribution.strategy`` names it; the cluster of the multi-machine
strategies comes from ``TF_CONFIG``, checked by :func:`cluster_spec` before
any data is read, with errors naming the variable and the field.
"""

import dataclasses
import json
import os
from collections.abc import Mapping

import tensorflow as tf

from mtrec.training.config import ConfigError
from mtrec.training.config import RunConfig

#: Roles of a ``TF_CONFIG`` cluster mtrec knows.
ROLES = ("chief", "worker", "ps", "evaluator")

#: Shard size of ``parameter_server`` without ``num_shards`` or
#: ``min_shard_bytes``: TensorFlow's ``MinSizePartitioner`` default.
DEFAULT_MIN_SHARD_BYTES = 256 << 10


@dataclasses.dataclass(frozen=True)
class ClusterSpec:
    """The parsed ``TF_CONFIG``: the cluster and this process's task.

    Attributes:
      cluster: ``{role: ["host:port", ...]}``.
      task_type: this process's role (``chief``, ``worker``, ``ps``).
      task_index: its index within the role.
    """

    cluster: dict
    task_type: str
    task_index: int

    def count(self, role: str) -> int:
        """Number of tasks of ``role``."""
        return len(self.cluster.get(role, []))


def cluster_spec(
    strategy: str, environ: Mapping[str, str] | None = None
) -> ClusterSpec | None:
    """Checks ``TF_CONFIG`` for ``strategy``; ``None`` when it needs none.

    ``none`` and ``mirrored`` run in one process (``TF_CONFIG`` is ignored).
    ``multi_worker_mirrored`` needs ``worker`` tasks (and at most one
    ``chief``) and this process to be one of them; ``parameter_server`` needs
    one ``chief``, at least one ``worker`` and one ``ps``, and (for ``mtrec
    train``) this process to be the ``chief``, the coordinator.

    Args:
      strategy: a ``train.distribution.strategy``.
      environ: the environment; default ``os.environ``.

    Raises:
      ConfigError: ``TF_CONFIG`` missing, not JSON, or not a cluster the
        strategy can run on, naming the field.

    Example:

    >>> spec = cluster_spec("multi_worker_mirrored", {"TF_CONFIG": json.dumps({
    ...     "cluster": {"worker": ["127.0.0.1:2222", "127.0.0.1:2223"]},
    ...     "task": {"type": "worker", "index": 1}})})
    >>> spec.task_type, spec.task_index, spec.count("worker")
    ('worker', 1, 2)
    """
    if strategy in ("none", "mirrored"):
        return None
    environ = os.environ if environ is None else environ
    spec = parse_tf_config(environ.get("TF_CONFIG"), strategy)
    where = f"'train.distribution.strategy: {strategy}' needs TF_CONFIG"
    if strategy == "multi_worker_mirrored":
        if spec.count("worker") < 1 or spec.count("chief") > 1 or spec.count("ps"):
            raise ConfigError(
                f"{where} to list 'worker' tasks (and at most one 'chief', no "
                f"'ps'). Received cluster roles: {_roles(spec)}"
            )
        if spec.task_type not in ("chief", "worker"):
            raise ConfigError(
                f"{where}.task.type to be 'chief' or 'worker' for mtrec train. "
                f"Received: {spec.task_type!r}"
            )
    else:  # parameter_server
        if spec.count("chief") != 1 or spec.count("worker") < 1 or spec.count("ps") < 1:
            raise ConfigError(
                f"{where} to list one 'chief', at least one 'worker' and at least "
                f"one 'ps' task. Received cluster roles: {_roles(spec)}"
            )
        if spec.task_type != "chief":
            raise ConfigError(
                f"{where}.task.type to be 'chief': mtrec train is the "
                "coordinator; start the 'worker' and 'ps' tasks with mtrec "
                f"cluster-server. Received: {spec.task_type!r}"
            )
    return spec


def parse_tf_config(text: str | None, strategy: str = "") -> ClusterSpec:
    """``TF_CONFIG`` (JSON) as a :class:`ClusterSpec`, every field checked.

    Raises:
      ConfigError: missing, not JSON, or a bad ``cluster`` / ``task`` field.
    """
    needs = f" ('train.distribution.strategy: {strategy}' reads it)" if strategy else ""
    if not text:
        raise ConfigError(
            f"The environment variable TF_CONFIG is not set{needs}. Set it to "
            '{"cluster": {"worker": ["host:port", ...], ...}, "task": '
            '{"type": "worker", "index": 0}}'
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(
            f"TF_CONFIG is not valid JSON{needs}: {err.msg} at line {err.lineno}, "
            f"column {err.colno}. Received: {text[:200]!r}"
        ) from err
    if not isinstance(data, dict):
        raise ConfigError(f"TF_CONFIG must be a JSON object. Received: {text[:200]!r}")
    cluster = data.get("cluster")
    if not isinstance(cluster, dict) or not cluster:
        raise ConfigError(
            "TF_CONFIG.cluster must map roles to lists of 'host:port'. "
            f"Received: {cluster!r}"
        )
    for role, addresses in cluster.items():
        if role not in ROLES:
            raise ConfigError(
                f"TF_CONFIG.cluster.{role}: unknown role; expected one of {list(ROLES)}"
            )
        if not isinstance(addresses, list) or not addresses:
            raise ConfigError(
                f"TF_CONFIG.cluster.{role} must be a non-empty list of 'host:port'. "
                f"Received: {addresses!r}"
            )
        for i, address in enumerate(addresses):
            host, _, port = str(address).rpartition(":")
            if not isinstance(address, str) or not host or not port.isdigit():
                raise ConfigError(
                    f"TF_CONFIG.cluster.{role}[{i}] must be 'host:port'. "
                    f"Received: {address!r}"
                )
    task = data.get("task")
    if not isinstance(task, dict):
        raise ConfigError(
            f'TF_CONFIG.task must be {{"type": role, "index": i}}. Received: {task!r}'
        )
    task_type, index = task.get("type"), task.get("index", 0)
    if task_type not in cluster:
        raise ConfigError(
            f"TF_CONFIG.task.type must be a role of the cluster {sorted(cluster)}. "
            f"Received: {task_type!r}"
        )
    if isinstance(index, bool) or not isinstance(index, int):
        raise ConfigError(f"TF_CONFIG.task.index must be an int. Received: {index!r}")
    if not 0 <= index < len(cluster[task_type]):
        raise ConfigError(
            f"TF_CONFIG.task.index must be in [0, {len(cluster[task_type])}) "
            f"(the {task_type!r} tasks). Received: {index}"
        )
    return ClusterSpec(cluster=cluster, task_type=task_type, task_index=index)


def _roles(spec: ClusterSpec) -> dict[str, int]:
    return {role: len(addresses) for role, addresses in spec.cluster.items()}


def variable_partitioner(config: RunConfig, environ: Mapping[str, str] | None = None):
    """The ``parameter_server`` partitioner of ``train.distribution``.

    ``num_shards``: ``FixedShardsPartitioner``; else ``MinSizePartitioner``
    with ``min_shard_bytes`` (default 256 KiB) and at most one shard per ps
    task. Small variables stay whole; large embedding tables are split along
    their rows into ``ShardedVariable`` s.
    """
    dist = config.train.distribution
    partitioners = tf.distribute.experimental.partitioners
    if dist.num_shards is not None:
        return partitioners.FixedShardsPartitioner(dist.num_shards)
    spec = cluster_spec("parameter_server", environ)
    return partitioners.MinSizePartitioner(
        min_shard_bytes=dist.min_shard_bytes or DEFAULT_MIN_SHARD_BYTES,
        max_shards=spec.count("ps"),
    )


#: Strategies ``mtrec train`` runs today; the multi-process ones (issue 12)
#: are checked (``cluster_spec``) but refused by :func:`make_strategy` until
#: their input sharding, chief-only writes and coordinator are in place.
SUPPORTED = ("none", "mirrored")


def make_strategy(
    config: RunConfig, environ: Mapping[str, str] | None = None
) -> tf.distribute.Strategy:
    """The strategy ``train.distribution.strategy`` names, cluster checked.

    ``none``: TensorFlow's default strategy (one process, as without the
    section). ``mirrored``: ``MirroredStrategy`` over the local GPUs, else
    the CPU (one replica; the same training as ``none``).
    ``multi_worker_mirrored`` and ``parameter_server`` have their
    ``TF_CONFIG`` checked (:func:`cluster_spec`), then are refused: they are
    not available yet.

    Raises:
      ConfigError: a bad ``TF_CONFIG`` for the strategy, or a strategy not
        available yet, naming ``train.distribution.strategy``.

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
    cluster_spec(name, environ)
    if name not in SUPPORTED:
        raise ConfigError(
            f"'train.distribution.strategy: {name}' is not available yet in "
            f"mtrec train (available: {list(SUPPORTED)}); its TF_CONFIG is valid."
        )
    if name == "none":
        return tf.distribute.get_strategy()
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.MirroredStrategy(
        devices=[d.name for d in gpus] if gpus else ["/cpu:0"]
    )
