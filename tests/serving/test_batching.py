"""mtrec serve with --enable_batching: concurrent REST and gRPC clients get the
results the unbatched server gives; errors stay with their request."""

import json
import threading
import time
from concurrent import futures

import numpy as np
import pytest
from serving_helpers import MODEL
from serving_helpers import json_rows

grpc = pytest.importorskip("grpc", reason="needs the serving extra")
httpx = pytest.importorskip("httpx", reason="needs the serving extra")

import tensorflow as tf  # noqa: E402
from tensorflow_serving.apis import predict_pb2  # noqa: E402
from tensorflow_serving.apis import prediction_service_pb2_grpc  # noqa: E402

from mtrec.serving import ModelManager  # noqa: E402
from mtrec.serving import ModelServer  # noqa: E402
from mtrec.serving import ServerOptions  # noqa: E402

CLIENTS = 8
OUTPUTS = ("ctcvr", "ctr", "cvr")


@pytest.fixture(scope="module")
def batching_server(run, tmp_path_factory):
    params = tmp_path_factory.mktemp("batching") / "batching_parameters.txt"
    params.write_text(
        "max_batch_size { value: 64 }\n"
        "batch_timeout_micros { value: 20000 }\n"  # 20 ms: requests do merge
        "max_enqueued_batches { value: 100 }\n"
        "num_batch_threads { value: 2 }\n"
    )
    manager = ModelManager(MODEL, run.export_path.parent, poll_seconds=0)
    options = ServerOptions(
        rest_port=0,
        grpc_port=0,
        max_batch_size=64,
        grpc_workers=CLIENTS,
        enable_batching=True,
        batching_parameters_file=params,
    )
    with ModelServer(manager, options) as started:
        yield started


def _requests(rows) -> list[dict[str, np.ndarray]]:
    """48 requests of 1 to 5 rows, drawn from the 40 fixture rows."""
    rng = np.random.default_rng(5)
    out = []
    for _ in range(48):
        index = rng.choice(40, size=rng.integers(1, 6), replace=False)
        out.append({k: v[index] for k, v in rows.items()})
    return out


def _rest(url: str, request: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    response = httpx.post(
        f"{url}/v1/models/{MODEL}:predict",
        content=json.dumps({"instances": json_rows(request)}).encode(),
        timeout=60,
    )
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    return {k: np.array([p[k] for p in predictions], np.float32) for k in OUTPUTS}


def _grpc(target: str, request: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    proto = predict_pb2.PredictRequest()
    proto.model_spec.name = MODEL
    for name, values in request.items():
        proto.inputs[name].CopyFrom(tf.make_tensor_proto(values))
    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(proto, timeout=60)
    return {k: tf.make_ndarray(response.outputs[k]) for k in OUTPUTS}


def _concurrently(fn, address, requests):
    with futures.ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(lambda r: fn(address, r), requests, timeout=300))


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_batched_results_equal_unbatched_results(
    server, batching_server, rows, protocol
):
    """Each request's rows come back, in order, with the unbatched scores.

    Equal to within 16 units in the last place of float32, not bit-equal:
    TensorFlow's CPU matrix kernels split the rows of a batch into blocks and
    pick the kernel by batch size (matrix-vector for one row), so a row's dot
    products are summed in an order that depends on the batch it is in and
    its position there, and on the instruction set. Measured: up to 1 ulp
    on an Intel core with AMX, 5 on an AMD core with AVX2 only. A row
    scored with another row's inputs would differ by far more. TF Serving's
    batching has the same property.
    """
    requests = _requests(rows)
    fn = _rest if protocol == "rest" else _grpc
    before = batching_server.batcher.stats()
    if protocol == "rest":
        expected = _concurrently(fn, server.rest_url, requests)
        batched = _concurrently(fn, batching_server.rest_url, requests)
    else:
        expected = _concurrently(fn, server.grpc_target, requests)
        batched = _concurrently(fn, batching_server.grpc_target, requests)
    for request, want, got in zip(requests, expected, batched):
        for name in OUTPUTS:
            assert got[name].shape == (len(request["user_id"]),)
            np.testing.assert_array_max_ulp(got[name], want[name], maxulp=16)
    after = batching_server.batcher.stats()
    assert after["requests"] - before["requests"] == len(requests)
    assert after["rows"] - before["rows"] >= sum(len(r["user_id"]) for r in requests)


def test_a_bad_request_does_not_fail_its_batch_mates(batching_server, rows):
    """A NaN is refused by an assertion inside the graph, so it reaches the
    batcher; only its own request gets the error."""
    requests = _requests(rows)[:CLIENTS]
    bad = dict(requests[3])
    bad["item_price"] = np.full_like(bad["item_price"], np.nan)
    requests[3] = bad

    def send(request):
        try:
            return _grpc(batching_server.grpc_target, request)
        except grpc.RpcError as err:
            return err

    with futures.ThreadPoolExecutor(CLIENTS) as pool:
        outcomes = list(pool.map(send, requests, timeout=300))
    for index, outcome in enumerate(outcomes):
        if index == 3:
            assert isinstance(outcome, grpc.RpcError)
            assert outcome.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "Input `item_price` is NaN or infinite at row 0" in outcome.details()
        else:
            assert isinstance(outcome, dict), outcome


def test_a_request_over_max_batch_size_is_refused_as_tf_serving(batching_server, rows):
    big = {k: np.resize(v, 65) for k, v in rows.items()}
    with pytest.raises(grpc.RpcError) as info:
        _grpc(batching_server.grpc_target, big)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Task size 65 is larger than maximum input batch size 64" in (
        info.value.details()
    )


