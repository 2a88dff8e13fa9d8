"""TF Serving's REST API on FastAPI: predict, model status and model metadata.

Routes (as TF Serving's ``http_rest_api_handler``)::

    POST /v1/models/{name}[/versions/{v}]:predict
    GET  /v1/models/{name}[/versions/{v}]
    GET  /v1/models/{name}[/versions/{v}]/metadata

Every error is ``{"error": "..."}`` with the HTTP status TF Serving maps the
canonical code to (``errors.HTTP_STATUS``: 400 INVALID_ARGUMENT and
FAILED_PRECONDITION, 404 NOT_FOUND, ...); a body over the size limit is 413.
Routing follows TF Serving's (tensorflow_serving/model_servers/http_server.cc
and http_rest_api_util.cc): a path outside ``/v1/`` is 404; under ``/v1/`` a
path or method that is not one of the routes above is 400 ``Malformed
request``; ``:classify`` and ``:regress`` are 400 on predict signatures.

Client errors and clients that hang up are not logged with a traceback; only
an unexpected failure (500) is.
"""

import asyncio
import json
import logging
import re
import urllib.parse

import grpc
from fastapi import FastAPI
from fastapi import Request
from fastapi import Response
from google.protobuf import json_format
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from mtrec.serving import protos
from mtrec.serving.batcher import Batcher
from mtrec.serving.classify_regress import refuse_classify_or_regress
from mtrec.serving.errors import ServingError
from mtrec.serving.json_codec import decode_inputs
from mtrec.serving.json_codec import encode_outputs
from mtrec.serving.json_codec import parse_json_object
from mtrec.serving.json_codec import predict_request
from mtrec.serving.json_codec import signature_name_of
from mtrec.serving.manager import ModelManager
from mtrec.serving.servable import DEFAULT_SIGNATURE

logger = logging.getLogger(__name__)

# TF Serving's URL patterns (http_rest_api_util.cc), matched on the raw path;
# the model name and label are then percent-decoded.
_V1 = re.compile(r"/v1/.*", re.IGNORECASE | re.DOTALL)
_PREDICT = re.compile(
    r"/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r":(?P<method>classify|regress|predict)",
    re.IGNORECASE,
)
_STATUS = re.compile(
    r"/v1/models(?:/(?P<name>[^/:]+))?"
    r"(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?:/(?P<metadata>metadata))?",
    re.IGNORECASE,
)
_INT64_MAX = 2**63 - 1


