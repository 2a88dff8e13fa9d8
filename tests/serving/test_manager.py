"""Version discovery and hot swap: new versions, broken ones, half-written ones."""

import shutil
import threading
import time

import pytest
import tensorflow as tf

from mtrec.export import export_saved_model

grpc = pytest.importorskip("grpc", reason="needs the serving extra")

from tensorflow_serving.apis import predict_pb2  # noqa: E402
from tensorflow_serving.apis import prediction_service_pb2_grpc  # noqa: E402

from mtrec.serving import ModelManager  # noqa: E402
from mtrec.serving import ModelServer  # noqa: E402
from mtrec.serving import ServerOptions  # noqa: E402
from mtrec.serving import ServingError  # noqa: E402


@pytest.fixture
def base(run, tmp_path):
    """A fresh export base holding a copy of the run's version 1."""
    path = tmp_path / "base"
    shutil.copytree(run.export_path, path / "1")
    return path


def _states(manager, name="m"):
    return {s.version: s.state for s in manager.status(name)}


def test_newest_version_is_served_and_older_ones_unloaded(base):
    manager = ModelManager("m", base, poll_seconds=0)
    manager.start()
    assert manager.available_versions() == [1]
    shutil.copytree(base / "1", base / "3")
    assert manager.poll() is True
    assert manager.available_versions() == [3]
    assert manager.get("m").version == 3
    assert _states(manager) == {3: "AVAILABLE", 1: "END"}
    with pytest.raises(ServingError, match=r"Specific\(m, 1\)"):
        manager.get("m", 1)
    assert manager.poll() is False


def test_num_versions_serves_several_and_each_by_number(base):
    shutil.copytree(base / "1", base / "2")
    manager = ModelManager("m", base, num_versions=2, poll_seconds=0)
    manager.start()
    assert manager.available_versions() == [1, 2]
    assert manager.get("m").version == 2
    assert manager.get("m", 1).version == 1


def test_half_written_and_non_version_folders_are_ignored(base):
    (base / ".tmp-2-abcdef12" / "variables").mkdir(parents=True)
    (base / "2").mkdir()  # no saved_model.pb yet: still being copied
    (base / "notes").mkdir()
    manager = ModelManager("m", base, poll_seconds=0)
    manager.start()
    assert manager.available_versions() == [1]
    assert _states(manager) == {1: "AVAILABLE"}


def test_a_broken_version_is_reported_and_the_old_one_keeps_serving(base):
    manager = ModelManager("m", base, poll_seconds=0)
    manager.start()
    (base / "2").mkdir()
    (base / "2" / "saved_model.pb").write_bytes(b"not a SavedModel")
    manager.poll()
    assert manager.available_versions() == [1]
    status = {s.version: s for s in manager.status("m")}
    assert status[2].state == "END"
    assert status[2].error_code != grpc.StatusCode.OK
    assert "failed to load" in status[2].error_message
    assert manager.get("m").version == 1
    manager.poll()  # not retried before load_retry_seconds (60 by default)
    assert manager.available_versions() == [1]


@pytest.mark.parametrize("retries", [0, 2])
def test_a_failed_version_is_retried_so_a_copy_that_completes_gets_served(
    base, retries
):
    manager = ModelManager(
        "m", base, poll_seconds=0, max_load_retries=retries, load_retry_seconds=0
    )
    manager.start()
    (base / "2").mkdir()
    (base / "2" / "saved_model.pb").write_bytes(b"still being copied")
    manager.poll()
    assert manager.available_versions() == [1]
    # The copy completes.
    shutil.rmtree(base / "2")
    shutil.copytree(base / "1", base / "2")
    manager.poll()
    assert manager.available_versions() == ([2] if retries else [1])
    assert _states(manager)[2] == ("AVAILABLE" if retries else "END")


def test_retries_stop_after_max_load_retries(base, caplog):
    manager = ModelManager(
        "m", base, poll_seconds=0, max_load_retries=2, load_retry_seconds=0
    )
    manager.start()
    (base / "2").mkdir()
    (base / "2" / "saved_model.pb").write_bytes(b"never a SavedModel")
    with caplog.at_level("ERROR", logger="mtrec.serving.manager"):
        for _ in range(5):
            manager.poll()
    failures = [r.getMessage() for r in caplog.records if "failed to load" in r.message]
    assert len(failures) == 3  # the first try and 2 retries
    assert failures[0].endswith("(retrying in 0s, 2 retries left)")
    assert failures[-1].endswith("(no retries left)")
    assert manager.available_versions() == [1]


def test_bad_arguments_are_refused(base, tmp_path):
    with pytest.raises(ValueError, match="`num_versions` must be >= 1"):
        ModelManager("m", base, num_versions=0)
    with pytest.raises(ValueError, match="`name` must be non-empty"):
        ModelManager("a/b", base)
    with pytest.raises(ValueError, match="`max_load_retries` must be an int >= 0"):
        ModelManager("m", base, max_load_retries=-1)
    with pytest.raises(ValueError, match="`load_retry_seconds` must be >= 0"):
        ModelManager("m", base, load_retry_seconds=-1)
    with pytest.raises(FileNotFoundError, match="export base not found"):
        ModelManager("m", tmp_path / "missing").start()


@pytest.mark.slow
def test_a_new_export_is_picked_up_without_dropping_requests(run, rows, base):
    manager = ModelManager("m", base, poll_seconds=0.2)
    options = ServerOptions(rest_port=None, grpc_port=0, grpc_workers=4)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "m"
    for name, values in rows.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(values))
    versions, failures = [], []
    stop = threading.Event()

    def hammer(target):
        with grpc.insecure_channel(target) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            while not stop.is_set():
                try:
                    response = stub.Predict(request, timeout=30)
                    versions.append(response.model_spec.version.value)
                except grpc.RpcError as err:
                    failures.append(err)

    with ModelServer(manager, options) as server:
        threads = [
            threading.Thread(target=hammer, args=(server.grpc_target,))
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        try:
            time.sleep(0.5)
            exported = export_saved_model(
                run.model, run.feature_set, base, warmup_rows=rows
            )
            assert exported.name == "2"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and (not versions or versions[-1] != 2):
                time.sleep(0.1)
            time.sleep(0.3)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    assert failures == []
    assert versions[0] == 1 and versions[-1] == 2
    assert _states(manager) == {2: "AVAILABLE", 1: "END"}


def test_a_port_in_use_is_an_os_error_and_nothing_keeps_running(server, base):
    manager = ModelManager("m", base, poll_seconds=0.5)
    taken = ServerOptions(rest_port=None, grpc_port=server.grpc_port)
    with pytest.raises(OSError, match="cannot bind gRPC"):
        ModelServer(manager, taken).start()
    assert manager._thread is None  # the poller was stopped
    taken = ServerOptions(rest_port=server.rest_port, grpc_port=None)
    with pytest.raises(OSError, match="in use"):
        ModelServer(manager, taken).start()
