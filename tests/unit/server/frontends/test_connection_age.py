"""max_connection_age: callers' connections are aged out (so round_robin clients re-resolve
and reach gateways added since), while calls in flight, streams included, go on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

import tritone
from support.inprocess import RATE, FakeTriton, gateway_settings, in_process_gateway, levels
from tritone_server.app import Gateway

AGE_S = 0.5


@pytest.fixture(scope="module")
async def aging_gateway() -> AsyncIterator[Gateway]:
    settings = gateway_settings(max_connection_age_s=AGE_S)
    async with in_process_gateway(FakeTriton(), settings) as running:
        yield running


async def test_an_idle_connection_is_aged_out(aging_gateway: Gateway) -> None:
    target = f"127.0.0.1:{aging_gateway.grpc_port}"
    async with grpc.aio.insecure_channel(target) as channel:
        await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert channel.get_state() is grpc.ChannelConnectivity.READY
        # GOAWAY at the age: the channel leaves READY and reconnects (re-resolving) on the
        # next call; the wait is bounded only so that a regression fails instead of hanging
        await asyncio.wait_for(channel.wait_for_state_change(grpc.ChannelConnectivity.READY), 30)
        await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())


async def test_a_stream_outlives_its_connections_age(aging_gateway: Gateway) -> None:
    target = f"127.0.0.1:{aging_gateway.grpc_port}"
    chunk = levels((0.2, 0.1)).astype("<f4").tobytes()
    async with (
        tritone.AsyncClient(target, retries=0) as client,
        client.stream_classify(sample_rate=RATE, encoding=tritone.PcmEncoding.F32LE) as stream,
    ):
        sent = 0
        for _ in range(8):  # 4 ages long
            await stream.send(chunk)
            sent += len(chunk) // 4
            await asyncio.sleep(AGE_S / 2)  # the behaviour: the stream lives past the age
        await stream.end()
        events = [event async for event in stream]
    summary = events[-1]
    assert isinstance(summary, tritone.StreamSummary)
    assert summary.frames_received == sent
    assert np.isclose(summary.duration_s, sent / RATE)
