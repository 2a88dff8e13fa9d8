"""The Batcher on plain numpy calls: merging, splitting, errors, queue limits."""

import threading
import time
from concurrent import futures

import grpc
import numpy as np
import pytest

from mtrec.serving.batcher import Batcher
from mtrec.serving.batching_parameters import BatchingParameters
from mtrec.serving.errors import ServingError

#: Every wait in these tests is bounded by this.
TIMEOUT = 30


class Recorder:
    """A model call that records the batch sizes it saw, optionally gated."""

    def __init__(self, gate: threading.Event | None = None):
        self.sizes: list[int] = []
        self.gate = gate
        self.entered = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, inputs):
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(TIMEOUT)
        x = inputs["x"]
        if np.isnan(x).any():
            raise ServingError.invalid(
                f"x is NaN at row {int(np.argmax(np.isnan(x)))} of the batch"
            )
        with self.lock:
            self.sizes.append(len(x))
        return {"y": x * 2 + 1, "row_sum": x.sum(axis=-1) if x.ndim > 1 else x}


@pytest.fixture
def batcher_factory():
    made = []

    def make(**kwargs):
        batcher = Batcher(BatchingParameters(**kwargs))
        made.append(batcher)
        return batcher

    yield make
    for batcher in made:
        batcher.stop(TIMEOUT)


def _in_flight(batcher, call, requests, key="k", workers=None):
    """Runs every request concurrently; returns results (or errors) in order."""
    with futures.ThreadPoolExecutor(workers or len(requests)) as pool:
        jobs = [pool.submit(batcher.run, key, {"x": x}, len(x), call) for x in requests]
        out = []
        for job in jobs:
            try:
                out.append(job.result(TIMEOUT))
            except ServingError as err:
                out.append(err)
        return out


def _blocked(batcher_factory, **kwargs):
    """A batcher whose one thread is stuck in a first call until ``gate``."""
    gate = threading.Event()
    call = Recorder(gate)
    batcher = batcher_factory(num_batch_threads=1, **kwargs)
    pool = futures.ThreadPoolExecutor(1)
    first = pool.submit(batcher.run, "k", {"x": np.array([0.0])}, 1, call)
    assert call.entered.wait(TIMEOUT)
    return batcher, call, gate, first, pool


def _submit_queued(batcher, call, requests):
    pool = futures.ThreadPoolExecutor(len(requests) + 1)
    jobs = []
    for x in requests:
        waiting = batcher.num_enqueued_tasks()
        jobs.append(pool.submit(batcher.run, "k", {"x": x}, len(x), call))
        deadline = time.monotonic() + TIMEOUT
        while batcher.num_enqueued_tasks() == waiting and time.monotonic() < deadline:
            time.sleep(0.001)  # queued before the next one is submitted
    return pool, jobs


def test_requests_queued_behind_a_busy_thread_run_as_one_batch(batcher_factory):
    batcher, call, gate, first, pool = _blocked(batcher_factory, max_batch_size=16)
    requests = [np.arange(i, i + 3, dtype=np.float64) for i in range(4)]
    queued_pool, jobs = _submit_queued(batcher, call, requests)
    gate.set()
    results = [job.result(TIMEOUT) for job in jobs]
    first.result(TIMEOUT)
    for x, result in zip(requests, results):
        np.testing.assert_array_equal(result["y"], x * 2 + 1)
    assert call.sizes == [1, 12]  # the first alone, then the four merged
    pool.shutdown()
    queued_pool.shutdown()


def test_results_equal_unbatched_results_under_concurrency(batcher_factory):
    rng = np.random.default_rng(0)
    requests = [rng.normal(size=(rng.integers(1, 6), 3)) for _ in range(64)]
    call = Recorder()
    batcher = batcher_factory(max_batch_size=32, num_batch_threads=2)
    results = _in_flight(batcher, call, requests, workers=8)
    for x, result in zip(requests, results):
        np.testing.assert_array_equal(result["y"], x * 2 + 1)
        np.testing.assert_array_equal(result["row_sum"], x.sum(axis=-1))
    assert max(call.sizes) <= 32


def test_a_request_larger_than_max_batch_size_is_refused(batcher_factory):
    batcher = batcher_factory(max_batch_size=4, num_batch_threads=1)
    with pytest.raises(ServingError) as info:
        batcher.run("k", {"x": np.zeros(5)}, 5, Recorder())
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.http_status == 400
    assert info.value.message == (
        "Task size 5 is larger than maximum input batch size 4"
    )


