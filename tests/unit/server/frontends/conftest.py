"""One in-process gateway over the fake Triton for the front-end tests, started once.

It is `app.Gateway` itself (see tests/support/inprocess.py); tests get the SDK's AsyncClient,
a raw gRPC stub, and aiohttp's test client over the HTTP app built on the same DataPlane.
Metrics accumulate over the session, so tests compare counters before and after.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import tritone
from support.inprocess import FakeTriton, gateway_settings, in_process_gateway
from tritone_protos import audio_classification_pb2_grpc as pb_grpc
from tritone_server.app import Gateway
from tritone_server.frontends.http import build_app


@pytest.fixture(scope="session")
async def fake_triton() -> FakeTriton:
    return FakeTriton()


@pytest.fixture(scope="session")
async def gateway(fake_triton: FakeTriton) -> AsyncIterator[Gateway]:
    async with in_process_gateway(fake_triton, gateway_settings()) as running:
        yield running


@pytest.fixture(scope="session")
async def target(gateway: Gateway) -> str:
    return f"127.0.0.1:{gateway.grpc_port}"


@pytest.fixture(scope="session")
async def client(target: str) -> AsyncIterator[tritone.AsyncClient]:
    # No retries: an UNAVAILABLE answer must reach the test as it was sent.
    async with tritone.AsyncClient(target, timeout=30.0, retries=0) as c:
        yield c


@pytest.fixture(scope="session")
async def channel(target: str) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(target) as ch:
        yield ch


@pytest.fixture(scope="session")
async def stub(channel: grpc.aio.Channel) -> pb_grpc.AudioClassificationStub:
    return pb_grpc.AudioClassificationStub(channel)  # type: ignore[no-untyped-call]


@pytest.fixture(scope="session")
async def http(gateway: Gateway) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """The HTTP app as app.Gateway builds it, on aiohttp's test server."""
    app = build_app(
        gateway.dataplane,
        gateway.ready.is_set,
        max_body_bytes=gateway.settings.max_clip_bytes,
    )
    async with TestClient(TestServer(app)) as test_client:
        yield test_client
