"""One live StreamClassify call: the `AudioStream` handle."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Callable, Coroutine, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import grpc
import grpc.aio

from tritone._audio_input import chunk_bytes
from tritone._convert import stream_event
from tritone.errors import (
    CallCancelledError,
    StatusCode,
    StreamStateError,
    error_for_status,
    from_grpc_error,
)
from tritone.types import AudioChunk, PcmEncoding, StreamEvent, StreamSummary
from tritone_protos import audio_classification_pb2 as pb

__all__ = ["AudioStream"]

ChunkSource = Iterable[AudioChunk] | AsyncIterable[AudioChunk]

_CORE_INTERNAL_DETAILS = "Internal error from Core"


def _is_masked(code: object, details: object) -> bool:
    return code == grpc.StatusCode.INTERNAL and details == _CORE_INTERNAL_DETAILS


def _result_now(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that cannot suspend; None if it would."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    return None


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """What `AsyncClient.stream_classify()` hands to a new `AudioStream` (private)."""

    open_call: Callable[[], Any]
    config: pb.StreamClassifyRequest
    encoding: PcmEncoding
    channels: int
    chunks: ChunkSource | None


class _CallFinished(Exception):
    """The call ended while the writer task was still feeding it."""


class AudioStream:
    """A live classification stream, made by `AsyncClient.stream_classify()`.

    Use it as an async context manager and send audio yourself::

        async with client.stream_classify(sample_rate=16000) as stream:
            await stream.send(chunk)          # bytes in the declared encoding, or an array
            await stream.end()                # half-close: no more audio
            async for event in stream:        # window results, detections, the summary
                ...

    or, when `stream_classify()` was given `chunks`, just iterate it: a writer task feeds
    the chunks and half-closes. Sending and reading may happen in different tasks; reads
    are serialized, so one task should iterate. Leaving the ``async with`` block before
    the summary has been read cancels the call; so does `cancel()`.

    Without ``async with``, a stream that is not iterated to its end should be closed
    with `aclose()`.
    """

    def __init__(self, spec: StreamSpec) -> None:
        self._open_call = spec.open_call
        self._config = spec.config
        self._encoding = spec.encoding
        self._channels = spec.channels
        self._chunks = spec.chunks
        self._call: Any = None
        self._entered = False
        self._ended = False
        self._finished = False
        self._closed = False
        self._cancelled = False
        self._writer: asyncio.Task[None] | None = None
        self._writer_error: BaseException | None = None
        self._first_status: tuple[Any, str] | None = None
        self._first_trailing: Any = None
        self._summary_seen = False
        self._start_lock = asyncio.Lock()
        self._write_lock = asyncio.Lock()
        self._read_lock = asyncio.Lock()

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> AudioStream:
        if self._entered or self._call is not None or self._closed:
            raise StreamStateError("a stream can be entered once, before it is used")
        self._entered = True
        await self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Cancel the call if it has not finished, and stop the writer task. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._call is not None and not self._call.done():
            self._call.cancel()
        await self._stop_writer()

    def cancel(self) -> bool:
        """Cancel the call now; the iterator then raises `CallCancelledError`.

        Returns:
            True if this cancelled a call that was still running.
        """
        self._cancelled = True
        if self._writer is not None:
            self._writer.cancel()
        if self._call is None:
            self._closed = True
            return False
        return bool(self._call.cancel())

    async def _start(self) -> None:
        async with self._start_lock:
            if self._call is not None:
                return
            if self._closed or self._cancelled:
                raise StreamStateError("the stream was closed or cancelled before it started")
            self._call = self._open_call()
            self._call.add_done_callback(self._on_done)
            try:
                await self._call.write(self._config)
            except (asyncio.InvalidStateError, grpc.aio.AioRpcError):
                # The call already failed (e.g. UNAUTHENTICATED); reads raise its status.
                return
            if self._chunks is not None:
                self._writer = asyncio.create_task(self._feed(self._chunks))

    async def _stop_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        if not writer.done():
            writer.cancel()
        try:
            await writer
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise

    # -- writing ---------------------------------------------------------------------------

    async def send(self, chunk: AudioChunk) -> None:
        """Send one chunk of audio.

        Args:
            chunk: PCM bytes in the stream's encoding (they may split frames), or a numpy
                array (1-D mono, or 2-D [frames, channels]) converted to that encoding.

        Raises:
            StreamStateError: after `end()`, `cancel()` or the end of the call, or when the
                stream is fed from `chunks`.
            InvalidArgumentError: the chunk cannot be converted.
            TritoneError: the call had already failed; this is its error.

        Example:
            >>> await stream.send(np.zeros(1600, dtype=np.float32))
        """
        if self._chunks is not None:
            raise StreamStateError("this stream is fed from `chunks`; send() is not available")
        if self._ended:
            raise StreamStateError("send() after end(): the stream is half-closed")
        if self._closed or self._cancelled:
            raise StreamStateError("send() on a stream that was closed or cancelled")
        data = chunk_bytes(chunk, self._encoding, self._channels)
        if self._call is None:
            await self._start()
        if not data:
            return
        try:
            await self._write(data)
        except _CallFinished as finished:
            raise await self._finished_error() from finished.__cause__

    async def end(self) -> None:
        """Half-close: tell the server no more audio comes. Idempotent.

        The server then classifies what is left, sends the remaining events and the summary.

        Raises:
            StreamStateError: the stream is fed from `chunks` (it ends when they do).

        Example:
            >>> await stream.end()
        """
        if self._chunks is not None:
            raise StreamStateError("this stream is fed from `chunks`; it ends when they do")
        if self._ended:
            return
        self._ended = True
        if self._closed or self._cancelled:
            return
        await self._start()
        await self._half_close()

    async def _write(self, data: bytes) -> None:
        async with self._write_lock:
            try:
                await self._call.write(pb.StreamClassifyRequest(audio=data))
            except (asyncio.InvalidStateError, grpc.aio.AioRpcError) as exc:
                raise _CallFinished from exc

    async def _half_close(self) -> None:
        # If the call already ended, the reads report how.
        async with self._write_lock:
            with contextlib.suppress(asyncio.InvalidStateError, grpc.aio.AioRpcError):
                await self._call.done_writing()

    async def _finished_error(self) -> Exception:
        if self._cancelled or self._closed:
            return StreamStateError("send() on a stream that was cancelled")
        code, details = await self._final_status()
        if code is StatusCode.OK:
            return StreamStateError("send() after the server finished the stream")
        return error_for_status(
            code, details or f"the call failed with {code.name}", await self._trailing()
        )

    async def _trailing(self) -> Any:
        if self._first_trailing:  # the server's, even when the status was masked since
            return self._first_trailing
        with contextlib.suppress(Exception):
            return await self._call.trailing_metadata()
        return None

    async def _final_status(self) -> tuple[StatusCode, str]:
        code, details = await self._call.code(), await self._call.details()
        if _is_masked(code, details) and self._first_status is not None:
            code, details = self._first_status
        name = getattr(code, "name", "UNKNOWN")
        status = StatusCode[name] if name in StatusCode.__members__ else StatusCode.UNKNOWN
        return status, details or ""

    def _on_done(self, call: Any) -> None:
        """Keep the first status the call is given.

        When a write races with the server ending the call, grpc.aio replaces the server's
        status with a local INTERNAL "Internal error from Core" (grpc/grpc#36066), so a
        caller would see INTERNAL instead of, say, NOT_FOUND. The server's status is the
        first one set; it is read here, while it is still there. Inside this callback the
        status is set, so `code()` and `details()` finish without suspending.
        """
        if self._first_status is not None:
            return
        code, details = _result_now(call.code()), _result_now(call.details())
        if code is not None:
            self._first_status = (code, details if isinstance(details, str) else "")
            # the server's trailers (the stream's frame counts) go with its status
            self._first_trailing = _result_now(call.trailing_metadata())

    async def _feed(self, chunks: ChunkSource) -> None:
        try:
            if isinstance(chunks, AsyncIterable):
                async for chunk in chunks:
                    await self._feed_one(chunk)
            else:
                for chunk in chunks:
                    await self._feed_one(chunk)
            self._ended = True
            await self._half_close()
        except _CallFinished:
            return
        except Exception as exc:
            # The caller's iterable (or a chunk) failed: stop the call and let the reader
            # raise this error instead of a bare cancellation.
            self._writer_error = exc
            self._call.cancel()

    async def _feed_one(self, chunk: AudioChunk) -> None:
        data = chunk_bytes(chunk, self._encoding, self._channels)
        if data:
            await self._write(data)

    # -- reading ---------------------------------------------------------------------------

    def events(self) -> AsyncIterator[StreamEvent]:
        """The events of the stream, as they arrive; the same as iterating the stream."""
        return self

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self

    async def __anext__(self) -> StreamEvent:
        if self._finished:
            raise StopAsyncIteration
        if self._call is None and self._closed:
            raise StreamStateError("the stream was closed or cancelled before it started")
        if self._call is None:
            await self._start()
        async with self._read_lock:
            while True:
                if self._finished:
                    raise StopAsyncIteration
                try:
                    msg = await self._call.read()
                except grpc.aio.AioRpcError as exc:
                    await self._finish()
                    if self._summary_seen:
                        # The summary is the server's last message and accounts for every
                        # frame; a connection lost after it (a gateway that exits once its
                        # streams have ended) loses nothing.
                        raise StopAsyncIteration from None
                    if self._writer_error is not None:
                        raise self._writer_error from exc
                    if _is_masked(exc.code(), exc.details()):
                        code, details = await self._final_status()
                        if code is StatusCode.OK:
                            # the server ended the stream normally while we still wrote
                            raise StopAsyncIteration from None
                        raise error_for_status(code, details, await self._trailing()) from exc
                    raise from_grpc_error(exc) from exc
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    if task is not None and task.cancelling():
                        raise
                    await self._finish()
                    if self._writer_error is not None:
                        raise self._writer_error from None
                    raise CallCancelledError(
                        "the stream was cancelled on the client side", StatusCode.CANCELLED
                    ) from None
                if msg is grpc.aio.EOF:
                    await self._finish()
                    raise StopAsyncIteration
                event = stream_event(msg)
                if isinstance(event, StreamSummary):
                    self._summary_seen = True
                if event is not None:
                    return event

    async def _finish(self) -> None:
        self._finished = True
        await self._stop_writer()