def test_a_request_split_across_batches_gets_its_rows_in_order(batcher_factory):
    batcher, call, gate, first, pool = _blocked(
        batcher_factory,
        max_batch_size=64,
        enable_large_batch_splitting=True,
        max_execution_batch_size=4,
        max_enqueued_batches=8,
    )
    small = np.array([100.0, 101.0])
    large = np.arange(11, dtype=np.float64)
    queued_pool, jobs = _submit_queued(batcher, call, [small, large])
    gate.set()
    small_result, large_result = (job.result(TIMEOUT) for job in jobs)
    first.result(TIMEOUT)
    np.testing.assert_array_equal(small_result["y"], small * 2 + 1)
    np.testing.assert_array_equal(large_result["y"], large * 2 + 1)
    # 2 small rows + 2 of the large, then 4, 4 and the last 1
    assert call.sizes == [1, 4, 4, 4, 1]
    pool.shutdown()
    queued_pool.shutdown()


def test_an_error_fails_only_its_own_request(batcher_factory):
    batcher, call, gate, first, pool = _blocked(batcher_factory, max_batch_size=16)
    requests = [np.array([1.0, 2.0]), np.array([3.0, np.nan]), np.array([5.0])]
    queued_pool, jobs = _submit_queued(batcher, call, requests)
    gate.set()
    outcomes = []
    for job in jobs:
        try:
            outcomes.append(job.result(TIMEOUT))
        except ServingError as err:
            outcomes.append(err)
    first.result(TIMEOUT)
    np.testing.assert_array_equal(outcomes[0]["y"], [3.0, 5.0])
    assert isinstance(outcomes[1], ServingError)
    assert outcomes[1].message == "x is NaN at row 1 of the batch"  # its own row
    np.testing.assert_array_equal(outcomes[2]["y"], [11.0])
    pool.shutdown()
    queued_pool.shutdown()


def test_a_full_queue_refuses_at_once_with_unavailable(batcher_factory):
    batcher, call, gate, first, pool = _blocked(
        batcher_factory, max_batch_size=2, max_enqueued_batches=2
    )
    queued_pool, jobs = _submit_queued(
        batcher, call, [np.ones(2), np.ones(2)]
    )  # two full batches wait
    with pytest.raises(ServingError) as info:
        batcher.run("k", {"x": np.ones(1)}, 1, call)
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
    assert info.value.http_status == 503
    assert "The batch scheduling queue to which this task was submitted is full" in (
        info.value.message
    )
    # another key has its own queue: accepted, it runs once the thread is free
    other = queued_pool.submit(batcher.run, "other", {"x": np.ones(1)}, 1, Recorder())
    gate.set()
    for job in jobs:
        np.testing.assert_array_equal(job.result(TIMEOUT)["y"], [3.0, 3.0])
    np.testing.assert_array_equal(other.result(TIMEOUT)["y"], [3.0])
    first.result(TIMEOUT)
    pool.shutdown()
    queued_pool.shutdown()


def test_merged_batches_are_padded_to_an_allowed_size(batcher_factory):
    batcher, call, gate, first, pool = _blocked(
        batcher_factory, max_batch_size=8, allowed_batch_sizes=(4, 8)
    )
    requests = [np.array([1.0, 2.0]), np.array([3.0, 4.0, 5.0])]
    queued_pool, jobs = _submit_queued(batcher, call, requests)
    gate.set()
    for x, job in zip(requests, jobs):
        np.testing.assert_array_equal(job.result(TIMEOUT)["y"], x * 2 + 1)
    first.result(TIMEOUT)
    assert call.sizes == [4, 8]  # 1 row padded to 4; 5 rows padded to 8
    pool.shutdown()
    queued_pool.shutdown()


def test_a_batch_waits_batch_timeout_micros_for_more_requests(batcher_factory):
    call = Recorder()
    batcher = batcher_factory(
        max_batch_size=64, batch_timeout_micros=2_000_000, num_batch_threads=1
    )
    requests = [np.array([float(i)]) for i in range(3)]
    results = _in_flight(batcher, call, requests)
    for x, result in zip(requests, results):
        np.testing.assert_array_equal(result["y"], x * 2 + 1)
    assert call.sizes == [3]  # all three arrived within the 2 s window


def test_stop_runs_queued_requests_then_refuses_new_ones(batcher_factory):
    batcher, call, gate, first, pool = _blocked(batcher_factory, max_batch_size=8)
    queued_pool, jobs = _submit_queued(batcher, call, [np.ones(2)])
    stopper = threading.Thread(target=batcher.stop, args=(TIMEOUT,))
    stopper.start()
    deadline = time.monotonic() + TIMEOUT
    refusal = None
    while refusal is None and time.monotonic() < deadline:
        try:
            batcher.run("other", {"x": np.ones(1)}, 1, Recorder())
        except ServingError as err:
            refusal = err  # once stop() has begun
    assert refusal is not None and refusal.code == grpc.StatusCode.UNAVAILABLE
    gate.set()
    np.testing.assert_array_equal(jobs[0].result(TIMEOUT)["y"], [3.0, 3.0])
    first.result(TIMEOUT)
    stopper.join(TIMEOUT)
    assert not stopper.is_alive()
    pool.shutdown()
    queued_pool.shutdown()
