"""``LocalCluster``: a ``tf.distribute`` cluster of processes on 127.0.0.1.

For tests, benchmarks and trying ``parameter_server`` or
``multi_worker_mirrored`` on one machine: it picks free loopback ports, writes
the ``TF_CONFIG`` of every task, starts the ``ps`` and ``worker`` servers
(``mtrec cluster-server``) as processes of their own, and stops them. The
chief (``mtrec train``) is started by the caller with :meth:`env`. It is not a
launcher for real clusters: there, Kubernetes, Slurm or a shell script start
the same commands with the same ``TF_CONFIG`` (see ``docs/distributed.md``).
"""

import contextlib
import json
import logging
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1 (bound, then released)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def tf_config(cluster: dict, task_type: str, index: int = 0) -> str:
    """The ``TF_CONFIG`` JSON of one task of ``cluster``."""
    return json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})


class LocalCluster:
    """A cluster on 127.0.0.1: its ``TF_CONFIG`` s and its server processes.

    ``parameter_server`` (``ps > 0``): one ``chief`` (the caller's
    ``mtrec train``), ``workers`` worker servers and ``ps`` ps servers, which
    :meth:`start` launches as ``mtrec cluster-server`` processes.
    ``multi_worker_mirrored`` (``ps == 0``): ``workers`` worker tasks and no
    servers; every task is a ``mtrec train`` the caller starts with
    :meth:`env`.

    Args:
      workers: worker tasks (>= 1).
      ps: parameter-server tasks (0: a mirrored cluster).
      log_dir: where each server writes ``<role><index>.log``; default none.

    Example:

    >>> cluster = LocalCluster(workers=2, ps=0)
    >>> sorted(cluster.cluster), len(cluster.cluster["worker"])
    (['worker'], 2)
    >>> json.loads(cluster.env("worker", 1)["TF_CONFIG"])["task"]
    {'type': 'worker', 'index': 1}
    """

    def __init__(self, workers: int, ps: int, log_dir: str | os.PathLike | None = None):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(
                f"`workers` must be an int >= 1. Received: `workers={workers!r}`"
            )
        if isinstance(ps, bool) or not isinstance(ps, int) or ps < 0:
            raise ValueError(f"`ps` must be an int >= 0. Received: `ps={ps!r}`")
        chief = 1 if ps else 0
        ports = iter(free_ports(chief + workers + ps))
        roles = {"chief": chief, "worker": workers, "ps": ps}
        self.cluster = {
            role: [f"{HOST}:{next(ports)}" for _ in range(count)]
            for role, count in roles.items()
            if count
        }
        self.log_dir = pathlib.Path(log_dir) if log_dir else None
        self.processes: dict[tuple[str, int], subprocess.Popen] = {}

    def env(self, task_type: str, index: int = 0) -> dict[str, str]:
        """This process's environment with the ``TF_CONFIG`` of one task."""
        return {**os.environ, "TF_CONFIG": tf_config(self.cluster, task_type, index)}

    def start(self) -> "LocalCluster":
        """Starts a ``mtrec cluster-server`` process per ps and worker task.

        Only for ``parameter_server`` clusters; the servers accept connections
        once TensorFlow has imported (the chief retries until they do).
        """
        if "ps" not in self.cluster:
            raise ValueError(
                "a multi_worker_mirrored cluster has no servers: start mtrec "
                "train on every worker with env('worker', i)"
            )
        for role in ("ps", "worker"):
            for index in range(len(self.cluster[role])):
                self.start_task(role, index)
        return self

    def start_task(self, role: str, index: int) -> subprocess.Popen:
        """Starts (or restarts) the server of one ``ps`` or ``worker`` task."""
        output = contextlib.nullcontext(subprocess.DEVNULL)
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            output = open(self.log_dir / f"{role}{index}.log", "ab")  # noqa: SIM115
        with output as stdout:  # the child keeps its own copy of the handle
            process = subprocess.Popen(
                [sys.executable, "-m", "mtrec.cli", "cluster-server"],
                env=self.env(role, index),
                stdout=stdout,
                stderr=subprocess.STDOUT,
            )
        self.processes[(role, index)] = process
        return process

    def kill(self, role: str, index: int) -> None:
        """Kills one server process (SIGKILL: a crashed machine) and reaps it."""
        process = self.processes[(role, index)]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    def stop(self, timeout: float = 30.0) -> None:
        """Stops every server: SIGTERM, then SIGKILL after ``timeout`` s."""
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def __enter__(self) -> "LocalCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
