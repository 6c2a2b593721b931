"""``--triton-url``: the gateway in front of a Triton it did not start, and losing it."""

from __future__ import annotations

from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

import tritone
from support.gateway import start_gateway, tones_repository
from support.tones import FREQS, LABELS, tone
from support.waiting import wait_for
from tritone.errors import StatusCode
from tritone_server.triton.local import LocalTriton


async def health(target: str, service: str = "") -> int:
    async with grpc.aio.insecure_channel(target) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5
        )
        return int(reply.status)


async def test_gateway_serves_an_existing_triton_and_reports_losing_it(tmp_path: Path) -> None:
    triton = LocalTriton(tones_repository(tmp_path / "models"))  # tones: the model used here
    endpoints = await triton.__aenter__()
    try:
        with start_gateway(
            "--triton-url", endpoints.grpc_url, "--default-model", "tones"
        ) as gateway:
            async with tritone.AsyncClient(gateway.target, retries=0) as client:
                audio = tone(FREQS[7], 0.5, 16000)
                result = await client.classify(audio, sample_rate=16000, model="tones")
                assert result.labels[0].label == LABELS[7]

                await triton.__aexit__(None, None, None)
                serving = health_pb2.HealthCheckResponse.SERVING

                async def not_serving() -> bool:
                    return bool(await health(gateway.target) != serving)

                await wait_for(not_serving, 30, poll_s=0.1, what="health NOT_SERVING")
                # Liveness (and startup) probes ask "liveness": Triton being down must not
                # get the gateway restarted.
                assert await health(gateway.target, "liveness") == serving
                try:
                    await client.classify(audio, sample_rate=16000, model="tones", timeout=20)
                except tritone.UnavailableError as exc:
                    assert exc.code is StatusCode.UNAVAILABLE
                else:
                    raise AssertionError("classify must fail with UNAVAILABLE without Triton")
                assert gateway.process.poll() is None, "the gateway must keep running"
    finally:
        await triton.__aexit__(None, None, None)
