"""ServerTls on real loopback servers: gRPC health and an aiohttp route, certificates rotated
under them (in-process, no Triton: the gateway's own TLS tests are in tests/integration)."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import grpc
import pytest
import pytest_asyncio
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from support.certs import KeyPair, TestCa, replace_file
from tritone_server.frontends.tls import ServerTls


@dataclass
class Servers:
    folder: Path
    tls: ServerTls
    grpc_port: int
    http_port: int


async def grpc_status(
    port: int, root: bytes | None, client: KeyPair | None = None
) -> grpc.StatusCode:
    """The status of a health check over TLS (root given) or plaintext (root None)."""
    if root is None:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    else:
        creds = grpc.ssl_channel_credentials(
            root_certificates=root,
            private_key=None if client is None else client.private_key,
            certificate_chain=None if client is None else client.certificate,
        )
        channel = grpc.aio.secure_channel(f"127.0.0.1:{port}", creds)
    async with channel:
        try:
            await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
        except grpc.aio.AioRpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


async def http_status(port: int, root: bytes, client: KeyPair | None, folder: Path) -> int | str:
    context = ssl.create_default_context(cadata=root.decode())
    if client is not None:
        cert, key = client.write(folder, "http-client")
        context.load_cert_chain(cert, key)
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"https://127.0.0.1:{port}/x", ssl=context) as reply,
        ):
            return reply.status
    except aiohttp.ClientError as exc:
        return type(exc).__name__


async def _serve(tls: ServerTls, folder: Path) -> AsyncIterator[Servers]:
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    grpc_port = server.add_secure_port("127.0.0.1:0", tls.grpc_credentials())
    await server.start()

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/x", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls.ssl_context())
    await site.start()
    http_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield Servers(folder, tls, grpc_port, http_port)
    finally:
        await runner.cleanup()
        await server.stop(0)


CA = TestCa("test-ca")
OTHER_CA = TestCa("other-ca")


@pytest_asyncio.fixture(loop_scope="session")
async def tls_servers(tmp_path: Path) -> AsyncIterator[Servers]:
    cert, key = CA.server_pair().write(tmp_path, "server")
    async for servers in _serve(ServerTls(cert, key), tmp_path):
        yield servers


@pytest_asyncio.fixture(loop_scope="session")
async def mtls_servers(tmp_path: Path) -> AsyncIterator[Servers]:
    cert, key = CA.server_pair().write(tmp_path, "server")
    (tmp_path / "clients.pem").write_bytes(CA.pem)
    async for servers in _serve(ServerTls(cert, key, tmp_path / "clients.pem"), tmp_path):
        yield servers


async def test_tls_needs_the_right_ca(tls_servers: Servers) -> None:
    port = tls_servers.grpc_port
    assert await grpc_status(port, CA.pem) is grpc.StatusCode.OK
    assert await grpc_status(port, OTHER_CA.pem) is grpc.StatusCode.UNAVAILABLE
    assert await grpc_status(port, None) is grpc.StatusCode.UNAVAILABLE
    folder = tls_servers.folder
    assert await http_status(tls_servers.http_port, CA.pem, None, folder) == 200
    assert await http_status(tls_servers.http_port, OTHER_CA.pem, None, folder) != 200


async def test_mtls_needs_a_client_certificate_from_the_client_ca(mtls_servers: Servers) -> None:
    port, folder = mtls_servers.grpc_port, mtls_servers.folder
    assert await grpc_status(port, CA.pem, CA.client_pair()) is grpc.StatusCode.OK
    assert await grpc_status(port, CA.pem) is grpc.StatusCode.UNAVAILABLE
    assert await grpc_status(port, CA.pem, OTHER_CA.client_pair()) is grpc.StatusCode.UNAVAILABLE
    http = mtls_servers.http_port
    assert await http_status(http, CA.pem, CA.client_pair(), folder) == 200
    assert await http_status(http, CA.pem, None, folder) != 200
    assert await http_status(http, CA.pem, OTHER_CA.client_pair(), folder) != 200


async def test_rotated_files_serve_new_connections_and_keep_open_ones(
    mtls_servers: Servers,
) -> None:
    port, folder = mtls_servers.grpc_port, mtls_servers.folder
    old_client = CA.client_pair()
    creds = grpc.ssl_channel_credentials(CA.pem, old_client.private_key, old_client.certificate)
    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", creds) as open_channel:
        stub = health_pb2_grpc.HealthStub(open_channel)
        await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
        # cert-manager's rotation: a new CA signs the server and the callers.
        new_ca = TestCa("rotated-ca")
        new_ca.server_pair().write(folder, "server")
        replace_file(folder / "clients.pem", new_ca.pem)
        new_client = new_ca.client_pair()
        # No signal: the next connection's handshake notices the change.
        assert await grpc_status(port, new_ca.pem, new_client) is grpc.StatusCode.OK
        assert await grpc_status(port, CA.pem, old_client) is grpc.StatusCode.UNAVAILABLE
        http = mtls_servers.http_port
        assert await http_status(http, new_ca.pem, new_client, folder) == 200
        assert await http_status(http, CA.pem, old_client, folder) != 200
        # The connection made before the rotation still works.
        await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert mtls_servers.tls.version == 2


async def test_a_mismatched_pair_keeps_the_current_certificate(
    tls_servers: Servers, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="tritone_server.frontends.tls")
    folder = tls_servers.folder
    new_pair, other_pair = CA.server_pair(), CA.server_pair()
    replace_file(folder / "server.crt", new_pair.certificate)
    replace_file(folder / "server.key", other_pair.private_key)  # half-way through a rotation
    assert tls_servers.tls.refresh(force=True) is False
    assert "event=tls_reload_failed" in caplog.text
    assert await grpc_status(tls_servers.grpc_port, CA.pem) is grpc.StatusCode.OK
    replace_file(folder / "server.key", new_pair.private_key)
    assert tls_servers.tls.refresh() is True
    assert tls_servers.tls.material.certificate_chain == new_pair.certificate
    assert await grpc_status(tls_servers.grpc_port, CA.pem) is grpc.StatusCode.OK


async def test_concurrent_handshakes_all_succeed(tls_servers: Servers) -> None:
    """The fetcher runs once per handshake, from gRPC's threads: concurrent ones all pass."""
    results = await asyncio.gather(*(grpc_status(tls_servers.grpc_port, CA.pem) for _ in range(8)))
    assert set(results) == {grpc.StatusCode.OK}
