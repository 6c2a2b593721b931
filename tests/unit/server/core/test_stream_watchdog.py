"""StreamWatchdog: one timer per stream ends a reader that idles or outlives its deadline."""

from __future__ import annotations

import asyncio
import time

import pytest

from tritone_server.core.limits import StreamLimits
from tritone_server.core.stream_watchdog import StreamWatchdog


async def _guarded(limits: StreamLimits, deadline: float, body: object) -> StreamWatchdog:
    """Run ``body(watchdog)`` as a reader under a watchdog; the watchdog once it ended."""
    holder: list[StreamWatchdog] = []

    async def reader() -> None:
        task = asyncio.current_task()
        assert task is not None
        with StreamWatchdog(task, limits, deadline) as watchdog:
            holder.append(watchdog)
            await body(watchdog)  # type: ignore[operator]

    task = asyncio.create_task(reader())
    await asyncio.wait({task}, timeout=5.0)
    assert task.done(), "the reader was neither ended nor finished"
    return holder[0]


async def test_a_reader_that_gets_no_message_is_cancelled_with_the_idle_error() -> None:
    limits = StreamLimits(stream_idle_s=0.05)

    async def silent(watchdog: StreamWatchdog) -> None:
        await asyncio.Event().wait()

    watchdog = await _guarded(limits, time.monotonic() + 60, silent)
    assert watchdog.error is not None and watchdog.error.limit == "stream_idle"


async def test_messages_within_the_idle_limit_keep_the_reader_going() -> None:
    limits = StreamLimits(stream_idle_s=0.1)

    async def talkative(watchdog: StreamWatchdog) -> None:
        for _ in range(15):  # 0.3 s in all, three idle limits, never 0.1 s without a message
            await asyncio.sleep(0.02)  # the behaviour: messages paced in wall-clock time
            watchdog.seen()

    watchdog = await _guarded(limits, time.monotonic() + 60, talkative)
    assert watchdog.error is None


async def test_waiting_for_room_in_the_queue_does_not_count_as_idle() -> None:
    limits = StreamLimits(stream_idle_s=0.05)

    async def held_back(watchdog: StreamWatchdog) -> None:
        watchdog.paused = True
        await asyncio.sleep(0.3)  # the behaviour: six idle limits pass while paused
        watchdog.paused = False
        watchdog.seen()

    watchdog = await _guarded(limits, time.monotonic() + 60, held_back)
    assert watchdog.error is None


async def test_the_deadline_ends_even_a_busy_reader_with_the_duration_error() -> None:
    limits = StreamLimits(stream_idle_s=10.0)

    async def busy(watchdog: StreamWatchdog) -> None:
        while True:
            await asyncio.sleep(0.01)  # the behaviour: a message every 10 ms, past the deadline
            watchdog.seen()

    watchdog = await _guarded(limits, time.monotonic() + 0.1, busy)
    assert watchdog.error is not None and watchdog.error.limit == "stream_duration"


async def test_leaving_the_block_disarms_the_timer() -> None:
    limits = StreamLimits(stream_idle_s=0.02)

    async def quick(watchdog: StreamWatchdog) -> None:
        return None

    watchdog = await _guarded(limits, time.monotonic() + 60, quick)
    await asyncio.sleep(0.1)  # the behaviour: five idle limits pass with no timer to fire
    assert watchdog.error is None


@pytest.mark.parametrize("limit", ["stream_idle", "stream_duration"])
async def test_the_error_names_its_setting(limit: str) -> None:
    limits = StreamLimits(stream_idle_s=0.03)
    deadline = time.monotonic() + (0.01 if limit == "stream_duration" else 60)

    async def silent(watchdog: StreamWatchdog) -> None:
        await asyncio.Event().wait()

    watchdog = await _guarded(limits, deadline, silent)
    assert watchdog.error is not None and watchdog.error.limit == limit
    setting = "max_stream_s" if limit == "stream_duration" else "stream_idle_s"
    assert setting in str(watchdog.error)
