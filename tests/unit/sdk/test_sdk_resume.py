"""A failed stream's counts (trailing metadata) on the SDK's error, and the resume helper."""

from __future__ import annotations

import pickle

import grpc
import pytest

import tritone
from tritone.errors import from_grpc_error

COUNTS = (("tritone-frames-received", "48000"), ("tritone-frames-consumed", "40000"))


def aio_error(code: grpc.StatusCode, trailing: tuple[tuple[str, str], ...]) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailing), details="Triton went away"
    )


def test_the_counts_of_a_failed_stream_are_on_the_error() -> None:
    error = from_grpc_error(aio_error(grpc.StatusCode.UNAVAILABLE, COUNTS))
    assert isinstance(error, tritone.UnavailableError)
    assert error.frames_received == 48000
    assert error.frames_consumed == 40000


def test_without_counts_they_are_none_and_resume_starts_at_zero() -> None:
    error = from_grpc_error(aio_error(grpc.StatusCode.INTERNAL, ()))
    assert error.frames_received is None and error.frames_consumed is None
    assert error.resume_frame(16000) == 0


def test_resume_goes_back_two_seconds_from_what_was_consumed() -> None:
    error = from_grpc_error(aio_error(grpc.StatusCode.UNAVAILABLE, COUNTS))
    assert error.resume_frame(16000) == 40000 - 32000
    assert error.resume_frame(16000, lookback_s=0) == 40000
    assert error.resume_frame(8000, lookback_s=10) == 0  # never before the stream's start
    with pytest.raises(ValueError):
        error.resume_frame(0)


def test_the_counts_survive_pickling() -> None:
    error = from_grpc_error(aio_error(grpc.StatusCode.UNAVAILABLE, COUNTS))
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is tritone.UnavailableError
    assert (copy.frames_received, copy.frames_consumed) == (48000, 40000)
