"""Domain errors of the gateway and the one table that turns them into gRPC status codes.

GatewayError
├── InvalidRequest          INVALID_ARGUMENT  (bad options; so is audio.AudioError)
├── ModelNotFound           NOT_FOUND
├── BackendUnavailable      UNAVAILABLE       (Triton unreachable or model not ready)
└── BackendFailed           INTERNAL          (Triton answered with an error)

audio.AudioLimitError (too long, too large, too slow to decode) is RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import grpc

from tritone_server.audio import AudioError, AudioLimitError


class GatewayError(Exception):
    """Base of the errors the gateway reports to callers; str() is the sentence sent."""

    code = grpc.StatusCode.INTERNAL


class InvalidRequest(GatewayError):
    """The request's options are wrong; the sentence says which."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class ModelNotFound(GatewayError):
    """No model of that name is served."""

    code = grpc.StatusCode.NOT_FOUND


class BackendUnavailable(GatewayError):
    """Triton cannot be reached, or the model is not ready there."""

    code = grpc.StatusCode.UNAVAILABLE


class BackendFailed(GatewayError):
    """Triton answered a request with an error."""

    code = grpc.StatusCode.INTERNAL


# A rate or channel count outside the supported range is a format the gateway does not take
# (INVALID_ARGUMENT); too long, too large or too slow to decode is a limit (RESOURCE_EXHAUSTED).
_FORMAT_LIMITS = frozenset({"sample_rate", "channels"})


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str] | None:
    """The status code and sentence for a known error, or None for an unexpected one."""
    if isinstance(exc, GatewayError):
        return exc.code, str(exc)
    if isinstance(exc, AudioLimitError) and exc.limit not in _FORMAT_LIMITS:
        return grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc)
    if isinstance(exc, AudioError):
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc)
    return None
