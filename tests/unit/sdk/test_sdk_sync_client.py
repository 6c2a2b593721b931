"""Client: the synchronous facade over AsyncClient, and the parity of the two."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import pytest

import tritone

if TYPE_CHECKING:
    from support.fake_gateway import FakeServer

# Methods whose signatures must differ between the twins, and why.
DIFFERENT = {
    # Sync form takes a required sync iterable and returns an iterator of events; the async
    # form also takes async iterables (or none, for send()) and returns an AudioStream.
    "stream_classify",
}


def public_methods(cls: type) -> dict[str, object]:
    return {
        name: member
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_") and callable(member)
    }


def test_public_methods_match() -> None:
    sync, aio = public_methods(tritone.Client), public_methods(tritone.AsyncClient)
    assert set(sync) == set(aio)
    for name in sorted(set(sync) - DIFFERENT):
        assert inspect.signature(sync[name]) == inspect.signature(aio[name]), name  # type: ignore[arg-type]
        assert inspect.iscoroutinefunction(aio[name])
        assert not inspect.iscoroutinefunction(sync[name])
    assert inspect.signature(tritone.Client.__init__) == inspect.signature(
        tritone.AsyncClient.__init__
    )


def test_stream_classify_keywords_match() -> None:
    sync = inspect.signature(tritone.Client.stream_classify).parameters
    aio = inspect.signature(tritone.AsyncClient.stream_classify).parameters
    assert list(sync) == list(aio)
    for name in list(sync)[2:]:
        assert sync[name] == aio[name], name


def test_sync_docstrings_have_sync_examples() -> None:
    doc = tritone.Client.classify.__doc__ or ""
    assert "Args:" in doc and "Raises:" in doc
    assert "await" not in doc and "client.classify(" in doc


def use_sync_client(target: str) -> None:
    with tritone.Client(target) as client:
        result = client.classify(np.zeros(160, dtype=np.float32), sample_rate=16000)
        assert result.top == tritone.LabelScore("dog", 0.75)
        assert [m.name for m in client.list_models()] == ["speech", "vad"]
        assert client.get_model("vad").stateful
        with pytest.raises(tritone.ModelNotFoundError):
            client.get_model("missing")

        def paced() -> Iterator[bytes]:
            for _ in range(3):
                time.sleep(0.01)  # a blocking source is fine: it is pulled in a thread
                yield b"\x00\x00" * 8

        events = list(client.stream_classify(paced(), sample_rate=16000, model="sync-stream"))
        assert isinstance(events[-1], tritone.StreamSummary)
        assert events[-1].frames_received == 24
    with pytest.raises(tritone.ClientClosedError):
        client.list_models()


async def test_sync_client_inside_a_running_loop(fake_server: FakeServer) -> None:
    # The fake server runs on this loop, so the blocking calls go to a worker thread;
    # the Client itself starts its own loop there, next to a running one here.
    await asyncio.to_thread(use_sync_client, fake_server.target)


async def test_sync_client_is_made_and_closed_in_a_running_loop(fake_server: FakeServer) -> None:
    client = tritone.Client(fake_server.target)
    await asyncio.to_thread(client.list_models)
    client.close()
    client.close()
    with pytest.raises(tritone.ClientClosedError):
        client.classify(b"x")


async def test_breaking_a_sync_stream_cancels_it(fake_server: FakeServer) -> None:
    def run() -> None:
        def endless() -> Iterator[bytes]:
            while True:
                time.sleep(0.005)  # a live blocking source, paced as a microphone is
                yield b"\x00\x00"

        with tritone.Client(fake_server.target) as client:
            for _ in client.stream_classify(endless(), sample_rate=16000, model="sync-break"):
                break

    await asyncio.to_thread(run)
    assert await fake_server.wait_for(lambda: fake_server.servicer.streams["sync-break"].cancelled)


async def test_sync_stream_errors_are_tritone_errors(fake_server: FakeServer) -> None:
    def run() -> None:
        with tritone.Client(fake_server.target) as client:
            with pytest.raises(tritone.UnauthenticatedError):
                list(
                    client.stream_classify(
                        [b"\x00\x00"], sample_rate=8000, model="abort:UNAUTHENTICATED"
                    )
                )
            with pytest.raises(tritone.InvalidArgumentError):
                client.stream_classify([b""], sample_rate=-1)

    await asyncio.to_thread(run)
