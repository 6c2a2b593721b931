"""Callers without a token cannot make the gateway hold their messages.

16 connections at once, each sending the largest Classify message the gateway accepts by
default and no token: every call ends UNAUTHENTICATED, and the gateway's peak resident set
plus its decode workers stay under the memory limit of the gateway container in the rendered
manifests. A caller with a token sending more than the limit gets RESOURCE_EXHAUSTED with a
sentence that points to StreamClassify. (The measured figures: benchmarks/
unauthenticated_memory.py, in benchmarks/results.md.)
"""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

import tritone
from support.gateway import REPO, GatewayStartError, RunningGateway, start_gateway
from support.k8s import gateway_memory_limit
from support.unauthenticated_flood import MIB, flood, gateway_memory
from tritone_server.settings import Settings
from tritone_server.triton.local import LocalTriton

pytestmark = pytest.mark.integration

CONNECTIONS = 16
TOKEN = "caller-0b7d1e55"
LARGEST = Settings().max_message_bytes


async def test_unauthenticated_callers_cannot_fill_the_gateway(tmp_path: Path) -> None:
    limit = gateway_memory_limit("overlays/gpu")
    repository = tmp_path / "repository"
    repository.mkdir()
    (repository / "tones").symlink_to(REPO / "model_repository" / "tones")
    (tmp_path / "tokens").write_text(f"{TOKEN}\n")
    async with LocalTriton(repository) as triton:
        flags = ("--triton-url", triton.grpc_url, "--token-file", str(tmp_path / "tokens"))
        try:
            with start_gateway(*flags, "--default-model", "tones") as gateway:
                codes = await flood(gateway.target, LARGEST, CONNECTIONS)
                memory = gateway_memory(gateway.process.pid)
                await too_large_with_a_token(gateway)
        except GatewayStartError as exc:
            pytest.fail(str(exc))
    assert codes == [grpc.StatusCode.UNAUTHENTICATED] * CONNECTIONS
    print(
        f"\n{CONNECTIONS} x {LARGEST / MIB:g} MiB without a token: gateway peak RSS "
        f"{memory.peak_rss_bytes / MIB:.0f} MiB, decode workers "
        f"{memory.workers_rss_bytes / MIB:.0f} MiB, limit {limit / MIB:.0f} MiB"
    )
    assert memory.container_peak_bytes < limit


async def too_large_with_a_token(gateway: RunningGateway) -> None:
    """One byte over the limit: refused by gRPC, and the SDK's sentence says what to do."""
    async with tritone.AsyncClient(gateway.target, token=TOKEN, retries=0, timeout=60) as client:
        with pytest.raises(tritone.ResourceExhaustedError, match="stream_classify"):
            await client.classify(bytes(LARGEST + 1), model="tones")
