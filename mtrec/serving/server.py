"""The local model server: REST (uvicorn) and gRPC (grpcio) over one manager."""

import dataclasses
import logging
import os
import socket
import threading

import uvicorn

from mtrec.serving.batcher import Batcher
from mtrec.serving.batching_parameters import BatchingParameters
from mtrec.serving.batching_parameters import read_batching_parameters
from mtrec.serving.grpc_service import create_grpc_server
from mtrec.serving.manager import ModelManager
from mtrec.serving.rest import create_app

logger = logging.getLogger(__name__)

#: TF Serving's default ports.
DEFAULT_GRPC_PORT = 8500
DEFAULT_REST_PORT = 8501
#: Default request size limit: gRPC's default maximum message size.
DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024
#: Default largest batch (rows) per request.
DEFAULT_MAX_BATCH_SIZE = 1024


@dataclasses.dataclass
class ServerOptions:
    """How ``ModelServer`` listens and what it accepts.

    Attributes:
      host: interface to bind. Default ``127.0.0.1`` (local only).
      rest_port: REST port; ``0`` picks a free port, ``None`` disables REST.
        Default 8501, as TF Serving.
      grpc_port: gRPC port; ``0`` picks a free port, ``None`` disables gRPC.
        Default 8500, as TF Serving.
      max_request_bytes: largest REST body and gRPC message. Default 4 MiB.
      max_batch_size: largest batch (rows) per request; ``None``: no limit.
        Default 1024.
      grpc_workers: gRPC handler threads. Default 8.
      body_timeout_seconds: a REST request body not received whole within
        this time gets 408 (a client that stalls mid-body does not hold a
        connection forever). Default 30.
      enable_batching: merge concurrent predict requests into one model call
        (TF Serving's ``--enable_batching``). Default False.
      batching_parameters_file: a ``BatchingParameters`` text proto (TF
        Serving's ``--batching_parameters_file``, e.g.
        ``serving/batching_parameters.txt``); read when the options are made,
        so a bad file fails at once. Default: TF Serving's defaults. Needs
        ``enable_batching``.
    """

    host: str = "127.0.0.1"
    rest_port: int | None = DEFAULT_REST_PORT
    grpc_port: int | None = DEFAULT_GRPC_PORT
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_batch_size: int | None = DEFAULT_MAX_BATCH_SIZE
    grpc_workers: int = 8
    body_timeout_seconds: float = 30.0
    enable_batching: bool = False
    batching_parameters_file: str | os.PathLike | None = None
    batching_parameters: BatchingParameters | None = dataclasses.field(
        init=False, default=None, repr=False
    )

    def __post_init__(self):
        if self.max_request_bytes < 1:
            raise ValueError(
                "`max_request_bytes` must be >= 1. "
                f"Received: `max_request_bytes={self.max_request_bytes}`"
            )
        if self.max_batch_size is not None and self.max_batch_size < 1:
            raise ValueError(
                "`max_batch_size` must be >= 1 or None. "
                f"Received: `max_batch_size={self.max_batch_size}`"
            )
        if not self.body_timeout_seconds > 0:
            raise ValueError(
                "`body_timeout_seconds` must be > 0. "
                f"Received: `body_timeout_seconds={self.body_timeout_seconds}`"
            )
        if self.rest_port is None and self.grpc_port is None:
            raise ValueError("enable at least one of REST and gRPC")
        if self.batching_parameters_file is not None and not self.enable_batching:
            raise ValueError(
                "`batching_parameters_file` needs `enable_batching=True`. Received: "
                f"`batching_parameters_file={str(self.batching_parameters_file)!r}`"
            )
        if self.enable_batching:
            self.batching_parameters = (
                read_batching_parameters(self.batching_parameters_file)
                if self.batching_parameters_file is not None
                else BatchingParameters()
            )


def _listening_socket(host: str, port: int) -> socket.socket:
    """A non-blocking TCP socket listening on ``(host, port)`` (port 0: any
    free one), IPv6 when ``host`` has a colon."""
    # proto=IPPROTO_TCP lets asyncio set TCP_NODELAY on each connection;
    # without it the response body waits ~40 ms for the client's delayed
    # ACK of the headers on every keep-alive request.
    sock = socket.socket(
        socket.AF_INET6 if ":" in host else socket.AF_INET,
        socket.SOCK_STREAM,
        socket.IPPROTO_TCP,
    )
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


