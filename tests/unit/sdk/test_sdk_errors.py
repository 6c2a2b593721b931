"""Status codes become tritone error classes, on unary calls and streams alike."""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING

import grpc
import pytest

import tritone
from tritone._config import DEFAULT, resolve_timeout
from tritone.errors import from_grpc_error

if TYPE_CHECKING:
    from support.fake_gateway import FakeServer

CASES: list[tuple[str, type[tritone.TritoneError], type[BaseException]]] = [
    ("INVALID_ARGUMENT", tritone.InvalidArgumentError, ValueError),
    ("NOT_FOUND", tritone.ModelNotFoundError, LookupError),
    ("RESOURCE_EXHAUSTED", tritone.ResourceExhaustedError, tritone.TritoneError),
    ("UNAVAILABLE", tritone.UnavailableError, ConnectionError),
    ("UNAUTHENTICATED", tritone.UnauthenticatedError, tritone.TritoneError),
    ("PERMISSION_DENIED", tritone.PermissionDeniedError, tritone.TritoneError),
    ("DEADLINE_EXCEEDED", tritone.DeadlineExceededError, TimeoutError),
    ("CANCELLED", tritone.CallCancelledError, tritone.TritoneError),
    ("INTERNAL", tritone.InternalError, tritone.TritoneError),
    ("UNKNOWN", tritone.InternalError, tritone.TritoneError),
    ("UNIMPLEMENTED", tritone.TritoneError, Exception),
    ("FAILED_PRECONDITION", tritone.TritoneError, Exception),
]


@pytest.mark.parametrize(("code", "cls", "also"), CASES)
async def test_unary_status_maps_to_error_class(
    client: tritone.AsyncClient, code: str, cls: type[tritone.TritoneError], also: type
) -> None:
    with pytest.raises(cls) as caught:
        await client.classify(b"x", model=f"abort:{code}")
    error = caught.value
    assert type(error) is cls
    assert isinstance(error, also)
    assert error.code is tritone.StatusCode[code]
    assert error.details == f"the fake refused with {code}"
    assert isinstance(error.__cause__, grpc.aio.AioRpcError)


@pytest.mark.parametrize(("code", "cls", "also"), CASES)
async def test_stream_status_maps_to_error_class(
    client: tritone.AsyncClient, code: str, cls: type[tritone.TritoneError], also: type
) -> None:
    with pytest.raises(cls) as caught:
        async for _ in client.stream_classify(
            [b"\x00\x00"], sample_rate=16000, model=f"abort:{code}"
        ):
            pass
    assert type(caught.value) is cls
    assert caught.value.code is tritone.StatusCode[code]
    assert caught.value.details == f"the fake refused with {code}"


async def test_send_on_a_failed_stream_raises_its_error(client: tritone.AsyncClient) -> None:
    async with client.stream_classify(sample_rate=16000, model="abort:RESOURCE_EXHAUSTED") as s:
        with pytest.raises(tritone.ResourceExhaustedError):
            async for _ in s:
                pass
        with pytest.raises(tritone.ResourceExhaustedError) as caught:
            await s.send(b"\x00\x00")
        assert caught.value.details == "the fake refused with RESOURCE_EXHAUSTED"


async def test_unary_deadline_is_a_timeout(client: tritone.AsyncClient) -> None:
    with pytest.raises(TimeoutError) as caught:
        await client.classify(b"x", model="slow", timeout=0.2)
    assert isinstance(caught.value, tritone.DeadlineExceededError)
    assert caught.value.code is tritone.StatusCode.DEADLINE_EXCEEDED


async def test_client_timeout_is_the_default_deadline(fake_server: FakeServer) -> None:
    async with tritone.AsyncClient(fake_server.target, timeout=0.2) as c:
        with pytest.raises(tritone.DeadlineExceededError):
            await c.classify(b"x", model="slow")


async def test_stream_deadline_is_a_timeout(client: tritone.AsyncClient) -> None:
    stream = client.stream_classify([b"\x00\x00"], sample_rate=16000, model="slow", timeout=0.2)
    with pytest.raises(tritone.DeadlineExceededError):
        async for _ in stream:
            pass


async def test_unreachable_server_is_unavailable() -> None:
    async with tritone.AsyncClient("127.0.0.1:1", retries=0) as c:
        with pytest.raises(tritone.UnavailableError) as caught:
            await c.list_models()
    assert isinstance(caught.value, ConnectionError)
    async with tritone.AsyncClient("127.0.0.1:1", retries=0) as c:
        with pytest.raises(tritone.UnavailableError):
            async for _ in c.stream_classify([b"\x00\x00"], sample_rate=16000):
                pass


def test_resolve_timeout_sentinel() -> None:
    assert resolve_timeout(DEFAULT, 30.0) == 30.0
    assert resolve_timeout(None, 30.0) is None
    assert resolve_timeout(2.5, 30.0) == 2.5
    assert repr(tritone.DEFAULT) == "DEFAULT"


def test_from_grpc_error_accepts_sync_rpc_errors() -> None:
    class SyncError(grpc.RpcError):  # type: ignore[misc]
        def code(self) -> grpc.StatusCode:
            return grpc.StatusCode.PERMISSION_DENIED

        def details(self) -> str:
            return "not for you"

    error = from_grpc_error(SyncError())
    assert type(error) is tritone.PermissionDeniedError
    assert error.code is tritone.StatusCode.PERMISSION_DENIED
    assert str(error) == "PERMISSION_DENIED: not for you"
    bare = from_grpc_error(grpc.RpcError())
    assert type(bare) is tritone.InternalError and bare.code is tritone.StatusCode.UNKNOWN


def test_errors_pickle_with_their_code() -> None:
    error = tritone.InvalidArgumentError("bad rate", tritone.StatusCode.INVALID_ARGUMENT)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is tritone.InvalidArgumentError
    assert (copy.code, copy.details) == (error.code, error.details)


def test_misuse_family_is_separate() -> None:
    assert issubclass(tritone.StreamStateError, RuntimeError)
    assert issubclass(tritone.ClientClosedError, tritone.UsageError)
    assert not issubclass(tritone.StreamStateError, tritone.TritoneError)
    assert tritone.CallCancelledError.__name__ != "CancelledError"


class _TooLarge(grpc.RpcError):  # type: ignore[misc]
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.RESOURCE_EXHAUSTED

    def details(self) -> str:
        return "Received message larger than max (20971552 vs. 16777216)"


def test_a_message_over_the_size_limit_says_to_stream() -> None:
    error = from_grpc_error(_TooLarge())
    assert isinstance(error, tritone.ResourceExhaustedError)
    assert error.details.startswith("Received message larger than max (20971552 vs. 16777216)")
    assert "stream_classify" in error.details and "--max-message-bytes" in error.details
