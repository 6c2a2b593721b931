"""The bounded hand-over between a stream's reader (the wire) and its classifier.

Bounded in bytes as well as in messages, so memory per stream stays bounded whatever the
messages hold: when it is full the reader stops reading and HTTP/2 flow control holds the
client back. ``stop()`` (shutdown) lets the classifier take what is already queued and then
see `STOPPED`, so a stream cut by shutdown still gets its summary.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Final

__all__ = ["END", "STOPPED", "ChunkQueue"]

END: Final = object()
"""The client half-closed the stream."""
STOPPED: Final = object()
"""The gateway is shutting down: finish the stream with what was queued."""


class ChunkQueue:
    """FIFO of (queued_at, item) with a byte budget; one producer, one consumer, one loop."""

    def __init__(self, *, max_bytes: int, max_items: int) -> None:
        self.max_bytes = max_bytes
        self.max_items = max_items
        self.bytes = 0
        self._items: collections.deque[tuple[float, object, int]] = collections.deque()
        self._changed = asyncio.Event()
        self._stopped = False

    def __len__(self) -> int:
        return len(self._items)

    def _room_for(self, size: int) -> bool:
        if not self._items:
            return True  # one chunk always fits, or a chunk above the budget would wedge
        return self.bytes + size <= self.max_bytes and len(self._items) < self.max_items

    async def _wait(self) -> None:
        self._changed.clear()
        await self._changed.wait()

    async def put(self, item: object, size: int = 0) -> None:
        """Queue ``item`` (``size`` audio bytes), waiting while the budget is spent."""
        while not self._room_for(size) and not self._stopped:
            await self._wait()
        self._items.append((time.perf_counter(), item, size))
        self.bytes += size
        self._changed.set()

    def put_now(self, item: object) -> None:
        """Queue a marker or an error without waiting (it carries no audio)."""
        self._items.append((time.perf_counter(), item, 0))
        self._changed.set()

    async def get(self) -> tuple[float, object]:
        """The next item; `STOPPED` once stopped and empty."""
        while not self._items:
            if self._stopped:
                return time.perf_counter(), STOPPED
            await self._wait()
        queued_at, item, size = self._items.popleft()
        self.bytes -= size
        self._changed.set()
        return queued_at, item

    @property
    def stopped(self) -> bool:
        return self._stopped

    def stop(self) -> None:
        self._stopped = True
        self._changed.set()
