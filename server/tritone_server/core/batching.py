"""Merging concurrent requests of many streams into one Triton request.

Each live stream completes a window every hop; a thousand streams would make thousands of
tiny Triton requests a second, and on Triton's python backend the cost per request, not
per window, dominates. Requests for the same model, outputs and per-row input shapes that
arrive within ``max_delay_s`` of each other are concatenated along the batch dimension
(every tensor is batch-first, recurrent states included, so windows of different streams
batch as they are), sent once, and the rows handed back to each caller.

Only equal shapes are merged, so whole-clip models never see zero-padded neighbours.

While Triton is busy (this batcher has as many requests of the model in flight as there
are endpoints to run them), a queue whose delay is over is held a little longer, up to
``busy_hold_s``, and sent as soon as one of those requests comes back: a request sent then
would only wait in Triton's queue, so holding it costs no latency and lets more windows
join it. Triton's own dynamic batcher cannot do this for the gateway: it sees one request
where the gateway saw many callers, and merges only what is queued when an instance frees.

A merged request belongs to no single caller: it runs as a task of its own (callers that
give up do not cancel it, their rows are simply not handed back), under the timeout the
``send`` function carries (the gateway's, not a caller's); and if Triton refuses it for a
reason other than being unavailable, each caller's rows are tried alone, so one bad request
fails only its caller.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from tritone_server.core.scoring import FloatArray
from tritone_server.errors import BackendUnavailable

Outputs = dict[str, FloatArray]
Send = Callable[[Mapping[str, FloatArray]], Awaitable[Outputs]]
_Key = tuple[str, tuple[str, ...], tuple[tuple[str, tuple[int, ...]], ...]]


@dataclass
class _Request:
    inputs: Mapping[str, FloatArray]
    rows: int
    future: asyncio.Future[Outputs]


@dataclass
class _Queue:
    model: str
    send: Send
    limit: int
    requests: list[_Request] = field(default_factory=list)
    rows: int = 0
    timer: asyncio.TimerHandle | None = None
    held_since: float | None = None
    """When the delay ran out while Triton was busy (loop time); None: not held."""


class MicroBatcher:
    """Use one per gateway; ``submit`` returns what a direct request would have."""

    def __init__(
        self,
        *,
        max_delay_s: float = 0.002,
        busy_hold_s: float = 0.0,
        capacity: Callable[[], int] = lambda: 1,
    ) -> None:
        """``capacity``: how many requests of one model Triton runs at once (its ready
        endpoints); ``busy_hold_s``: the longest a queue is held beyond ``max_delay_s``
        while that many are in flight (0: never held)."""
        self.max_delay_s = max_delay_s
        self.busy_hold_s = busy_hold_s
        self._capacity = capacity
        self._queues: dict[_Key, _Queue] = {}
        self._flushes: set[asyncio.Task[None]] = set()
        self._in_flight: dict[str, int] = {}
        self.requests_sent = 0
        self.requests_held = 0

    async def submit(
        self,
        model: str,
        inputs: Mapping[str, FloatArray],
        outputs: Sequence[str],
        *,
        max_batch: int,
        send: Send,
    ) -> Outputs:
        rows = int(next(iter(inputs.values())).shape[0])
        if rows >= max_batch or self.max_delay_s <= 0:
            self.requests_sent += 1
            return await send(inputs)
        key: _Key = (
            model,
            tuple(outputs),
            tuple(sorted((name, tuple(a.shape[1:])) for name, a in inputs.items())),
        )
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _Queue(model, send, max_batch)
        if queue.rows + rows > queue.limit:
            self._flush(key)
            queue = self._queues[key] = _Queue(model, send, max_batch)
        future: asyncio.Future[Outputs] = asyncio.get_running_loop().create_future()
        queue.requests.append(_Request(inputs, rows, future))
        queue.rows += rows
        if queue.rows >= queue.limit:
            self._flush(key)
        elif queue.timer is None:
            queue.timer = asyncio.get_running_loop().call_later(
                self.max_delay_s, self._delay_over, key
            )
        return await future

    def _busy(self, model: str) -> bool:
        return self._in_flight.get(model, 0) >= max(1, self._capacity())

    def _delay_over(self, key: _Key) -> None:
        queue = self._queues.get(key)
        if queue is None:
            return
        queue.timer = None
        if self.busy_hold_s <= 0 or not self._busy(key[0]):
            self._flush(key)
            return
        # Held: sent when a request of this model comes back, or when the hold runs out.
        self.requests_held += 1
        queue.held_since = asyncio.get_running_loop().time()
        queue.timer = asyncio.get_running_loop().call_later(self.busy_hold_s, self._flush, key)

    def _release_held(self, model: str) -> None:
        for key in [
            k for k, q in self._queues.items() if k[0] == model and q.held_since is not None
        ]:
            self._flush(key)

    def _flush(self, key: _Key) -> None:
        queue = self._queues.pop(key, None)
        if queue is None:
            return
        if queue.timer is not None:
            queue.timer.cancel()
        task = asyncio.create_task(self._send(queue))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _send(self, queue: _Queue) -> None:
        live = [r for r in queue.requests if not r.future.done()]  # callers that gave up
        if not live:
            return
        if len(live) == 1:  # nothing to merge: no copy
            merged = live[0].inputs
        else:
            names = list(live[0].inputs)
            merged = {n: np.concatenate([r.inputs[n] for r in live], axis=0) for n in names}
        self.requests_sent += 1
        self._in_flight[queue.model] = self._in_flight.get(queue.model, 0) + 1
        try:
            result = await queue.send(merged)
        except BackendUnavailable as exc:  # Triton's state: every caller has the same fate
            for r in live:
                if not r.future.done():
                    r.future.set_exception(exc)
            return
        except Exception as exc:
            if len(live) == 1:
                if not live[0].future.done():
                    live[0].future.set_exception(exc)
                return
            # Which caller's rows were wrong is not known: try each alone.
            await asyncio.gather(*(self._send_alone(queue.send, r) for r in live))
            return
        finally:
            self._in_flight[queue.model] -= 1
            self._release_held(queue.model)
        start = 0
        for r in live:
            if not r.future.done():
                r.future.set_result({n: a[start : start + r.rows] for n, a in result.items()})
            start += r.rows

    async def _send_alone(self, send: Send, request: _Request) -> None:
        if request.future.done():
            return
        self.requests_sent += 1
        try:
            result = await send(request.inputs)
        except Exception as exc:
            if not request.future.done():
                request.future.set_exception(exc)
            return
        if not request.future.done():
            request.future.set_result(result)

    async def close(self) -> None:
        """Send what is queued and wait for requests in flight."""
        for key in list(self._queues):
            self._flush(key)
        if self._flushes:
            with contextlib.suppress(Exception):
                await asyncio.gather(*self._flushes, return_exceptions=True)
