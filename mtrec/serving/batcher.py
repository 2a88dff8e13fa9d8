"""Cross-request batching: concurrent predict calls merged into one model call.

A local counterpart of TF Serving's ``--enable_batching`` (TensorFlow's
``SharedBatchScheduler`` under TF Serving's ``BatchingSession``), configured
by the same :class:`BatchingParameters`.
"""

import collections
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from collections.abc import Hashable
from collections.abc import Mapping

import grpc
import numpy as np

from mtrec.serving.batching_parameters import BatchingParameters
from mtrec.serving.errors import ServingError

logger = logging.getLogger(__name__)

#: A model call: numpy inputs (rows along the first dimension) to numpy outputs.
Call = Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]

#: How often a waiting request or an idle thread looks at the stop flag.
_POLL_SECONDS = 0.5


class _Task:
    """One request: its inputs, the parts it was split into, its result."""

    def __init__(self, inputs: Mapping[str, np.ndarray], size: int, call: Call):
        self.inputs = inputs
        self.size = size
        self.call = call
        self.parts: list[dict[str, np.ndarray] | None] = []
        self.error: ServingError | None = None
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._missing = 0
        self._delivered: set[int] = set()

    def add_part(self) -> int:
        self.parts.append(None)
        self._missing += 1
        return len(self.parts) - 1

    def deliver(self, index: int, outputs=None, error=None) -> None:
        with self._lock:
            if index in self._delivered:
                return
            self._delivered.add(index)
            if error is not None and self.error is None:
                self.error = error
            self.parts[index] = outputs
            self._missing -= 1
            if self._missing == 0:
                self.done.set()

    def result(self) -> dict[str, np.ndarray]:
        if self.error is not None:
            raise self.error
        if len(self.parts) == 1:
            return self.parts[0]
        return {
            name: np.concatenate([part[name] for part in self.parts])
            for name in self.parts[0]
        }


@dataclasses.dataclass
class _Piece:
    """Rows ``start:stop`` of a task, part ``index`` of its result."""

    task: _Task
    start: int
    stop: int
    index: int

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclasses.dataclass
class _Batch:
    pieces: list[_Piece] = dataclasses.field(default_factory=list)
    size: int = 0
    opened: float = 0.0


class _Queue:
    """The batches of one key: closed ones waiting, then the open one."""

    def __init__(self):
        self.batches: collections.deque[_Batch] = collections.deque([_Batch()])

    @property
    def empty(self) -> bool:
        return len(self.batches) == 1 and not self.batches[0].pieces


