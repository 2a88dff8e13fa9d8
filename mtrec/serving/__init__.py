"""A local model server speaking TF Serving's REST and gRPC APIs, and a load test.

Needs the ``serving`` extra (``pip install mtrec[serving]``): FastAPI and
uvicorn (REST), grpcio and tensorflow-serving-api (gRPC and its protos), httpx
(the REST load-test client).
"""

try:
    from mtrec.serving.batcher import Batcher
    from mtrec.serving.batching_parameters import BatchingParameters
    from mtrec.serving.batching_parameters import read_batching_parameters
    from mtrec.serving.errors import ServingError
    from mtrec.serving.loadtest import LoadTestConfig
    from mtrec.serving.loadtest import percentiles_ms
    from mtrec.serving.loadtest import read_rows
    from mtrec.serving.loadtest import run_load_test
    from mtrec.serving.loadtest import sample_batches
    from mtrec.serving.manager import ModelManager
    from mtrec.serving.servable import Servable
    from mtrec.serving.server import ModelServer
    from mtrec.serving.server import ServerOptions
    from mtrec.serving.server import serve
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"mtrec.serving needs the 'serving' extra: pip install 'mtrec[serving]' ({err})"
    ) from err

__all__ = [
    "Batcher",
    "BatchingParameters",
    "LoadTestConfig",
    "ModelManager",
    "ModelServer",
    "Servable",
    "ServerOptions",
    "ServingError",
    "percentiles_ms",
    "read_batching_parameters",
    "read_rows",
    "run_load_test",
    "sample_batches",
    "serve",
]
