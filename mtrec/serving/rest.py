"""TF Serving's REST API on FastAPI: predict, model status and model metadata.

Routes (as TF Serving's ``http_rest_api_handler``)::

    POST /v1/models/{name}[/versions/{v}]:predict
    GET  /v1/models/{name}[/versions/{v}]
    GET  /v1/models/{name}[/versions/{v}]/metadata

Every error is ``{"error": "..."}`` with the HTTP status TF Serving maps the
canonical code to (400 INVALID_ARGUMENT, 404 NOT_FOUND, 412
FAILED_PRECONDITION, ...); a body over the size limit is 413.
"""

import asyncio
import json
import logging
import re

import grpc
from fastapi import FastAPI
from fastapi import Request
from fastapi import Response
from google.protobuf import json_format
from starlette.concurrency import run_in_threadpool

from mtrec.serving import protos
from mtrec.serving.errors import ServingError
from mtrec.serving.json_codec import decode_inputs
from mtrec.serving.json_codec import encode_outputs
from mtrec.serving.json_codec import parse_predict_body
from mtrec.serving.manager import ModelManager

logger = logging.getLogger(__name__)

_PREDICT = re.compile(
    r"/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r":(?P<method>classify|regress|predict)",
    re.IGNORECASE,
)
_STATUS = re.compile(
    r"/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<metadata>/metadata)?/?",
    re.IGNORECASE,
)


def create_app(
    manager: ModelManager,
    *,
    max_body_bytes: int,
    max_batch_size: int | None,
    body_timeout_seconds: float = 30.0,
) -> FastAPI:
    """The REST application serving ``manager``'s model.

    Args:
      manager: the loaded versions.
      max_body_bytes: larger request bodies get 413 without being read whole.
      max_batch_size: larger batches get 400 (``None``: no limit).
      body_timeout_seconds: a body not received whole within this time gets
        408.
    """
    app = FastAPI(
        title="mtrec model server (TF Serving REST API)",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    @app.api_route(
        "/{path:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]
    )
    async def route(request: Request) -> Response:
        path, method = request.url.path, request.method
        try:
            match = _PREDICT.fullmatch(path)
            if match and method == "POST":
                body = await _read_body(request, max_body_bytes, body_timeout_seconds)
                return await run_in_threadpool(
                    _predict, manager, match, body, max_batch_size
                )
            match = _STATUS.fullmatch(path)
            if match and method == "GET":
                return await run_in_threadpool(_status_or_metadata, manager, match)
            raise ServingError.not_found(f"Malformed request: {method} {path}")
        except ServingError as err:
            return _error(err)
        except Exception as err:  # the server keeps serving whatever happens
            logger.exception("%s %s failed", method, path)
            return _error(
                ServingError(grpc.StatusCode.INTERNAL, f"{type(err).__name__}: {err}")
            )

    return app


async def _read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The request body; 413 over ``limit`` bytes, 408 after ``timeout`` s."""
    try:
        return await asyncio.wait_for(_read_body_within(request, limit), timeout)
    except TimeoutError:
        raise ServingError(
            grpc.StatusCode.DEADLINE_EXCEEDED,
            f"The request body was not received within {timeout:g} s "
            "(mtrec serve --body-timeout-seconds)",
            http_status=408,
        ) from None


async def _read_body_within(request: Request, limit: int) -> bytes:
    def too_large(size: str) -> ServingError:
        return ServingError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"Request body of {size} bytes is larger than the limit of {limit} "
            "bytes (mtrec serve --max-request-bytes)",
            http_status=413,
        )

    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(declared)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large(f"more than {limit}")
    return bytes(body)


def _predict(
    manager: ModelManager, match: re.Match, body: bytes, max_batch_size: int | None
) -> Response:
    if match["method"].lower() != "predict":
        raise ServingError(
            grpc.StatusCode.UNIMPLEMENTED,
            f"mtrec serve implements :predict only, not :{match['method']}",
        )
    servable = manager.get(match["name"], _version(match))
    request = parse_predict_body(body)
    signature = servable.signature(request.signature_name)
    inputs = decode_inputs(request, signature.inputs)
    outputs = servable.predict(signature.name, inputs, max_batch_size=max_batch_size)
    return _json(encode_outputs(outputs, request.format))


def _status_or_metadata(manager: ModelManager, match: re.Match) -> Response:
    version = _version(match)
    if match["metadata"]:
        servable = manager.get(match["name"], version)
        response = protos.metadata_response(servable, version_requested=version)
        return _json(
            {
                "model_spec": _to_dict(response.model_spec),
                "metadata": {
                    "signature_def": _to_dict(protos.signature_def_map(servable))
                },
            }
        )
    return _json(_to_dict(protos.status_response(manager, match["name"], version)))


def _version(match: re.Match) -> int | None:
    if match["label"]:
        raise ServingError.not_found(
            f"Unrecognized servable version label: {match['label']} "
            "(mtrec serve has no version labels; use /versions/<n>)"
        )
    return int(match["version"]) if match["version"] else None


def _to_dict(message) -> dict:
    return json_format.MessageToDict(
        message,
        always_print_fields_with_no_presence=True,
        preserving_proto_field_name=True,
    )


def _json(payload: dict, status: int = 200) -> Response:
    return Response(
        json.dumps(payload, separators=(",", ":")).encode(),
        status_code=status,
        media_type="application/json",
    )


def _error(err: ServingError) -> Response:
    return _json({"error": err.message}, status=err.http_status)