class ModelServer:
    """Serves a ``ModelManager`` over TF Serving's REST and gRPC APIs.

    REST runs on uvicorn in a background thread (its event loop parses JSON
    and hands each inference to a worker thread); gRPC runs on grpcio's thread
    pool. TensorFlow releases the GIL while it computes, so requests on both
    protocols run concurrently.

    Example:

    >>> manager = ModelManager("esmm", "exports/esmm")
    >>> with ModelServer(manager, ServerOptions(rest_port=0, grpc_port=0)) as server:
    ...     print(server.rest_url, server.grpc_target)
    http://127.0.0.1:... 127.0.0.1:...
    """

    def __init__(self, manager: ModelManager, options: ServerOptions | None = None):
        self.manager = manager
        self.options = options or ServerOptions()
        self.rest_port: int | None = None
        self.grpc_port: int | None = None
        self._uvicorn: uvicorn.Server | None = None
        self._rest_thread: threading.Thread | None = None
        self._grpc = None
        self.batcher: Batcher | None = None

    @property
    def rest_url(self) -> str | None:
        if self.rest_port is None:
            return None
        return f"http://{self.options.host}:{self.rest_port}"

    @property
    def grpc_target(self) -> str | None:
        if self.grpc_port is None:
            return None
        return f"{self.options.host}:{self.grpc_port}"

    def start(self) -> "ModelServer":
        """Loads the model (blocking), then starts listening."""
        opts = self.options
        self.manager.start()
        try:
            if opts.batching_parameters is not None:
                self.batcher = Batcher(opts.batching_parameters)
                logger.info("batching: %s", opts.batching_parameters)
            if opts.grpc_port is not None:
                self._grpc = create_grpc_server(
                    self.manager,
                    max_message_bytes=opts.max_request_bytes,
                    max_batch_size=opts.max_batch_size,
                    workers=opts.grpc_workers,
                    batcher=self.batcher,
                )
                address = f"{opts.host}:{opts.grpc_port}"
                try:
                    self.grpc_port = self._grpc.add_insecure_port(address)
                except RuntimeError as err:  # grpcio's "Failed to bind"
                    raise OSError(f"cannot bind gRPC to {address}: {err}") from err
                if not self.grpc_port:
                    raise OSError(f"cannot bind gRPC to {address}")
                self._grpc.start()
            if opts.rest_port is not None:
                self._start_rest()
        except BaseException:
            self.stop()
            raise
        logger.info(
            "serving %r from %s: REST %s, gRPC %s",
            self.manager.name,
            self.manager.base_path,
            self.rest_url,
            self.grpc_target,
        )
        return self

    def _start_rest(self) -> None:
        opts = self.options
        sock = _listening_socket(opts.host, opts.rest_port)
        self.rest_port = sock.getsockname()[1]
        app = create_app(
            self.manager,
            max_body_bytes=opts.max_request_bytes,
            body_timeout_seconds=opts.body_timeout_seconds,
            max_batch_size=opts.max_batch_size,
            batcher=self.batcher,
        )
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_keep_alive=30,
            h11_max_incomplete_event_size=64 * 1024,
        )
        self._uvicorn = uvicorn.Server(config)
        ready = threading.Event()
        error: list[BaseException] = []

        def run() -> None:
            try:
                self._uvicorn.run(sockets=[sock])
            except BaseException as err:  # surfaced by start()
                error.append(err)
            finally:
                ready.set()
                sock.close()

        self._rest_thread = threading.Thread(target=run, name="mtrec-rest", daemon=True)
        self._rest_thread.start()
        while not ready.wait(0.02):
            if self._uvicorn.started:
                return
        raise RuntimeError(f"the REST server did not start: {error or 'exited'}")

    def stop(self, grace: float = 5.0) -> None:
        """Stops listening, lets requests in flight finish (up to ``grace`` s)."""
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
            if self._rest_thread is not None:
                self._rest_thread.join(grace + 1)
            self._uvicorn = None
            self._rest_thread = None
        if self._grpc is not None:
            self._grpc.stop(grace).wait()
            self._grpc = None
        if self.batcher is not None:
            self.batcher.stop(grace)
            self.batcher = None
        self.manager.stop()

    def __enter__(self) -> "ModelServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve(
    export_base: str | os.PathLike,
    name: str,
    options: ServerOptions | None = None,
    *,
    num_versions: int = 1,
    poll_seconds: float = 1.0,
    max_load_retries: int = 5,
    load_retry_seconds: float = 60.0,
) -> ModelServer:
    """Starts a server for ``export_base``; the caller calls ``stop()``.

    The version arguments are :class:`ModelManager`'s.
    """
    manager = ModelManager(
        name,
        export_base,
        num_versions=num_versions,
        poll_seconds=poll_seconds,
        max_load_retries=max_load_retries,
        load_retry_seconds=load_retry_seconds,
    )
    return ModelServer(manager, options).start()
