"""A stream's whole life, below every front end: admission, handshake, queue, reader,
watchdog, progress, shutdown.

A front end hands `StreamSessions.session()` its messages as they come off the wire and
two translations: ``handshake`` turns the first message into a `StreamRequest` (what to run
on which audio), ``audio_of`` takes the audio bytes out of every later one. It gets the
stream's events back and translates them; on failure it asks `StreamSession.counts` where
the caller can resume from. Nothing here knows about gRPC.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Generic, Protocol, TypeVar

from tritone_server.audio.formats import PcmFormat
from tritone_server.core.limits import Admission, StreamLimits
from tritone_server.core.models import ModelSpec
from tritone_server.core.stream_queue import END, STOPPED, ChunkQueue
from tritone_server.core.stream_request import StreamRequest
from tritone_server.core.stream_watchdog import StreamWatchdog
from tritone_server.core.streams import StreamEvent
from tritone_server.errors import BackendUnavailable
from tritone_server.metrics import Metrics

__all__ = ["OpenStream", "StreamRequest", "StreamSession", "StreamSessions"]

M = TypeVar("M")


class OpenStream(Protocol):
    """A stream as a session drives it: one model (`LiveStream`) or several (`ModelFanout`)."""

    @property
    def spec(self) -> ModelSpec: ...

    @property
    def bytes_received(self) -> int: ...

    @property
    def frames_consumed(self) -> int: ...

    async def feed(self, data: bytes) -> list[StreamEvent]: ...

    async def finish(self) -> list[StreamEvent]: ...


class StreamPlane(Protocol):
    """What a session needs of the DataPlane (which owns the sessions)."""

    @property
    def metrics(self) -> Metrics: ...

    def open_stream_request(self, request: StreamRequest) -> OpenStream: ...

    async def finish_stream(self, stream: OpenStream) -> list[StreamEvent]: ...

    def close_stream(self, stream: OpenStream) -> None: ...


class StreamSessions:
    """The live streams of one gateway: how many may run, and shutdown for all of them."""

    def __init__(self, dataplane: StreamPlane, limits: StreamLimits, max_streams: int) -> None:
        self.dataplane = dataplane
        self.limits = limits
        self.admission = Admission(max_streams, what="streams", setting="max_streams")
        self._live: set[ChunkQueue] = set()
        self._none_live = asyncio.Event()
        self._none_live.set()
        self.shutting_down = False

    def refuse_if_shutting_down(self) -> None:
        if self.shutting_down:
            raise BackendUnavailable("the gateway is shutting down; retry on another replica")

    def begin_shutdown(self) -> int:
        """Have every live stream classify what it has queued, send its summary and end;
        new streams are refused. Returns how many streams were told."""
        self.shutting_down = True
        for queue in self._live:
            queue.stop()
        return len(self._live)

    async def wait_ended(self, timeout_s: float) -> bool:
        """Wait, at most ``timeout_s``, until no stream is live; whether none is."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._none_live.wait()
        return self._none_live.is_set()

    def session(
        self,
        messages: AsyncIterator[M],
        handshake: Callable[[M | None], StreamRequest],
        audio_of: Callable[[M], bytes],
    ) -> StreamSession[M]:
        return StreamSession(self, messages, handshake, audio_of)

    def _register(self, queue: ChunkQueue) -> None:
        self._live.add(queue)
        self._none_live.clear()
        if self.shutting_down:
            queue.stop()

    def _unregister(self, queue: ChunkQueue) -> None:
        self._live.discard(queue)
        if not self._live:
            self._none_live.set()


