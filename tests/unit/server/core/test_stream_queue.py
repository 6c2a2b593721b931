"""ChunkQueue: bounded in bytes and messages; stop() lets the consumer drain, then STOPPED."""

from __future__ import annotations

import asyncio

from support.waiting import settle
from tritone_server.core.stream_queue import END, STOPPED, ChunkQueue


async def test_the_producer_waits_while_the_byte_budget_is_spent() -> None:
    queue = ChunkQueue(max_bytes=100, max_items=10)
    await queue.put(b"a" * 60, 60)
    blocked = asyncio.create_task(queue.put(b"b" * 60, 60))
    await settle()  # it has run as far as it can: to the wait for room
    assert not blocked.done() and queue.bytes == 60
    _, first = await queue.get()
    assert first == b"a" * 60
    await asyncio.wait_for(blocked, 1.0)
    assert queue.bytes == 60


async def test_the_producer_waits_while_the_message_budget_is_spent() -> None:
    queue = ChunkQueue(max_bytes=1000, max_items=2)
    await queue.put(b"1", 1)
    await queue.put(b"2", 1)
    blocked = asyncio.create_task(queue.put(b"3", 1))
    await settle()  # it has run as far as it can: to the wait for room
    assert not blocked.done() and len(queue) == 2
    await queue.get()
    await asyncio.wait_for(blocked, 1.0)


async def test_one_chunk_larger_than_the_budget_still_passes_alone() -> None:
    queue = ChunkQueue(max_bytes=10, max_items=4)
    await asyncio.wait_for(queue.put(b"x" * 50, 50), 1.0)
    assert (await queue.get())[1] == b"x" * 50


async def test_stop_hands_over_what_is_queued_then_stopped() -> None:
    queue = ChunkQueue(max_bytes=100, max_items=10)
    await queue.put(b"a", 1)
    queue.put_now(END)
    queue.stop()
    assert (await queue.get())[1] == b"a"
    assert (await queue.get())[1] is END
    assert (await queue.get())[1] is STOPPED


async def test_stop_wakes_a_waiting_consumer() -> None:
    queue = ChunkQueue(max_bytes=100, max_items=10)
    waiting = asyncio.create_task(queue.get())
    await settle()
    assert not waiting.done()
    queue.stop()
    assert (await asyncio.wait_for(waiting, 1.0))[1] is STOPPED
