"""Watches an export base, loads new versions and swaps them in atomically."""

import dataclasses
import gc
import logging
import os
import pathlib
import threading
import time

import grpc
from tensorflow.errors import OpError

from mtrec.serving.errors import ServingError
from mtrec.serving.servable import Servable
from mtrec.serving.servable import is_version_dir
from mtrec.serving.servable import tf_error_cause

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class VersionStatus:
    """A version's state, as in TF Serving's ``ModelVersionStatus``."""

    version: int
    state: str  # START, LOADING, AVAILABLE, UNLOADING, END
    error_code: grpc.StatusCode = grpc.StatusCode.OK
    error_message: str = ""


class ModelManager:
    """Serves the newest versions under an export base, as TF Serving's
    ``latest`` version policy with a file-system poll.

    Every ``poll_seconds`` the base is listed; integer folders holding a
    SavedModel are versions (``mtrec export`` renames finished versions into
    place, so a folder is never seen half-written). The newest
    ``num_versions`` are loaded, their warmup requests replayed, and only then
    published by replacing the version table in one assignment. A request
    resolves its version once, at its start, and keeps that object for its
    whole life, so a swap never drops a request in flight; an old version is
    released when its last request finishes.

    A version that fails to load (or to warm up) is reported as ``END`` with
    its error, and the versions already serving keep serving. It is tried
    again ``max_load_retries`` times, ``load_retry_seconds`` apart (a copy
    that was not atomic may complete meanwhile), as TF Serving does.

    Args:
      name: the model name clients use.
      base_path: the export base (``<base>/<version>/``).
      num_versions: how many of the newest versions to serve. Default 1.
      poll_seconds: file-system poll period; ``0`` disables polling. Default 1
        (TF Serving's ``--file_system_poll_wait_seconds``).
      max_load_retries: tries after a failed load. Default 5 (TF Serving's
        ``--max_num_load_retries``).
      load_retry_seconds: the wait before each. Default 60 (TF Serving's
        ``--load_retry_interval_micros``).
    """

    def __init__(
        self,
        name: str,
        base_path: str | os.PathLike,
        *,
        num_versions: int = 1,
        poll_seconds: float = 1.0,
        max_load_retries: int = 5,
        load_retry_seconds: float = 60.0,
    ):
        if not name or "/" in name or ":" in name:
            raise ValueError(
                f"`name` must be non-empty, without '/' or ':'. "
                f"Received: `name={name!r}`"
            )
        if num_versions < 1:
            raise ValueError(
                f"`num_versions` must be >= 1. Received: `num_versions={num_versions}`"
            )
        if poll_seconds < 0:
            raise ValueError(
                f"`poll_seconds` must be >= 0. Received: `poll_seconds={poll_seconds}`"
            )
        if (
            isinstance(max_load_retries, bool)
            or not isinstance(max_load_retries, int)
            or (max_load_retries < 0)
        ):
            raise ValueError(
                "`max_load_retries` must be an int >= 0. Received: "
                f"`max_load_retries={max_load_retries!r}`"
            )
        if load_retry_seconds < 0:
            raise ValueError(
                "`load_retry_seconds` must be >= 0. Received: "
                f"`load_retry_seconds={load_retry_seconds}`"
            )
        self.max_load_retries = max_load_retries
        self.load_retry_seconds = float(load_retry_seconds)
        self.name = name
        self.base_path = pathlib.Path(base_path)
        self.num_versions = int(num_versions)
        self.poll_seconds = float(poll_seconds)
        self._servables: dict[int, Servable] = {}
        self._status: dict[int, VersionStatus] = {}
        #: version -> (failed loads, monotonic time of the next try).
        self._failures: dict[int, tuple[int, float]] = {}
        self._poll_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------- #

    def start(self) -> None:
        """Loads the current versions (blocking), then polls in the background."""
        if not self.base_path.is_dir():
            raise FileNotFoundError(f"export base not found: {self.base_path}")
        from mtrec.export import remove_stale_partial_exports

        remove_stale_partial_exports(self.base_path)
        self.poll()
        if not self._servables:
            logger.warning(
                "no servable version of %r under %s yet; polling",
                self.name,
                self.base_path,
            )
        if self.poll_seconds > 0 and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._poll_loop, name=f"mtrec-poll-{self.name}", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll()
            except Exception:  # keep polling whatever happens on disk
                logger.exception("polling %s failed", self.base_path)

    # -- version table ------------------------------------------------------ #

    def available_versions(self) -> list[int]:
        return sorted(self._servables)

    def on_disk_versions(self) -> list[int]:
        if not self.base_path.is_dir():
            return []
        return sorted(
            int(p.name) for p in self.base_path.iterdir() if is_version_dir(p)
        )

    def poll(self) -> bool:
        """One poll: load the aspired versions, unload the others.

        Returns:
          Whether the set of served versions changed.
        """
        with self._poll_lock:
            on_disk = self.on_disk_versions()
            present_on_disk = set(on_disk)
            # A folder removed (or replaced) on disk starts afresh.
            self._failures = {
                v: f for v, f in self._failures.items() if v in present_on_disk
            }
            now = time.monotonic()
            candidates = [
                v
                for v in on_disk
                if v not in self._failures
                or (
                    self._failures[v][0] <= self.max_load_retries
                    and now >= self._failures[v][1]
                )
            ]
            aspired = candidates[-self.num_versions :]
            current = dict(self._servables)
            pool = dict(current)
            for version in aspired:
                if version not in pool:
                    servable = self._load(version)
                    if servable is not None:
                        pool[version] = servable
            # The newest available versions; one that failed to load leaves
            # the versions it would have replaced serving.
            present = [v for v in sorted(pool) if v in present_on_disk]
            table = {v: pool[v] for v in present[-self.num_versions :]}
            if table.keys() == current.keys():
                return False
            self._servables = table  # the atomic swap: one reference assignment
            for version in sorted(set(current) - set(table)):
                self._status[version] = VersionStatus(version, "END")
                logger.info("%s: unloaded version %d", self.name, version)
            for version in sorted(set(table) - set(current)):
                logger.info("%s: serving version %d", self.name, version)
            gc.collect()
            return True

    def _load(self, version: int) -> Servable | None:
        path = self.base_path / str(version)
        self._status[version] = VersionStatus(version, "LOADING")
        start = time.perf_counter()
        try:
            servable = Servable(self.name, version, path)
            warmed = servable.warmup()
        except Exception as err:  # a broken version must not stop the server
            code = (
                err.code if isinstance(err, ServingError) else grpc.StatusCode.UNKNOWN
            )
            failures = self._failures.get(version, (0, 0.0))[0] + 1
            self._failures[version] = (
                failures,
                time.monotonic() + self.load_retry_seconds,
            )
            retries_left = self.max_load_retries - failures + 1
            cause = tf_error_cause(err.message) if isinstance(err, OpError) else err
            message = f"failed to load {path}: {type(err).__name__}: {cause}"
            logger.error(
                "%s (%s)",
                message,
                f"retrying in {self.load_retry_seconds:g}s, {retries_left} retries left"
                if retries_left > 0
                else "no retries left",
            )
            self._status[version] = VersionStatus(version, "END", code, message)
            return None
        logger.info(
            "%s: loaded version %d in %.1fs (%d warmup requests replayed)",
            self.name,
            version,
            time.perf_counter() - start,
            warmed,
        )
        self._failures.pop(version, None)
        self._status[version] = VersionStatus(version, "AVAILABLE")
        return servable

    # -- lookups ------------------------------------------------------------ #

    def get(self, name: str, version: int | None = None) -> Servable:
        """The servable for a request (``version=None``: the newest).

        Raises:
          ServingError: NOT_FOUND, worded as TF Serving, for an unknown model or
            a version that is not being served.
        """
        table = self._servables  # one read: the request keeps this version
        if name != self.name:
            spec = (
                f"Latest({name})" if version is None else f"Specific({name}, {version})"
            )
            raise ServingError.not_found(f"Servable not found for request: {spec}")
        if version is None:
            if not table:
                raise ServingError.not_found(
                    f"Servable not found for request: Latest({name})"
                )
            return table[max(table)]
        if version not in table:
            raise ServingError.not_found(
                f"Servable not found for request: Specific({name}, {version})"
            )
        return table[version]

    def status(self, name: str, version: int | None = None) -> list[VersionStatus]:
        """Version states, newest first, as ``GetModelStatus`` reports them.

        Raises:
          ServingError: NOT_FOUND for an unknown model or version.
        """
        states = dict(self._status)  # a snapshot: the poller may be writing
        if name != self.name or not states:
            raise ServingError.not_found(f"Could not find any versions of model {name}")
        if version is not None:
            if version not in states:
                raise ServingError.not_found(
                    f"Could not find version {version} of model {name}"
                )
            return [states[version]]
        return [states[v] for v in sorted(states, reverse=True)]