def test_batching_options_are_checked_up_front(tmp_path):
    with pytest.raises(ValueError, match="needs `enable_batching=True`"):
        ServerOptions(batching_parameters_file=tmp_path / "x.txt")
    bad = tmp_path / "bad.txt"
    bad.write_text("max_batch_size { value: 8 }\nbatch_size { value: 8 }\n")
    with pytest.raises(ValueError, match=r"bad\.txt:2: unknown BatchingParameters"):
        ServerOptions(enable_batching=True, batching_parameters_file=bad)
    assert ServerOptions(enable_batching=True).batching_parameters.max_batch_size == (
        1000
    )


def test_a_full_queue_is_503_over_rest_and_unavailable_over_grpc(run, rows, tmp_path):
    params = tmp_path / "batching_parameters.txt"
    params.write_text(
        "max_batch_size { value: 1 }\nmax_enqueued_batches { value: 1 }\n"
        "num_batch_threads { value: 1 }\n"
    )
    manager = ModelManager(MODEL, run.export_path.parent, poll_seconds=0)
    options = ServerOptions(
        rest_port=0, grpc_port=0, enable_batching=True, batching_parameters_file=params
    )
    one = {k: v[:1] for k, v in rows.items()}
    with ModelServer(manager, options) as server:
        servable = manager.get(MODEL)
        gate, entered = threading.Event(), threading.Event()
        call = servable.call

        def gated(signature, inputs):
            entered.set()
            assert gate.wait(60)
            return call(signature, inputs)

        servable.call = gated
        with futures.ThreadPoolExecutor(2) as pool:
            try:
                first = pool.submit(_grpc, server.grpc_target, one)
                assert entered.wait(60)  # the only thread is busy
                queued = pool.submit(_grpc, server.grpc_target, one)
                deadline = time.monotonic() + 60
                while server.batcher.num_enqueued_tasks() < 1:
                    assert time.monotonic() < deadline
                    time.sleep(0.01)  # the queue's one batch is full
                response = httpx.post(
                    f"{server.rest_url}/v1/models/{MODEL}:predict",
                    content=json.dumps({"instances": json_rows(one)}).encode(),
                    timeout=60,
                )
                with pytest.raises(grpc.RpcError) as info:
                    _grpc(server.grpc_target, one)
            finally:
                gate.set()
            assert first.result(60) and queued.result(60)
    assert response.status_code == 503, response.text
    assert (
        "The batch scheduling queue to which this task was submitted is full"
        in (response.json()["error"])
    )
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
