"""Exceptions raised by the Tritone SDK.

The hierarchy::

    Exception
    ├── TritoneError                      the server (or the SDK, validating locally) refused
    │   ├── InvalidArgumentError          also ValueError
    │   ├── ModelNotFoundError            also LookupError
    │   ├── ResourceExhaustedError
    │   ├── UnavailableError              also ConnectionError
    │   ├── UnauthenticatedError
    │   ├── PermissionDeniedError
    │   ├── DeadlineExceededError         also TimeoutError
    │   ├── CallCancelledError
    │   └── InternalError
    └── UsageError                        also RuntimeError: the caller used the SDK wrongly
        ├── StreamStateError              e.g. send() after end(), reuse of a finished stream
        └── ClientClosedError             a call on a client after close()

Every `TritoneError` carries `code`, a `StatusCode` member, and `details`, the server's
sentence. Status codes without a class of their own (ABORTED, UNIMPLEMENTED, ...) raise
`TritoneError` itself. `from_grpc_error` is the one place where gRPC errors become these;
the unary and the streaming paths both call it.

A stream that fails also says how far it got: `frames_received` (input frames the gateway
took in) and `frames_consumed` (input frames whose audio was fully classified), read from
the trailing metadata ``tritone-frames-received`` / ``tritone-frames-consumed``;
`resume_frame()` turns them into the frame a new stream should start from.
"""

from __future__ import annotations

import enum
from typing import Any

import grpc

__all__ = [
    "CallCancelledError",
    "ClientClosedError",
    "DeadlineExceededError",
    "InternalError",
    "InvalidArgumentError",
    "ModelNotFoundError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "StatusCode",
    "StreamStateError",
    "TritoneError",
    "UnauthenticatedError",
    "UnavailableError",
    "UsageError",
    "from_grpc_error",
]


