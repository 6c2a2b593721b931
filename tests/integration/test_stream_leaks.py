"""1,000 streams cancelled or timed out mid-way leave nothing behind in the gateway.

Read from the gateway's own /metrics: open streams, asyncio tasks on its event loop and
its resident memory (process_resident_memory_bytes), against a baseline taken after a
warm-up round. No timing is asserted; the memory margin is generous (allocator pools and
gRPC buffers grow in steps), a leak of a few KB per stream would still exceed it.
"""

from __future__ import annotations

import asyncio

import pytest

import tritone
from support.faults import RATE, http_get, metric
from support.gateway import RunningGateway
from support.tones import FREQS, to_s16le, tone
from support.waiting import wait_for

pytestmark = pytest.mark.integration

STREAMS = 1000
WAVE = 100
RSS_MARGIN_BYTES = 48 * 1024 * 1024
TASK_MARGIN = 3


async def one_stream(client: tritone.AsyncClient, index: int) -> None:
    """Send some audio, then give up: cancel (even), or let a short deadline pass (odd)."""
    audio = to_s16le(tone(FREQS[index % 8], 0.2, RATE))
    timeout = None if index % 2 == 0 else 0.5
    stream = client.stream_classify(sample_rate=RATE, model="tones", timeout=timeout or 60)
    try:
        async with stream:
            await stream.send(audio)
            await stream.send(audio)
            if timeout is None:
                await asyncio.sleep(0.1)  # the behaviour: the caller gives up mid-stream
                stream.cancel()
            async for _ in stream:
                pass
    except (tritone.CallCancelledError, tritone.DeadlineExceededError):
        return
    except tritone.UsageError:
        return  # send() after the deadline ended the call


async def settled(
    gateway: RunningGateway, tasks_at_most: float | None = None
) -> tuple[float, float, float]:
    """(open streams, event-loop tasks, RSS) once no stream is open any more and the
    handlers' last callbacks have run: the task count is at most ``tasks_at_most``, or
    (for a baseline) has stopped falling. AssertionError if that takes over a minute."""
    readings: list[tuple[float, float, float]] = []

    async def quiet() -> bool:
        _, text = await asyncio.to_thread(http_get, gateway.http_url + "/metrics")
        readings.append(
            (
                metric(text, "tritone_open_streams"),
                metric(text, "tritone_event_loop_tasks"),
                metric(text, "process_resident_memory_bytes"),
            )
        )
        open_streams, tasks, _ = readings[-1]
        if open_streams != 0:
            return False
        if tasks_at_most is not None:
            return tasks <= tasks_at_most
        return len(readings) > 1 and readings[-2][0] == 0 and tasks >= readings[-2][1]

    await wait_for(quiet, 60, poll_s=0.2, what="no stream open and the task count settled")
    return readings[-1]


async def test_cancelled_and_timed_out_streams_leave_nothing_behind(
    gateway: RunningGateway, client: tritone.AsyncClient
) -> None:
    await asyncio.gather(*(one_stream(client, i) for i in range(WAVE)))  # warm-up
    _, tasks_before, rss_before = await settled(gateway)
    for start in range(0, STREAMS, WAVE):
        await asyncio.gather(*(one_stream(client, i) for i in range(start, start + WAVE)))
    open_after, tasks_after, rss_after = await settled(gateway, tasks_before + TASK_MARGIN)
    print(
        f"\n{STREAMS} streams: tasks {tasks_before:.0f} -> {tasks_after:.0f}, "
        f"RSS {rss_before / 2**20:.1f} -> {rss_after / 2**20:.1f} MiB"
    )
    assert open_after == 0
    assert tasks_after <= tasks_before + TASK_MARGIN
    assert rss_after - rss_before < RSS_MARGIN_BYTES
