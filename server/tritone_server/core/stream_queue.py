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
    """FIFO of (queued_at, item) with a byte budget; one producer, one consumer, one loop.

    Each side that has to wait parks one future, and the other side resolves it only when
    it is there: a chunk that finds room and a consumer that finds a chunk cost no wake-up.
    """

    def __init__(self, *, max_bytes: int, max_items: int) -> None:
        self.max_bytes = max_bytes
        self.max_items = max_items
        self.bytes = 0
        self._items: collections.deque[tuple[float, object, int]] = collections.deque()
        self._getter: asyncio.Future[None] | None = None
        self._putter: asyncio.Future[None] | None = None
        self._stopped = False

    def __len__(self) -> int:
        return len(self._items)

    def has_room(self, size: int) -> bool:
        """Whether `put` of ``size`` bytes would not wait."""
        if not self._items or self._stopped:
            return True  # one chunk always fits, or a chunk above the budget would wedge
        return self.bytes + size <= self.max_bytes and len(self._items) < self.max_items

    @staticmethod
    def _wake(waiter: asyncio.Future[None] | None) -> None:
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def put(self, item: object, size: int = 0) -> None:
        """Queue ``item`` (``size`` audio bytes), waiting while the budget is spent."""
        while not self.has_room(size):
            self._putter = asyncio.get_running_loop().create_future()
            try:
                await self._putter
            finally:
                self._putter = None
        self.put_nowait(item, size)

    def put_nowait(self, item: object, size: int = 0) -> None:
        """Queue ``item`` without waiting, whatever the budget (`has_room` said there is)."""
        self._items.append((time.perf_counter(), item, size))
        self.bytes += size
        self._wake(self._getter)

    def put_now(self, item: object) -> None:
        """Queue a marker or an error without waiting (it carries no audio)."""
        self.put_nowait(item, 0)

    async def get(self) -> tuple[float, object]:
        """The next item; `STOPPED` once stopped and empty."""
        while not self._items:
            if self._stopped:
                return time.perf_counter(), STOPPED
            self._getter = asyncio.get_running_loop().create_future()
            try:
                await self._getter
            finally:
                self._getter = None
        queued_at, item, size = self._items.popleft()
        self.bytes -= size
        self._wake(self._putter)
        return queued_at, item

    @property
    def stopped(self) -> bool:
        return self._stopped

    def stop(self) -> None:
        self._stopped = True
        self._wake(self._getter)
        self._wake(self._putter)