def create_app(
    manager: ModelManager,
    *,
    max_body_bytes: int,
    max_batch_size: int | None,
    body_timeout_seconds: float = 30.0,
    batcher: Batcher | None = None,
) -> FastAPI:
    """The REST application serving ``manager``'s model.

    Args:
      manager: the loaded versions.
      max_body_bytes: larger request bodies get 413 without being read whole.
      max_batch_size: larger batches get 400 (``None``: no limit).
      body_timeout_seconds: a body not received whole within this time gets
        408.
      batcher: merges concurrent predict calls (``None``: one call each).
    """
    app = FastAPI(
        title="mtrec model server (TF Serving REST API)",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    @app.api_route(
        "/{path:path}",
        methods=["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"],
    )
    async def route(request: Request) -> Response:
        path, method = _raw_path(request), request.method
        try:
            if not _V1.fullmatch(path):
                return _error(ServingError.not_found(f"Not found: {method} {path}"))
            if method == "OPTIONS":
                return _preflight(request)
            match = _PREDICT.fullmatch(path) if method == "POST" else None
            if match:
                body = await _read_body(request, max_body_bytes, body_timeout_seconds)
                return await run_in_threadpool(
                    _post, manager, match, body, max_batch_size, batcher
                )
            match = _STATUS.fullmatch(path) if method == "GET" else None
            if match:
                return await run_in_threadpool(_status_or_metadata, manager, match)
            raise ServingError.invalid(f"Malformed request: {method} {path}")
        except ServingError as err:
            return _error(err)
        except ClientDisconnect:
            # The client hung up while sending its body: nobody to answer.
            logger.debug("%s %s: the client disconnected", method, path)
            return _error(ServingError(grpc.StatusCode.CANCELLED, "disconnected"))
        except Exception as err:  # the server keeps serving whatever happens
            logger.exception("%s %s failed", method, path)
            return _error(
                ServingError(grpc.StatusCode.INTERNAL, f"{type(err).__name__}: {err}")
            )

    return app


def _raw_path(request: Request) -> str:
    """The path as sent (still percent-encoded), as TF Serving matches it."""
    raw = request.scope.get("raw_path")
    return raw.decode("latin-1") if raw else request.url.path


def _preflight(request: Request) -> Response:
    """A CORS preflight, answered as TF Serving's http_server.cc does."""
    if re.search("https?://", request.headers.get("origin", "")):
        return Response(b"", status_code=200, media_type="application/json")
    return _error(
        ServingError(
            grpc.StatusCode.FAILED_PRECONDITION,
            "Origin header is missing in CORS preflight",
        )
    )


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


def _post(
    manager: ModelManager,
    match: re.Match,
    body: bytes,
    max_batch_size: int | None,
    batcher: Batcher | None,
) -> Response:
    """``:predict``, ``:classify`` or ``:regress``, in TF Serving's order of
    checks: the JSON body, the model and version, the signature, the inputs."""
    name, version = _name(match), _version(match)
    document = parse_json_object(body)
    signature_name = signature_name_of(document)
    servable = manager.get(name, version)
    method = match["method"].lower()
    if method != "predict":
        raise refuse_classify_or_regress(servable.meta_graph, method, signature_name)
    if (signature_name or DEFAULT_SIGNATURE) not in servable.signatures:
        # REST looks the signature up before Predict does (GetInfoMap in
        # http_rest_api_handler.cc): INVALID_ARGUMENT, worded so.
        raise ServingError.invalid(
            f'Serving signature name: "{signature_name or DEFAULT_SIGNATURE}" not '
            "found in signature def"
        )
    request = predict_request(document)
    signature = servable.signature(signature_name)
    inputs = decode_inputs(request, signature.inputs)
    outputs = servable.predict(
        signature.name, inputs, max_batch_size=max_batch_size, batcher=batcher
    )
    return _json(encode_outputs(outputs, request.format))


def _status_or_metadata(manager: ModelManager, match: re.Match) -> Response:
    name = _name(match)
    if not name:
        raise ServingError.invalid("Missing model name in request.")
    # TF Serving compares the sub-resource case-sensitively once the
    # case-insensitive pattern matched: /METADATA is a status request.
    if match["metadata"] == "metadata":
        version = _version(match)
        servable = manager.get(name, version)
        response = protos.metadata_response(servable, version_requested=version)
        return _json(
            {
                "model_spec": _to_dict(response.model_spec),
                "metadata": {
                    "signature_def": _to_dict(protos.signature_def_map(servable))
                },
            }
        )
    # GetModelStatus reads only a version number; a label is ignored and
    # every version reported (get_model_status_impl.cc).
    version = _version_number(match)
    return _json(_to_dict(protos.status_response(manager, name, version)))


def _name(match: re.Match) -> str:
    return urllib.parse.unquote(match["name"] or "")


def _version(match: re.Match) -> int | None:
    """The version requested; a label is INVALID_ARGUMENT, as TF Serving
    answers a label it does not know (ServerCore::GetModelVersionForLabel)."""
    if match["label"]:
        raise ServingError.invalid(
            "Unrecognized servable version label: "
            f"{urllib.parse.unquote(match['label'])} (mtrec serve has no version "
            "labels; use /versions/<n>)"
        )
    return _version_number(match)


def _version_number(match: re.Match) -> int | None:
    if not match["version"]:
        return None
    version = int(match["version"])
    if version > _INT64_MAX:
        raise ServingError.invalid(
            f"Failed to convert version: {match['version']} to numeric."
        )
    return version


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