class StreamSession(Generic[M]):
    """One stream: iterate `events()` once; `counts()` says where it stands at any time."""

    def __init__(
        self,
        sessions: StreamSessions,
        messages: AsyncIterator[M],
        handshake: Callable[[M | None], StreamRequest],
        audio_of: Callable[[M], bytes],
    ) -> None:
        self._sessions = sessions
        self._messages = messages
        self._handshake = handshake
        self._audio_of = audio_of
        self._stream: OpenStream | None = None
        self._queue: ChunkQueue | None = None
        self._format: PcmFormat | None = None

    def counts(self) -> tuple[int, int]:
        """Frames received (audio still queued was received too, though never classified)
        and frames whose audio was fully classified: a resume point."""
        stream, queue, fmt = self._stream, self._queue, self._format
        if stream is None or queue is None or fmt is None:
            return 0, 0
        received = (stream.bytes_received + queue.bytes) // fmt.frame_bytes
        return received, stream.frames_consumed

    async def events(self) -> AsyncIterator[StreamEvent]:
        sessions = self._sessions
        sessions.refuse_if_shutting_down()
        with sessions.admission.enter():
            async for event in self._run():
                yield event

    async def _run(self) -> AsyncIterator[StreamEvent]:
        sessions = self._sessions
        limits, dataplane = sessions.limits, sessions.dataplane
        deadline = time.monotonic() + limits.max_stream_s
        # asyncio.timeout, never asyncio.wait_for: before Python 3.12 wait_for returns the
        # result and swallows a cancellation that lands as the message arrives.
        try:
            async with asyncio.timeout(limits.config_timeout_s):
                first = await anext(self._messages, None)
        except TimeoutError:
            raise limits.config_error() from None
        request = self._handshake(first)
        stream = dataplane.open_stream_request(request)
        self._format = request.format
        self._stream = stream
        queue = ChunkQueue(max_bytes=limits.max_queued_bytes, max_items=limits.max_queued_chunks)
        self._queue = queue
        reader = asyncio.create_task(
            _read_audio(self._messages, self._audio_of, queue, limits, deadline)
        )
        sessions._register(queue)
        try:
            queue_stage = dataplane.metrics.stage_histogram("queue", stream.spec.name)
            while True:
                queued_at, item = await queue.get()
                queue_stage.observe(time.perf_counter() - queued_at)
                if item is STOPPED:
                    reader.cancel()
                    break
                if item is END:
                    break
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, bytes)
                for event in await stream.feed(item):
                    yield event
            for event in await dataplane.finish_stream(stream):
                yield event
        finally:
            sessions._unregister(queue)
            dataplane.close_stream(stream)
            queue.stop()  # a reader waiting for room returns even if its cancel went astray
            reader.cancel()
            # asyncio.wait, not `await reader`: our own cancellation must not be swallowed.
            await asyncio.wait({reader})
            if not reader.cancelled():
                reader.exception()  # retrieved, so asyncio does not log it


async def _read_audio(
    messages: AsyncIterator[M],
    audio_of: Callable[[M], bytes],
    queue: ChunkQueue,
    limits: StreamLimits,
    deadline: float,
) -> None:
    """Move audio from the wire to the bounded queue; a full queue holds the client back.

    Waits for each message at most the idle limit (and never past the stream's deadline);
    the wait while the queue is full does not count, it is not the client's doing. One
    watchdog timer per stream enforces both (a timeout per message costs a task each).
    """
    task = asyncio.current_task()
    assert task is not None
    watchdog = StreamWatchdog(task, limits, deadline)
    try:
        with watchdog:
            if time.monotonic() >= deadline:
                raise limits.duration_error()
            async for message in messages:
                watchdog.last = time.monotonic()
                audio = audio_of(message)
                if audio:
                    size = len(audio)
                    limits.check_chunk(size)
                    if queue.has_room(size):
                        queue.put_nowait(audio, size)
                    else:
                        watchdog.paused = True
                        await queue.put(audio, size)
                        watchdog.paused = False
                        watchdog.last = time.monotonic()
                    if queue.stopped:
                        return  # the classifier is done (shutdown, failure): read no more
    except asyncio.CancelledError:
        if watchdog.error is None:
            raise
        task.uncancel()
        queue.put_now(watchdog.error)
        return
    except Exception as exc:
        queue.put_now(exc)
        return
    queue.put_now(END)
