"""The gateway's domain errors. A leaf: no transport, no audio libraries.

GatewayError                str() is the sentence sent to the caller
├── InvalidRequest          bad options
├── AudioError              bad audio (also a ValueError)
│   └── AudioLimitError     the audio exceeds a configured limit; `limit` names which
├── LimitExceeded           a gateway limit (streams, chunk size, idle time); names the setting
├── ModelNotFound           no model of that name
├── BackendUnavailable      Triton unreachable or the model not ready there
├── BackendFailed           Triton answered with an error
├── DeadlineExceeded        the caller's deadline passed before Triton answered
├── Unauthenticated         no bearer token, or one that is not valid
└── PermissionDenied        a valid token that may not make this call

`frontends.status` maps each to a gRPC status code and an HTTP status, in one table.
"""

from __future__ import annotations

__all__ = [
    "AudioError",
    "AudioLimitError",
    "BackendFailed",
    "BackendUnavailable",
    "DeadlineExceeded",
    "GatewayError",
    "InvalidRequest",
    "LimitExceeded",
    "ModelNotFound",
    "PermissionDenied",
    "Unauthenticated",
]


class GatewayError(Exception):
    """Base of the errors the gateway reports to callers; str() is the sentence sent."""


class InvalidRequest(GatewayError):
    """The request's options are wrong; the sentence says which."""


class AudioError(GatewayError, ValueError):
    """The caller's audio cannot be used; the message is a sentence naming what was wrong."""


class AudioLimitError(AudioError):
    """The audio exceeds a configured limit.

    `limit` names it: "duration", "channels", "sample_rate", "encoded_bytes",
    "decoded_bytes" or "decode_timeout".
    """

    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(message)
        self.limit = limit

    def __reduce__(self) -> tuple[object, ...]:
        return (_limit_error, (str(self), self.limit))


def _limit_error(message: str, limit: str) -> AudioLimitError:
    return AudioLimitError(message, limit=limit)


class LimitExceeded(GatewayError):
    """A configured limit of the gateway was reached (RESOURCE_EXHAUSTED).

    `limit` names it ("streams", "unary_calls", "chunk_bytes", ...); the sentence names the
    setting that raises it, so an operator reading a client's error knows what to change.
    """

    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(message)
        self.limit = limit

    def __reduce__(self) -> tuple[object, ...]:
        return (_limit_exceeded, (str(self), self.limit))


def _limit_exceeded(message: str, limit: str) -> LimitExceeded:
    return LimitExceeded(message, limit=limit)


class ModelNotFound(GatewayError):
    """No model of that name is served."""


class BackendUnavailable(GatewayError):
    """Triton cannot be reached, or the model is not ready there."""


class BackendFailed(GatewayError):
    """Triton answered a request with an error."""


class DeadlineExceeded(GatewayError):
    """The caller's deadline passed before its windows were answered (the shared request they
    rode in goes on for the other callers)."""


class Unauthenticated(GatewayError):
    """No bearer token, or one that is not valid."""


class PermissionDenied(GatewayError):
    """A valid token that may not make this call (LoadModel without an admin token)."""
