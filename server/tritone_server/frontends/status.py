"""Domain error -> gRPC status code and HTTP status: the one table both front ends use."""

from __future__ import annotations

import logging
import traceback
import uuid
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

__all__ = ["grpc_code", "http_status", "internal_error", "status_for"]

log = logging.getLogger("tritone_server.access")

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

# Limits that say "too busy now", not "too much in this request": HTTP 429, so a client
# retries later (413 would tell it to send less).
_BUSY_LIMITS: Final = frozenset({"max_unary_calls", "max_streams", "decode_queue"})

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


def http_status(code: grpc.StatusCode, exc: BaseException | None = None) -> int:
    """The HTTP status a gRPC status code (of error ``exc``) becomes on the HTTP route."""
    if isinstance(exc, (LimitExceeded, AudioLimitError)) and exc.limit in _BUSY_LIMITS:
        return 429
    return _HTTP.get(code, 500)


def internal_error(where: str, exc: BaseException) -> str:
    """Log an unexpected error with its traceback under a fresh id; the sentence for the
    caller names only the id, so nothing internal leaks and the log line can be found."""
    error_id = uuid.uuid4().hex[:12]
    log.error(
        "event=internal_error method=%s error_id=%s error=%r\n%s",
        where,
        error_id,
        exc,
        "".join(traceback.format_exception(exc)),
    )
    return f"internal error in the gateway (error id {error_id})"
