"""`Client`, the synchronous facade of `AsyncClient`: the same calls on a private loop."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Sequence,
)
from types import TracebackType
from typing import Any, Final, Literal, TypeVar, cast

from tritone._client import AsyncClient
from tritone._config import DEFAULT, DEFAULT_RETRIES, DEFAULT_TIMEOUT_S, TimeoutTypes, TlsConfig
from tritone._stream import AudioStream
from tritone.errors import ClientClosedError, invalid_argument
from tritone.types import (
    Activation,
    AudioChunk,
    AudioInput,
    ClassifyResult,
    Embedding,
    ModelInfo,
    PcmEncoding,
    StreamEvent,
)

__all__ = ["Client"]

_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., Any])


def _doc_from(async_method: Callable[..., Any]) -> Callable[[_F], _F]:
    """Give a `Client` method the docstring of its `AsyncClient` twin, in sync form."""
    doc = async_method.__doc__ or ""
    doc = doc.replace("async with AsyncClient", "with Client").replace("await ", "")
    doc = re.sub(r"\(([^()]*client\.[^()]*\([^()]*\))\)", r"\1", doc)

    def apply(fn: _F) -> _F:
        fn.__doc__ = doc
        return fn

    return apply


_DONE: Final = object()


async def _pull_in_thread(chunks: Iterable[AudioChunk]) -> AsyncIterator[AudioChunk]:
    """Iterate a caller's sync iterable in worker threads, so it may block (pacing, I/O)."""
    iterator = iter(chunks)
    while True:
        chunk = await asyncio.to_thread(next, iterator, _DONE)
        if chunk is _DONE:
            return
        yield cast(AudioChunk, chunk)


class Client:
    """Synchronous client of a Tritone gateway.

    It runs an `AsyncClient` on its own event loop in a private thread, started by
    ``with`` or the first call and stopped by `close()`, so it also works where an event
    loop is already running (it blocks that loop while it waits). The arguments are those
    of `AsyncClient`.

    Example:
        >>> with Client("127.0.0.1:50051") as client:
        ...     print(client.classify("dog.wav").top)
    """

    def __init__(
        self,
        target: str,
        *,
        token: str | None = None,
        tls: TlsConfig | bool | None = None,
        timeout: float | None = DEFAULT_TIMEOUT_S,
        retries: int = DEFAULT_RETRIES,
        options: Sequence[tuple[str, Any]] | None = None,
        load_balancing: str | None = None,
    ) -> None:
        self._async = AsyncClient(
            target,
            token=token,
            tls=tls,
            timeout=timeout,
            retries=retries,
            options=options,
            load_balancing=load_balancing,
        )
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def target(self) -> str:
        """The gateway address the client was made with."""
        return self._async.target

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._loop else "unopened"
        return f"Client({self.target!r}, state={state})"

    def __enter__(self) -> Client:
        self._ensure_loop()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel and stop the client's thread. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._async.close(), loop).result()
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise ClientClosedError("the client is closed; make a new one")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=_run_loop, args=(loop,), name="tritone-client", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def _run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        try:
            loop = self._ensure_loop()
        except BaseException:
            coro.close()
            raise
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    @_doc_from(AsyncClient.classify)
    def classify(
        self,
        audio: AudioInput,
        *,
        sample_rate: int | None = None,
        model: str | None = None,
        top_k: int | None = None,
        segments: bool = False,
        activation: Activation | None = None,
        timeout: TimeoutTypes = DEFAULT,
    ) -> ClassifyResult:
        return self._run(
            self._async.classify(
                audio,
                sample_rate=sample_rate,
                model=model,
                top_k=top_k,
                segments=segments,
                activation=activation,
                timeout=timeout,
            )
        )

    @_doc_from(AsyncClient.embed)
    def embed(
        self,
        audio: AudioInput,
        *,
        sample_rate: int | None = None,
        model: str | None = None,
        timeout: TimeoutTypes = DEFAULT,
    ) -> Embedding:
        return self._run(
            self._async.embed(audio, sample_rate=sample_rate, model=model, timeout=timeout)
        )

    @_doc_from(AsyncClient.load_model)
    def load_model(self, name: str, *, timeout: TimeoutTypes = DEFAULT) -> ModelInfo:
        return self._run(self._async.load_model(name, timeout=timeout))

    @_doc_from(AsyncClient.list_models)
    def list_models(self, *, timeout: TimeoutTypes = DEFAULT) -> tuple[ModelInfo, ...]:
        return self._run(self._async.list_models(timeout=timeout))

    @_doc_from(AsyncClient.get_model)
    def get_model(self, name: str, *, timeout: TimeoutTypes = DEFAULT) -> ModelInfo:
        return self._run(self._async.get_model(name, timeout=timeout))

    def stream_classify(
        self,
        chunks: Iterable[AudioChunk],
        *,
        sample_rate: int,
        model: str | None = None,
        encoding: PcmEncoding = PcmEncoding.S16LE,
        channels: int = 1,
        top_k: int | None = None,
        hop_ms: int | None = None,
        interim_results: bool = False,
        detection_threshold: float | Literal["model"] | None = None,
        detection_labels: Sequence[str] = (),
        activation: Activation | None = None,
        suppress_windows: bool = False,
        models: Sequence[str] = (),
        gate: str | None = None,
        gate_threshold: float | None = None,
        gate_padding_ms: int | None = None,
        per_segment: Sequence[str] = (),
        timeout: TimeoutTypes = DEFAULT,
    ) -> Iterator[StreamEvent]:
        """Classify live audio from an iterable of chunks; yield events as they arrive.

        The keyword arguments are those of `AsyncClient.stream_classify`. The chunks are
        pulled in worker threads, so the iterable may block (pace audio, read a device).
        Stopping the iteration early (``break``, or closing the generator) cancels the call.

        Args:
            chunks: Bytes in the declared encoding, or numpy arrays converted to it.
            sample_rate: Rate of the audio, in Hz.

        Returns:
            An iterator of window results and detections, then one summary.

        Raises:
            InvalidArgumentError: bad options, at once; bad chunks, from the iterator.
            TritoneError: from the iterator, when the call fails.

        Example:
            >>> for event in client.stream_classify(chunks, sample_rate=16000):
            ...     print(event)
        """
        if isinstance(chunks, AsyncIterable) or not isinstance(chunks, Iterable):
            raise invalid_argument("chunks must be a (sync) iterable of chunks")
        if isinstance(chunks, bytes | bytearray | memoryview | str):
            raise invalid_argument("chunks must be an iterable of chunks, not one object")
        if self._closed:
            raise ClientClosedError("the client is closed; make a new one")
        stream = self._async.stream_classify(
            _pull_in_thread(chunks),
            sample_rate=sample_rate,
            model=model,
            encoding=encoding,
            channels=channels,
            top_k=top_k,
            hop_ms=hop_ms,
            interim_results=interim_results,
            detection_threshold=detection_threshold,
            detection_labels=detection_labels,
            activation=activation,
            suppress_windows=suppress_windows,
            models=models,
            gate=gate,
            gate_threshold=gate_threshold,
            gate_padding_ms=gate_padding_ms,
            per_segment=per_segment,
            timeout=timeout,
        )
        return self._events(stream)

    def _events(self, stream: AudioStream) -> Iterator[StreamEvent]:
        try:
            while True:
                try:
                    event = self._run(stream.__anext__())
                except StopAsyncIteration:
                    return
                yield event
        finally:
            if not self._closed and self._loop is not None:
                self._run(stream.aclose())


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