class StatusCode(enum.Enum):
    """gRPC status codes, owned by Tritone so callers need not import grpc."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


FRAMES_RECEIVED_KEY = "tritone-frames-received"
FRAMES_CONSUMED_KEY = "tritone-frames-consumed"
DEFAULT_LOOKBACK_S = 2.0


class TritoneError(Exception):
    """A call failed; `code` says how and `details` says why."""

    default_code: StatusCode = StatusCode.UNKNOWN

    def __init__(
        self,
        details: str,
        code: StatusCode | None = None,
        *,
        frames_received: int | None = None,
        frames_consumed: int | None = None,
    ) -> None:
        super().__init__(details)
        self.code: StatusCode = self.default_code if code is None else code
        """The status code, a `StatusCode` member."""
        self.details: str = details
        """The server's sentence (or the SDK's, for errors found before sending)."""
        self.frames_received: int | None = frames_received
        """For a failed stream: input frames the gateway received; None if not told."""
        self.frames_consumed: int | None = frames_consumed
        """For a failed stream: input frames whose audio was fully classified (every
        window over them was answered); None if not told."""

    def __str__(self) -> str:
        return f"{self.code.name}: {self.details}"

    def __reduce__(self) -> tuple[Any, ...]:
        state = {"frames_received": self.frames_received, "frames_consumed": self.frames_consumed}
        return (type(self), (self.details, self.code), state)

    def resume_frame(self, sample_rate: int, lookback_s: float = DEFAULT_LOOKBACK_S) -> int:
        """The input frame a new stream should start from after this failure.

        `frames_consumed` less `lookback_s` of audio (default 2 s, as Riva's clients do), so
        a sound cut by the failure is heard whole again; 0 when the server gave no count.
        """
        if sample_rate <= 0 or lookback_s < 0:
            raise ValueError("sample_rate must be positive and lookback_s not negative")
        if self.frames_consumed is None:
            return 0
        return max(0, self.frames_consumed - round(lookback_s * sample_rate))


class InvalidArgumentError(TritoneError, ValueError):
    """The audio or an option was rejected, by the server or before sending."""

    default_code = StatusCode.INVALID_ARGUMENT


class ModelNotFoundError(TritoneError, LookupError):
    """The named model is not served."""

    default_code = StatusCode.NOT_FOUND


class ResourceExhaustedError(TritoneError):
    """A server limit was hit: message size, clip duration, concurrent streams."""

    default_code = StatusCode.RESOURCE_EXHAUSTED


class UnavailableError(TritoneError, ConnectionError):
    """The gateway, or the Triton behind it, cannot be reached (after retries)."""

    default_code = StatusCode.UNAVAILABLE


class UnauthenticatedError(TritoneError):
    """No token, or a token the gateway does not accept."""

    default_code = StatusCode.UNAUTHENTICATED


class PermissionDeniedError(TritoneError):
    """The token is valid but does not allow this call."""

    default_code = StatusCode.PERMISSION_DENIED


class DeadlineExceededError(TritoneError, TimeoutError):
    """The call's deadline passed before it finished."""

    default_code = StatusCode.DEADLINE_EXCEEDED


class CallCancelledError(TritoneError):
    """The call was cancelled: by the caller (`stream.cancel()`) or by the server."""

    default_code = StatusCode.CANCELLED


class InternalError(TritoneError):
    """The server failed (INTERNAL, UNKNOWN or DATA_LOSS); the details are generic."""

    default_code = StatusCode.INTERNAL


class UsageError(RuntimeError):
    """The SDK was used in a way it does not allow; nothing was sent."""


class StreamStateError(UsageError):
    """A stream operation that its state forbids: send() after end() or after it finished."""


class ClientClosedError(UsageError):
    """A call on a client that has been closed."""


_BY_CODE: dict[StatusCode, type[TritoneError]] = {
    StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    StatusCode.OUT_OF_RANGE: InvalidArgumentError,
    StatusCode.NOT_FOUND: ModelNotFoundError,
    StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    StatusCode.UNAVAILABLE: UnavailableError,
    StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    StatusCode.CANCELLED: CallCancelledError,
    StatusCode.INTERNAL: InternalError,
    StatusCode.UNKNOWN: InternalError,
    StatusCode.DATA_LOSS: InternalError,
}


def error_for_status(code: StatusCode, details: str, trailing_metadata: Any = None) -> TritoneError:
    """Build the most specific `TritoneError` for a status code (with a stream's counts,
    when the trailing metadata carries them)."""
    received, consumed = stream_counts(trailing_metadata)
    return _BY_CODE.get(code, TritoneError)(
        details, code, frames_received=received, frames_consumed=consumed
    )


def stream_counts(trailing_metadata: Any) -> tuple[int | None, int | None]:
    """(frames received, frames consumed) from a call's trailing metadata, None if absent."""
    found: dict[str, int] = {}
    for item in trailing_metadata or ():
        key, value = item if isinstance(item, tuple) else (item.key, item.value)
        if key in (FRAMES_RECEIVED_KEY, FRAMES_CONSUMED_KEY):
            try:
                found[key] = int(value)
            except (TypeError, ValueError):
                continue
    return found.get(FRAMES_RECEIVED_KEY), found.get(FRAMES_CONSUMED_KEY)


def _status_code(grpc_code: Any) -> StatusCode:
    name = getattr(grpc_code, "name", None)
    if isinstance(name, str) and name in StatusCode.__members__:
        return StatusCode[name]
    return StatusCode.UNKNOWN


TOO_LARGE_HINT = (
    "the audio is larger than one message may be (the gateway's --max-message-bytes, 16 MiB "
    "by default); send long audio with stream_classify, which sends it in chunks"
)
"""Added to gRPC's own sentence when a message was over a size limit (gRPC itself, on
either side, refuses it; the gateway never sees it, so it cannot say so itself)."""


def from_grpc_error(exc: grpc.aio.AioRpcError | grpc.RpcError) -> TritoneError:
    """Map a gRPC error (async or sync API) to the matching `TritoneError`.

    Use it as ``raise from_grpc_error(exc) from exc`` so the gRPC error stays attached.
    """
    code_fn = getattr(exc, "code", None)
    details_fn = getattr(exc, "details", None)
    code = _status_code(code_fn()) if callable(code_fn) else StatusCode.UNKNOWN
    details = details_fn() if callable(details_fn) else None
    if not details:
        details = f"the call failed with {code.name}"
    if code is StatusCode.RESOURCE_EXHAUSTED and "message larger than max" in details:
        details = f"{details}: {TOO_LARGE_HINT}"
    trailing_fn = getattr(exc, "trailing_metadata", None)
    trailing = trailing_fn() if callable(trailing_fn) else None
    return error_for_status(code, str(details), trailing)


def invalid_argument(details: str) -> InvalidArgumentError:
    """An `InvalidArgumentError` found by the SDK before anything was sent."""
    return InvalidArgumentError(details, StatusCode.INVALID_ARGUMENT)
