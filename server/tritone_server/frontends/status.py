"""Domain error -> gRPC status code and HTTP status: the one table both front ends use."""

from __future__ import annotations

from typing import Final

import grpc

from tritone_server.errors import (
    AudioError,
    AudioLimitError,
    BackendFailed,
    BackendUnavailable,
    DeadlineExceeded,
    GatewayError,
    InvalidRequest,
    LimitExceeded,
    ModelNotFound,
    PermissionDenied,
    Unauthenticated,
)

__all__ = ["grpc_code", "http_status", "status_for"]

# Most specific first: the first class an error is an instance of decides.
_TABLE: Final[tuple[tuple[type[GatewayError], grpc.StatusCode], ...]] = (
    (AudioLimitError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (LimitExceeded, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (AudioError, grpc.StatusCode.INVALID_ARGUMENT),
    (InvalidRequest, grpc.StatusCode.INVALID_ARGUMENT),
    (ModelNotFound, grpc.StatusCode.NOT_FOUND),
    (BackendUnavailable, grpc.StatusCode.UNAVAILABLE),
    (BackendFailed, grpc.StatusCode.INTERNAL),
    (DeadlineExceeded, grpc.StatusCode.DEADLINE_EXCEEDED),
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (GatewayError, grpc.StatusCode.INTERNAL),
)

# A rate or channel count outside the supported range is a format the gateway does not take
# (INVALID_ARGUMENT); too long, too large or too slow to decode is a limit (RESOURCE_EXHAUSTED).
_FORMAT_LIMITS: Final = frozenset({"sample_rate", "channels"})

_HTTP: Final[dict[grpc.StatusCode, int]] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 413,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str] | None:
    """The status code and sentence for a known error, or None for an unexpected one."""
    if not isinstance(exc, GatewayError):
        return None
    if isinstance(exc, AudioLimitError) and exc.limit in _FORMAT_LIMITS:
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc)
    for cls, code in _TABLE:
        if isinstance(exc, cls):
            return code, str(exc)
    raise AssertionError("unreachable: GatewayError is in the table")  # pragma: no cover


def grpc_code(exc: GatewayError) -> grpc.StatusCode:
    """The gRPC status code of a domain error."""
    known = status_for(exc)
    assert known is not None
    return known[0]


def http_status(code: grpc.StatusCode) -> int:
    """The HTTP status a gRPC status code becomes on the HTTP route."""
    return _HTTP.get(code, 500)
