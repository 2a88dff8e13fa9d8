"""Errors carrying a canonical status code, mapped to HTTP as TF Serving does."""

import grpc

#: TF Serving's mapping of a canonical status code to an HTTP status, as
#: ``ToHTTPStatusCode`` in tensorflow_serving/model_servers/http_server.cc
#: (verified against tensorflow/serving at 9d981c5, 2026-07): note
#: FAILED_PRECONDITION and OUT_OF_RANGE are 400, not 412 and 416.
HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}

#: Canonical code number (TensorFlow's ``error_codes.proto``) -> gRPC status.
_BY_NUMBER: dict[int, grpc.StatusCode] = {
    code.value[0]: code for code in grpc.StatusCode
}


class ServingError(Exception):
    """A request the server refuses, with the status TF Serving would return.

    Args:
      code: the canonical status (``grpc.StatusCode``), e.g. ``INVALID_ARGUMENT``
        for the client's fault, ``NOT_FOUND`` for an unknown model or version.
      message: what went wrong, for the client.
      http_status: overrides the HTTP status derived from ``code``.
    """

    def __init__(
        self, code: grpc.StatusCode, message: str, http_status: int | None = None
    ):
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status or HTTP_STATUS.get(code, 500)

    @classmethod
    def invalid(cls, message: str) -> "ServingError":
        return cls(grpc.StatusCode.INVALID_ARGUMENT, message)

    @classmethod
    def not_found(cls, message: str) -> "ServingError":
        return cls(grpc.StatusCode.NOT_FOUND, message)


def status_code_from_number(number: int) -> grpc.StatusCode:
    """``grpc.StatusCode`` of a canonical code number (e.g. a TF ``OpError``)."""
    return _BY_NUMBER.get(int(number), grpc.StatusCode.UNKNOWN)
