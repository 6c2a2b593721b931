"""Channel configuration: options, retries, TLS with a bearer token."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio
import pytest

import tritone
from tritone._config import DEFAULT_MAX_MESSAGE_BYTES, channel_options
from tritone_protos import audio_classification_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from support.fake_gateway import FakeServer, FakeServicer


def test_channel_options_defaults_and_overrides() -> None:
    mine: list[tuple[str, Any]] = [("grpc.max_receive_message_length", 1024), ("x.custom", 1)]
    before = list(mine)
    options = dict(channel_options(retries=2, tls=None, user_options=mine, user_agent="ua"))
    assert mine == before
    assert options["grpc.max_receive_message_length"] == 1024
    assert options["grpc.max_send_message_length"] == DEFAULT_MAX_MESSAGE_BYTES == 64 << 20
    assert options["x.custom"] == 1 and options["grpc.keepalive_time_ms"] > 0
    (method,) = json.loads(options["grpc.service_config"])["methodConfig"]
    assert {n["method"] for n in method["name"]} == {
        "Classify",
        "Embed",
        "ListModels",
        "GetModel",
        "LoadModel",
    }
    assert method["retryPolicy"]["maxAttempts"] == 3
    assert method["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
    none = dict(channel_options(retries=0, tls=None, user_options=None, user_agent="ua"))
    assert "retryPolicy" not in json.loads(none["grpc.service_config"])["methodConfig"][0]
    tls = tritone.TlsConfig(server_name_override="gateway.test")
    named = dict(channel_options(retries=3, tls=tls, user_options=None, user_agent="ua"))
    assert named["grpc.ssl_target_name_override"] == "gateway.test"


@pytest.fixture(scope="session")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make a test certificate: apt-get install openssl")
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=gateway.test"]
    command += ["-addext", "subjectAltName=DNS:gateway.test"]
    subprocess.run(
        command,
        check=True,
        capture_output=True,
    )
    return Path(key).read_bytes(), Path(cert).read_bytes()


@pytest.fixture
async def tls_server(
    fake_server: FakeServer, self_signed: tuple[bytes, bytes]
) -> AsyncIterator[tuple[str, FakeServicer]]:
    key, cert = self_signed
    server = grpc.aio.server()
    pb_grpc.add_AudioClassificationServicer_to_server(fake_server.servicer, server)  # type: ignore[no-untyped-call]
    creds = grpc.ssl_server_credentials([(key, cert)])
    port = server.add_secure_port("127.0.0.1:0", creds)
    await server.start()
    try:
        yield f"127.0.0.1:{port}", fake_server.servicer
    finally:
        await server.stop(None)


async def test_token_over_tls_uses_call_credentials(
    tls_server: tuple[str, FakeServicer], self_signed: tuple[bytes, bytes]
) -> None:
    target, servicer = tls_server
    tls = tritone.TlsConfig(root_certificates=self_signed[1], server_name_override="gateway.test")
    async with tritone.AsyncClient(target, tls=tls, token="over-tls") as client:
        await client.classify(b"x", model="tls-call")
    assert servicer.classify_metadata[-1]["authorization"] == "Bearer over-tls"


async def test_untrusted_certificate_is_unavailable(tls_server: tuple[str, FakeServicer]) -> None:
    target, _ = tls_server
    tls = tritone.TlsConfig(server_name_override="gateway.test")
    async with tritone.AsyncClient(target, tls=tls, retries=0) as client:
        with pytest.raises(tritone.UnavailableError):
            await client.list_models()
