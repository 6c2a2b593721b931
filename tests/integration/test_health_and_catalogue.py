"""Health (as grpc_health_probe asks it), reflection, the catalogue, the HTTP probes."""

from __future__ import annotations

import json
import urllib.request

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

import tritone
from support.gateway import RunningGateway
from support.tones import LABELS


async def test_health_is_serving_once_triton_is_ready(gateway: RunningGateway) -> None:
    async with grpc.aio.insecure_channel(gateway.target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "tritone.v1.AudioClassification"):
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_health_of_an_unknown_service_is_not_found(gateway: RunningGateway) -> None:
    async with grpc.aio.insecure_channel(gateway.target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            await stub.Check(health_pb2.HealthCheckRequest(service="nope"), timeout=5)
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.NOT_FOUND
        else:
            raise AssertionError("an unknown service must not be reported")


async def test_reflection_lists_the_service(gateway: RunningGateway) -> None:
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    async with grpc.aio.insecure_channel(gateway.target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        call = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        names = set()
        async for reply in call:
            names |= {s.name for s in reply.list_services_response.service}
    assert {"tritone.v1.AudioClassification", "grpc.health.v1.Health"} <= names


async def test_list_and_get_models(client: tritone.AsyncClient) -> None:
    models = await client.list_models()
    tones = next(m for m in models if m.name == "tones")
    assert tones.labels == LABELS
    assert tones.sample_rate == 16000
    assert (tones.window_samples, tones.hop_samples) == (8000, 4000)
    assert tones.activation == "softmax"
    assert tones.ready and not tones.stateful
    assert await client.get_model("tones") == tones


def _get(url: str) -> tuple[int, object]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, json.loads(response.read())


def test_http_probes(gateway: RunningGateway) -> None:
    assert _get(gateway.http_url + "/healthz") == (200, {"status": "alive"})
    assert _get(gateway.http_url + "/readyz") == (200, {"status": "ready"})
    status, models = _get(gateway.http_url + "/models")
    assert status == 200 and isinstance(models, list)
    assert any(m["name"] == "tones" for m in models)
