"""TLS from the gateway to Triton: a real Triton with --grpc-use-ssl, certificates made here.

The gateway given the CA that signed Triton's certificate serves through it; a pool that
trusts another CA, or speaks plaintext, never finds that Triton ready.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

import tritone
from support.certs import TestCa
from support.gateway import REPO, GatewayStartError, start_gateway
from support.tones import FREQS, LABELS, tone
from tritone_server.triton.client import TritonBackend
from tritone_server.triton.local import LocalTriton, LocalTritonTls
from tritone_server.triton.tls import TritonTls

pytestmark = pytest.mark.integration

CA = TestCa("triton-test-ca")
WRONG_CA = TestCa("not-tritons-ca")


@pytest_asyncio.fixture
async def tls_triton(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """A Triton serving ``tones`` over TLS; its gRPC address and the CA file."""
    cert, key = CA.server_pair().write(tmp_path, "triton")
    ca = tmp_path / "ca.crt"
    ca.write_bytes(CA.pem)
    repository = tmp_path / "repository"
    repository.mkdir()
    (repository / "tones").symlink_to(REPO / "model_repository" / "tones")
    async with LocalTriton(repository, grpc_tls=LocalTritonTls(cert, key, ca)) as endpoints:
        yield endpoints.grpc_url, ca


async def test_the_gateway_reaches_triton_over_tls(tls_triton: tuple[str, Path]) -> None:
    url, ca = tls_triton
    flags = ("--triton-url", url, "--triton-tls-ca", str(ca), "--default-model", "tones")
    try:
        with start_gateway(*flags, "--triton-tls-server-name", "localhost") as gateway:
            async with tritone.AsyncClient(gateway.target, retries=0, timeout=60) as client:
                result = await client.classify(tone(FREQS[1], 0.5, 16000), sample_rate=16000)
                assert result.labels[0].label == LABELS[1]
    except GatewayStartError as exc:
        pytest.fail(str(exc))


async def test_a_wrong_ca_or_plaintext_never_reaches_it(tls_triton: tuple[str, Path]) -> None:
    url, _ = tls_triton
    async with TritonBackend([url], tls=TritonTls(CA.pem, "localhost")) as trusting:
        assert await trusting.endpoint_health(timeout_s=5) == {url: True}
    async with TritonBackend([url], tls=TritonTls(WRONG_CA.pem, "localhost")) as wrong:
        assert await wrong.endpoint_health(timeout_s=2) == {url: False}
    async with TritonBackend([url]) as plaintext:
        assert await plaintext.endpoint_health(timeout_s=2) == {url: False}
