"""``TF_CONFIG``: the cluster of a multi-process run, checked field by field.

:func:`parse_tf_config` reads the variable as TensorFlow defines it,
:func:`cluster_spec` checks it against a ``train.distribution.strategy``, and
:func:`run_cluster_server` starts the ``tf.distribute.Server`` of a ``ps`` or
``worker`` task (``mtrec cluster-server``).
"""

import dataclasses
import json
import os
from collections.abc import Mapping

import tensorflow as tf

from mtrec.training.config import ConfigError

#: Roles of a ``TF_CONFIG`` cluster mtrec knows.
ROLES = ("chief", "worker", "ps", "evaluator")


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
    data = _load_tf_config(text, strategy)
    cluster = _check_cluster(data.get("cluster"))
    task_type, index = _check_task(data.get("task"), cluster)
    return ClusterSpec(cluster=cluster, task_type=task_type, task_index=index)


def _load_tf_config(text: str | None, strategy: str) -> dict:
    """``TF_CONFIG`` decoded as a JSON object.

    Raises:
      ConfigError: missing, not JSON or not an object; the first two name the
        ``strategy`` that reads it, if any.
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
    return data


def _check_cluster(cluster) -> dict:
    """Checks ``TF_CONFIG.cluster`` maps known roles to lists of ``host:port``.

    Raises:
      ConfigError: not a non-empty mapping, an unknown role, or a bad list or
        address, naming the role (and the address's index).
    """
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
        _check_addresses(role, addresses)
    return cluster


def _check_addresses(role: str, addresses) -> None:
    """Checks ``TF_CONFIG.cluster.<role>`` is a non-empty list of ``host:port``.

    Raises:
      ConfigError: not a non-empty list, or an address that is not
        ``host:port``, naming ``role`` (and the address's index).
    """
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


def _check_task(task, cluster: dict) -> tuple[str, int]:
    """``TF_CONFIG.task`` as ``(type, index)``, a task of ``cluster``.

    Raises:
      ConfigError: not a mapping, a type not in ``cluster``, or an index that
        is not an int or out of range for its role.
    """
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
    return task_type, index


def _roles(spec: ClusterSpec) -> dict[str, int]:
    return {role: len(addresses) for role, addresses in spec.cluster.items()}


def resolver(spec: ClusterSpec) -> tf.distribute.cluster_resolver.ClusterResolver:
    """The cluster resolver of a parsed ``TF_CONFIG`` (gRPC)."""
    return tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(spec.cluster),
        task_type=spec.task_type,
        task_id=spec.task_index,
        rpc_layer="grpc",
    )


#: Roles ``mtrec cluster-server`` serves.
SERVER_ROLES = ("ps", "worker")


def cluster_server(environ: Mapping[str, str] | None = None) -> tf.distribute.Server:
    """Starts the ``tf.distribute.Server`` of this ``ps`` or ``worker`` task.

    What a ``parameter_server`` cluster runs on every task but the chief
    (``mtrec cluster-server`` then blocks on it): the server holds the
    variables (``ps``) or runs the steps the chief schedules (``worker``).
    Sets ``GRPC_FAIL_FAST=use_caller`` (unless set) so that a lost peer is
    reported to the coordinator, which reschedules the work, as TensorFlow
    recommends.

    Raises:
      ConfigError: ``TF_CONFIG`` missing or bad, or this task is not a ``ps``
        or ``worker`` task.
    """
    environ = os.environ if environ is None else environ
    spec = parse_tf_config(environ.get("TF_CONFIG"))
    if spec.task_type not in SERVER_ROLES:
        raise ConfigError(
            "mtrec cluster-server serves the 'ps' and 'worker' tasks; the "
            "'chief' runs mtrec train. Received: TF_CONFIG.task.type="
            f"{spec.task_type!r}"
        )
    os.environ.setdefault("GRPC_FAIL_FAST", "use_caller")
    return tf.distribute.Server(
        tf.train.ClusterSpec(spec.cluster),
        job_name=spec.task_type,
        task_index=spec.task_index,
        protocol="grpc",
        start=True,
    )
