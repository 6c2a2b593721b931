"""The one table: each domain error -> its gRPC status code -> the HTTP status of that code."""

from __future__ import annotations

import re
from pathlib import Path

import grpc
import pytest

import tritone_server
from tritone_server import errors
from tritone_server.core.limits import Admission
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
from tritone_server.frontends.status import http_status, status_for

Code = grpc.StatusCode

# What a caller is told, per error class: the gRPC code and the HTTP status it becomes.
EXPECTED: list[tuple[GatewayError, grpc.StatusCode, int]] = [
    (InvalidRequest("top_k must be 0 or more"), Code.INVALID_ARGUMENT, 400),
    (AudioError("the audio is empty"), Code.INVALID_ARGUMENT, 400),
    (ModelNotFound("model 'x' is not served here"), Code.NOT_FOUND, 404),
    (BackendUnavailable("Triton is not connected"), Code.UNAVAILABLE, 503),
    (BackendFailed("Triton refused"), Code.INTERNAL, 500),
    (DeadlineExceeded("the call's deadline passed"), Code.DEADLINE_EXCEEDED, 504),
    (
        LimitExceeded("256 streams are open (max_streams)", limit="streams"),
        Code.RESOURCE_EXHAUSTED,
        413,
    ),
    (Unauthenticated("the bearer token is not valid"), Code.UNAUTHENTICATED, 401),
    (PermissionDenied("LoadModel needs an admin token"), Code.PERMISSION_DENIED, 403),
    (GatewayError("something the gateway knows"), Code.INTERNAL, 500),
]

FORMAT_LIMITS = ["sample_rate", "channels"]
OTHER_LIMITS = [
    "duration",
    "encoded_bytes",
    "decoded_bytes",
    "decode_timeout",
    # the gateway's own limits (core/limits.py), raised as LimitExceeded
    "chunk_bytes",
    "config_timeout",
    "decode_queue",
    "stream_duration",
    "stream_idle",
]
SERVER = Path(tritone_server.__file__).parent


@pytest.mark.parametrize(
    ("error", "code", "http"), EXPECTED, ids=[type(e).__name__ for e, _, _ in EXPECTED]
)
def test_each_error_class_has_its_code_and_http_status(
    error: GatewayError, code: grpc.StatusCode, http: int
) -> None:
    assert status_for(error) == (code, str(error))
    assert http_status(code) == http


@pytest.mark.parametrize("limit", FORMAT_LIMITS)
def test_a_format_outside_the_supported_range_is_an_invalid_argument(limit: str) -> None:
    error = AudioLimitError(f"the {limit} is outside the supported range", limit=limit)
    assert status_for(error) == (Code.INVALID_ARGUMENT, str(error))
    assert http_status(Code.INVALID_ARGUMENT) == 400


@pytest.mark.parametrize("limit", OTHER_LIMITS)
def test_other_limits_are_resource_exhausted(limit: str) -> None:
    error = AudioLimitError(f"the audio exceeds the {limit} limit", limit=limit)
    assert status_for(error) == (Code.RESOURCE_EXHAUSTED, str(error))
    busy = limit in ("decode_queue",)
    assert http_status(Code.RESOURCE_EXHAUSTED, error) == (429 if busy else 413)


@pytest.mark.parametrize("limit", ["max_unary_calls", "max_streams"])
def test_a_gateway_too_busy_is_429_on_http_not_413(limit: str) -> None:
    """Too busy now (retry later) is not too much in this request (send less)."""
    admission = Admission(1, what="calls", setting=limit)
    with admission.enter(), pytest.raises(LimitExceeded) as refused, admission.enter():
        pass
    assert status_for(refused.value) == (Code.RESOURCE_EXHAUSTED, str(refused.value))
    assert http_status(Code.RESOURCE_EXHAUSTED, refused.value) == 429


def test_every_limit_the_gateway_raises_is_classified() -> None:
    """A new limit must be placed on one side or the other, not fall to a default."""
    raised = set()
    for path in SERVER.rglob("*.py"):
        raised |= set(re.findall(r'limit="([a-z_]+)"', path.read_text(encoding="utf-8")))
    assert raised, "no AudioLimitError(limit=...) found: has the code moved?"
    assert raised <= set(FORMAT_LIMITS + OTHER_LIMITS)


class _Subclassed(ModelNotFound):
    """A more specific error added later still gets its base class's code."""


def test_subclasses_take_the_code_of_their_nearest_listed_base() -> None:
    assert status_for(_Subclassed("m")) == (Code.NOT_FOUND, "m")


def test_every_domain_error_class_is_mapped() -> None:
    classes = [getattr(errors, name) for name in errors.__all__]
    assert {type(e) for e, _, _ in EXPECTED} | {AudioLimitError} == set(classes)


@pytest.mark.parametrize("exc", [RuntimeError("boom"), ValueError("bad"), KeyError("k")])
def test_unexpected_exceptions_are_not_in_the_table(exc: Exception) -> None:
    # ValueError in particular: AudioError is one, but a bare ValueError is a bug.
    assert status_for(exc) is None


@pytest.mark.parametrize(
    ("code", "http"),
    [
        (Code.UNAUTHENTICATED, 401),
        (Code.PERMISSION_DENIED, 403),
        (Code.DEADLINE_EXCEEDED, 504),
        (Code.INTERNAL, 500),
        (Code.UNKNOWN, 500),
        (Code.FAILED_PRECONDITION, 500),
    ],
)
def test_codes_without_a_domain_error_still_have_an_http_status(
    code: grpc.StatusCode, http: int
) -> None:
    assert http_status(code) == http