class Batcher:
    """Merges concurrent calls with the same key into one call per batch.

    Requests are queued by key (the server uses model version, signature and
    the inputs' dtypes and shapes after the first dimension, so only requests
    that can be concatenated share a queue). A batch runs when it is full
    (``max_batch_size`` rows), when its first request has waited
    ``batch_timeout_micros``, or, with a timeout of 0, as soon as one of the
    ``num_batch_threads`` threads is free. Its inputs are concatenated along
    the first dimension (padded to ``allowed_batch_sizes`` by repeating the
    first row), the call runs once, and each request gets its own rows of
    every output back.

    As TF Serving's scheduler: a request larger than ``max_batch_size`` is
    INVALID_ARGUMENT (``Task size N is larger than maximum input batch size
    M``) unless ``enable_large_batch_splitting``; a request that would need
    more than ``max_enqueued_batches`` waiting batches is UNAVAILABLE (HTTP
    503) at once. Unlike TF Serving, a merged call that fails is retried
    request by request, so one bad request (e.g. a NaN an assertion in the
    graph refuses) fails alone instead of failing its batch-mates; and a
    merged call whose outputs do not have one row per input row is run
    request by request too.

    Args:
      parameters: the batching configuration.

    Example:

    >>> batcher = Batcher(BatchingParameters(max_batch_size=8, num_batch_threads=1))
    >>> double = lambda inputs: {"y": inputs["x"] * 2}
    >>> batcher.run("double", {"x": np.array([1, 2])}, 2, double)["y"]
    array([2, 4])
    >>> batcher.stop()
    """

    def __init__(self, parameters: BatchingParameters):
        self.parameters = parameters
        self._queues: dict[Hashable, _Queue] = {}
        self._cond = threading.Condition()
        self._stopping = False
        self._next = 0  # round-robin start among queues
        self._stats: collections.Counter = collections.Counter()
        if parameters.pad_variable_length_inputs:
            logger.info(
                "pad_variable_length_inputs: mtrec does not pad; requests whose "
                "inputs differ in shape after the first dimension run in "
                "separate batches"
            )
        self._threads = [
            threading.Thread(target=self._work, name=f"mtrec-batch-{i}", daemon=True)
            for i in range(parameters.num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    # -- requests ----------------------------------------------------------- #

    def run(
        self,
        key: Hashable,
        inputs: Mapping[str, np.ndarray],
        size: int,
        call: Call,
    ) -> dict[str, np.ndarray]:
        """Runs ``call`` on ``inputs`` (``size`` rows) in a batch; blocks.

        Raises:
          ServingError: INVALID_ARGUMENT for a request over ``max_batch_size``,
            UNAVAILABLE for a full queue or a stopped batcher, or the error
            of the request's own call.
        """
        task = _Task(inputs, size, call)
        self._schedule(key, task)
        while not task.done.wait(_POLL_SECONDS):
            if not any(thread.is_alive() for thread in self._threads):
                raise ServingError(
                    grpc.StatusCode.UNAVAILABLE, "the batcher stopped"
                )  # pragma: no cover - stop() drains the queues first
        return task.result()

    def _schedule(self, key: Hashable, task: _Task) -> None:
        params = self.parameters
        limit = params.max_batch_size
        if task.size > limit:
            raise ServingError.invalid(
                f"Task size {task.size} is larger than maximum input batch size {limit}"
            )
        execution = params.execution_batch_size
        with self._cond:
            if self._stopping:
                raise ServingError(
                    grpc.StatusCode.UNAVAILABLE, "the server is shutting down"
                )
            queue = self._queues.setdefault(key, _Queue())
            batches = queue.batches
            open_batch = batches[-1]
            room = execution - open_batch.size
            if params.enable_large_batch_splitting:
                capacity = room + (params.max_enqueued_batches - len(batches)) * (
                    execution
                )
                if task.size > capacity:
                    raise self._full(
                        f"; task size is {task.size} but scheduling capacity is "
                        f"only {capacity}"
                    )
                start = 0
                while start < task.size:
                    if batches[-1].size == execution:
                        batches.append(_Batch())
                    batch = batches[-1]
                    stop = min(task.size, start + execution - batch.size)
                    self._add(batch, _Piece(task, start, stop, task.add_part()))
                    start = stop
            else:
                if task.size > room:
                    if len(batches) >= params.max_enqueued_batches:
                        raise self._full("")
                    batches.append(_Batch())
                self._add(batches[-1], _Piece(task, 0, task.size, task.add_part()))
            self._stats["requests"] += 1
            self._cond.notify()

    @staticmethod
    def _add(batch: _Batch, piece: _Piece) -> None:
        if not batch.pieces:
            batch.opened = time.monotonic()
        batch.pieces.append(piece)
        batch.size += piece.size

    @staticmethod
    def _full(detail: str) -> ServingError:
        return ServingError(
            grpc.StatusCode.UNAVAILABLE,
            "The batch scheduling queue to which this task was submitted is full"
            + detail,
        )

    def stats(self) -> dict[str, int]:
        """Counts so far: ``requests`` scheduled, ``batches`` taken by a
        thread, ``rows`` in them, ``calls`` of the model (a failed merged
        batch adds one per request retried alone)."""
        with self._cond:
            return {
                key: self._stats[key]
                for key in ("requests", "batches", "rows", "calls")
            }

    def num_enqueued_tasks(self) -> int:
        """Request parts waiting in the queues (not yet taken by a thread)."""
        with self._cond:
            return sum(
                len(batch.pieces)
                for queue in self._queues.values()
                for batch in queue.batches
            )

    # -- batch threads ------------------------------------------------------ #

    def _work(self) -> None:
        while True:
            with self._cond:
                batch = self._take()
                while batch is None:
                    if self._stopping and not self._queues:
                        return
                    self._cond.wait(self._wait_seconds())
                    batch = self._take()
            try:
                self._process(batch)
            except Exception as err:  # a batch thread must survive anything
                logger.exception("a batch failed")
                error = ServingError(
                    grpc.StatusCode.INTERNAL, f"{type(err).__name__}: {err}"
                )
                for piece in batch.pieces:  # those not answered yet
                    piece.task.deliver(piece.index, error=error)

    def _take(self) -> _Batch | None:
        """The next schedulable batch (round-robin over queues), or None."""
        keys = list(self._queues)
        now = time.monotonic()
        timeout = self.parameters.batch_timeout_micros / 1e6
        for offset in range(len(keys)):
            key = keys[(self._next + offset) % len(keys)]
            queue = self._queues[key]
            first = queue.batches[0]
            if not first.pieces:
                if queue.empty:  # e.g. its only request was refused
                    del self._queues[key]
                continue
            closed = len(queue.batches) > 1
            full = first.size >= self.parameters.execution_batch_size
            if closed or full or self._stopping or now - first.opened >= timeout:
                queue.batches.popleft()
                if not queue.batches:
                    queue.batches.append(_Batch())
                if queue.empty:
                    del self._queues[key]
                self._next = (self._next + offset + 1) % len(keys)
                self._stats["batches"] += 1
                self._stats["rows"] += first.size
                return first
        return None

    def _wait_seconds(self) -> float:
        """Until the oldest open batch times out (bounded by the poll)."""
        timeout = self.parameters.batch_timeout_micros / 1e6
        now = time.monotonic()
        waits = [
            queue.batches[0].opened + timeout - now
            for queue in self._queues.values()
            if queue.batches[0].pieces
        ]
        return max(0.0, min([_POLL_SECONDS, *waits]))

    def _count_call(self) -> None:
        with self._cond:
            self._stats["calls"] += 1

    def _process(self, batch: _Batch) -> None:
        pieces = batch.pieces
        padded = self._padded_size(batch.size)
        if len(pieces) == 1 and pieces[0].size == pieces[0].task.size == padded:
            self._run_alone(pieces[0])
            return
        names = list(pieces[0].task.inputs)
        merged = {
            name: np.concatenate(
                [p.task.inputs[name][p.start : p.stop] for p in pieces]
            )
            for name in names
        }
        if padded > batch.size:
            merged = {
                name: np.concatenate(
                    [value, np.repeat(value[:1], padded - batch.size, axis=0)]
                )
                for name, value in merged.items()
            }
        self._count_call()
        try:
            outputs = pieces[0].task.call(merged)
        except ServingError as err:
            logger.debug("a merged batch failed (%s); running its requests alone", err)
            for piece in pieces:
                self._run_alone(piece)
            return
        if any(
            np.ndim(value) == 0 or len(value) != padded for value in outputs.values()
        ):
            logger.debug("outputs are not one row per input row; running alone")
            for piece in pieces:
                self._run_alone(piece)
            return
        offset = 0
        for piece in pieces:
            rows = slice(offset, offset + piece.size)
            piece.task.deliver(
                piece.index, {name: value[rows] for name, value in outputs.items()}
            )
            offset += piece.size

    def _run_alone(self, piece: _Piece) -> None:
        self._count_call()
        task = piece.task
        inputs = task.inputs
        if piece.size != task.size:
            inputs = {k: v[piece.start : piece.stop] for k, v in inputs.items()}
        try:
            outputs = task.call(inputs)
        except ServingError as err:
            task.deliver(piece.index, error=err)
            return
        task.deliver(piece.index, outputs)

    def _padded_size(self, size: int) -> int:
        for allowed in self.parameters.allowed_batch_sizes:
            if allowed >= size:
                return allowed
        return size

    # -- lifecycle ---------------------------------------------------------- #

    def stop(self, timeout: float = 30.0) -> None:
        """Refuses new requests, runs the queued ones, joins the threads."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = sum(thread.is_alive() for thread in self._threads)
        if alive:
            logger.warning("%d batch threads still running after %gs", alive, timeout)
