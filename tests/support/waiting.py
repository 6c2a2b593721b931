"""Wait on a condition with a deadline, instead of sleeping and hoping it has happened.

A fixed sleep is either too short on a loaded machine (a flaky test) or too long everywhere
(a slow one). These helpers return as soon as the condition holds and fail with the
condition's description once the deadline has passed, so a test waits only as long as the
event takes and says what never happened.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

DEADLINE_S = 30.0
"""Generous for a loaded 2-core machine: a deadline, not a timing assertion."""
POLL_S = 0.01


async def wait_for(
    predicate: Callable[[], bool | Awaitable[bool]],
    limit_s: float = DEADLINE_S,
    *,
    poll_s: float = POLL_S,
    what: str = "",
) -> float:
    """Poll ``predicate`` (plain or async) until it is true; the seconds that took.

    AssertionError naming ``what`` (or the predicate) once ``limit_s`` have passed.
    """
    started = time.monotonic()
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return time.monotonic() - started
        elapsed = time.monotonic() - started
        assert elapsed < limit_s, f"not true after {elapsed:.1f} s: {what or predicate}"
        await asyncio.sleep(poll_s)


async def settle(rounds: int = 20) -> None:
    """Let every ready task run ``rounds`` loop iterations (no wall-clock time involved).

    For "X has not happened" checks: whatever a ready task would do without an outside
    event it does within a few iterations, so what has not happened after these rounds is
    waiting on something, not on the clock.
    """
    for _ in range(rounds):
        await asyncio.sleep(0)
