"""The idle and duration limits of one stream's reader, as one lazily re-armed timer.

A timeout around every message read (``asyncio.wait_for``) costs a task, a timer and a
callback per message, which is a large share of the gateway's CPU per 100 ms chunk when
hundreds of streams run. The reader instead stamps the time of each message (`seen`, one
clock read), and one timer per stream wakes when the idle limit could first have passed: if
a message came since, it sleeps again until the new due time; if none came, or the stream's
deadline is reached, it records the error and cancels the reader, which reports it.

While the reader waits for room in a full queue (`paused`) the idle clock does not run: the
wait is the gateway's doing, not the client's. The deadline runs regardless.
"""

from __future__ import annotations

import asyncio
import time

from tritone_server.core.limits import StreamLimits
from tritone_server.errors import LimitExceeded

__all__ = ["StreamWatchdog"]


class StreamWatchdog:
    """Cancels ``task`` with `error` set when the stream idles or outlives ``deadline``
    (a `time.monotonic` instant). Use as a context manager around the reader's loop."""

    __slots__ = ("_deadline", "_handle", "_idle_s", "_limits", "_task", "error", "last", "paused")

    def __init__(self, task: asyncio.Task[None], limits: StreamLimits, deadline: float) -> None:
        self._task = task
        self._limits = limits
        self._idle_s = limits.stream_idle_s
        self._deadline = deadline
        self._handle: asyncio.TimerHandle | None = None
        self.error: LimitExceeded | None = None
        self.last = time.monotonic()
        """When the last message arrived; the reader sets it."""
        self.paused = False
        """True while the reader waits for room in the queue."""

    def __enter__(self) -> StreamWatchdog:
        self._arm(time.monotonic())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def seen(self) -> None:
        """A message arrived now."""
        self.last = time.monotonic()

    def _arm(self, now: float) -> None:
        due = min((now if self.paused else self.last) + self._idle_s, self._deadline)
        self._handle = asyncio.get_running_loop().call_later(max(due - now, 0.0), self._check)

    def _check(self) -> None:
        self._handle = None
        now = time.monotonic()
        if now >= self._deadline:
            self._expire(self._limits.duration_error())
        elif not self.paused and now >= self.last + self._idle_s:
            self._expire(self._limits.idle_error())
        else:
            self._arm(now)

    def _expire(self, error: LimitExceeded) -> None:
        self.error = error
        self._task.cancel()
