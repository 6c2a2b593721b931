"""The AudioClassification servicer: validate, map proto to domain and back, delegate."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence

import grpc

from tritone._proto import audio_classification_pb2 as pb
from tritone._proto import audio_classification_pb2_grpc as pb_grpc
from tritone_server.audio.formats import PcmEncoding, PcmFormat
from tritone_server.core.dataplane import ClipAudio, DataPlane, RawPcmAudio
from tritone_server.core.limits import Admission, StreamLimits
from tritone_server.core.models import Activation, ModelSpec
from tritone_server.core.streams import (
    DetectionEvent,
    StreamEvent,
    StreamOptions,
    SummaryEvent,
    WindowEvent,
)
from tritone_server.errors import BackendUnavailable, InvalidRequest
from tritone_server.frontends.stream_queue import END, STOPPED, ChunkQueue
from tritone_server.frontends.stream_watchdog import StreamWatchdog

_ACTIVATIONS: dict[int, Activation | None] = {
    pb.ACTIVATION_UNSPECIFIED: None,
    pb.ACTIVATION_SOFTMAX: "softmax",
    pb.ACTIVATION_SIGMOID: "sigmoid",
    pb.ACTIVATION_NONE: "none",
}
_ACTIVATION_TO_PROTO = {v: k for k, v in _ACTIVATIONS.items() if v is not None}
_ENCODINGS = {pb.PCM_S16LE: PcmEncoding.S16LE, pb.PCM_F32LE: PcmEncoding.F32LE}


def activation_from_proto(value: int) -> Activation | None:
    if value not in _ACTIVATIONS:
        raise InvalidRequest(f"activation {value} is not one of SOFTMAX, SIGMOID, NONE")
    return _ACTIVATIONS[value]


def pcm_format_from_proto(fmt: pb.PcmFormat) -> PcmFormat:
    """The declared format; the DataPlane checks it against the limits."""
    encoding = _ENCODINGS.get(fmt.encoding)
    if encoding is None:
        raise InvalidRequest("raw audio needs an encoding: PCM_S16LE or PCM_F32LE")
    if fmt.sample_rate == 0:
        raise InvalidRequest("raw audio needs its sample_rate")
    return PcmFormat(encoding, int(fmt.sample_rate), int(fmt.channels or 1))


def label_scores(pairs: Sequence[tuple[str, float]]) -> list[pb.LabelScore]:
    return [pb.LabelScore(label=label, score=score) for label, score in pairs]


def model_info(spec: ModelSpec) -> pb.ModelInfo:
    return pb.ModelInfo(
        name=spec.name,
        version=spec.version,
        task=spec.task,
        labels=spec.labels,
        sample_rate=spec.sample_rate,
        window_samples=spec.window_samples,
        hop_samples=spec.hop_samples,
        activation=_ACTIVATION_TO_PROTO[spec.activation],  # type: ignore[arg-type]
        stateful=spec.stateful,
        state=pb.MODEL_STATE_READY if spec.ready else pb.MODEL_STATE_UNAVAILABLE,
        description=spec.description,
        detection_thresholds=dict(spec.detection.thresholds),
        detection_min_windows=spec.detection.min_windows if spec.detection.thresholds else 0,
    )


def event_to_proto(event: StreamEvent) -> pb.StreamClassifyResponse:
    progress = event.progress
    reply = pb.StreamClassifyResponse(
        frames_received=progress.frames_received, consumed_s=progress.consumed_s
    )
    if isinstance(event, WindowEvent):  # the most frequent event: filled in place, no copy
        window = reply.window
        window.index = event.index
        window.start_s = event.start_s
        window.end_s = event.end_s
        window.interim = event.interim
        for label, score in event.labels:
            window.labels.add(label=label, score=score)
    elif isinstance(event, DetectionEvent):
        reply.detection.CopyFrom(
            pb.Detection(
                label=event.label,
                start_s=event.start_s,
                end_s=event.end_s,
                peak_score=event.peak_score,
            )
        )
    elif isinstance(event, SummaryEvent):
        reply.summary.CopyFrom(
            pb.StreamSummary(
                bytes_received=event.bytes_received,
                frames_received=event.frames_received,
                model_samples=event.model_samples,
                padding_samples=event.padding_samples,
                windows=event.windows,
                detections=event.detections,
                duration_s=event.duration_s,
                labels=label_scores(event.labels),
                model=event.model,
                model_version=event.model_version,
            )
        )
    return reply


def stream_options(config: pb.StreamConfig) -> StreamOptions:
    return StreamOptions(
        top_k=int(config.top_k),
        hop_ms=int(config.hop_ms),
        interim_results=config.interim_results,
        detection_threshold=float(config.detection_threshold),
        detection_labels=tuple(config.detection_labels),
        activation=activation_from_proto(config.activation),
        suppress_windows=config.suppress_windows,
        model_thresholds=config.model_thresholds,
    )


def clip_audio(audio: pb.Audio) -> ClipAudio:
    source = audio.WhichOneof("source")
    if source == "encoded":
        return audio.encoded
    if source == "raw":
        return RawPcmAudio(audio.raw.data, pcm_format_from_proto(audio.raw.format))
    raise InvalidRequest("the request carries no audio: set audio.encoded or audio.raw")


class AudioClassificationService(pb_grpc.AudioClassificationServicer):
    def __init__(
        self,
        dataplane: DataPlane,
        *,
        stream_limits: StreamLimits | None = None,
        max_streams: int = 256,
        max_unary_calls: int = 64,
    ) -> None:
        self.dataplane = dataplane
        self.metrics = dataplane.metrics
        self.limits = stream_limits or StreamLimits()
        self.streams = Admission(max_streams, what="streams", setting="max_streams")
        self.unary = Admission(max_unary_calls, what="unary calls", setting="max_unary_calls")
        self._live: set[ChunkQueue] = set()
        self._none_live = asyncio.Event()
        self._none_live.set()
        self._shutting_down = False

    def begin_shutdown(self) -> int:
        """Have every live stream classify what it has queued, send its summary and end;
        new streams are refused. Returns how many streams were told."""
        self._shutting_down = True
        for queue in self._live:
            queue.stop()
        return len(self._live)

    async def wait_streams_ended(self, timeout_s: float) -> bool:
        """Wait, at most ``timeout_s``, until no stream is live; whether none is."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._none_live.wait()
        return self._none_live.is_set()

    def _refuse_if_shutting_down(self) -> None:
        if self._shutting_down:
            raise BackendUnavailable("the gateway is shutting down; retry on another replica")

    async def Classify(
        self, request: pb.ClassifyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClassifyResponse:
        self._refuse_if_shutting_down()
        with self.unary.enter():
            result = await self.dataplane.classify(
                request.model,
                clip_audio(request.audio),
                top_k_requested=request.top_k,
                activation=activation_from_proto(request.activation),
                segments=request.segments,
                timeout_s=context.time_remaining(),
            )
        return pb.ClassifyResponse(
            model=result.spec.name,
            model_version=result.spec.version,
            labels=label_scores(result.labels),
            segments=[
                pb.Segment(start_s=start, end_s=end, labels=label_scores(ranked))
                for start, end, ranked in result.segments
            ],
            duration_s=result.duration_s,
            input_frames=result.input_frames,
            input_sample_rate=result.input_sample_rate,
        )

    async def Embed(
        self, request: pb.EmbedRequest, context: grpc.aio.ServicerContext
    ) -> pb.EmbedResponse:
        self._refuse_if_shutting_down()
        with self.unary.enter():
            result = await self.dataplane.embed(
                request.model,
                clip_audio(request.audio),
                timeout_s=context.time_remaining(),
            )
        return pb.EmbedResponse(
            model=result.spec.name,
            model_version=result.spec.version,
            embedding=result.embedding.tolist(),
            duration_s=result.duration_s,
            input_frames=result.input_frames,
            input_sample_rate=result.input_sample_rate,
        )

    async def StreamClassify(
        self,
        request_iterator: AsyncIterable[pb.StreamClassifyRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.StreamClassifyResponse]:
        progress = _Progress()
        try:
            self._refuse_if_shutting_down()
            with self.streams.enter():
                async for reply in self._stream(request_iterator, progress):
                    yield reply
        except Exception:
            # Every failed stream tells the caller where to resume: the frames the gateway
            # received and the frames whose audio was fully classified.
            received, consumed = progress.counts()
            context.set_trailing_metadata(
                (
                    ("tritone-frames-received", str(received)),
                    ("tritone-frames-consumed", str(consumed)),
                )
            )
            raise

    async def _stream(
        self,
        request_iterator: AsyncIterable[pb.StreamClassifyRequest],
        progress: _Progress,
    ) -> AsyncIterator[pb.StreamClassifyResponse]:
        limits = self.limits
        deadline = time.monotonic() + limits.max_stream_s
        requests = aiter(request_iterator)
        # asyncio.timeout, never asyncio.wait_for: before Python 3.12 wait_for returns the
        # result and swallows a cancellation that lands as the message arrives.
        try:
            async with asyncio.timeout(limits.config_timeout_s):
                first = await anext(requests, None)
        except TimeoutError:
            raise limits.config_error() from None
        if first is None or first.WhichOneof("request") != "config":
            raise InvalidRequest("the first message of a stream must carry a StreamConfig")
        config = first.config
        fmt = pcm_format_from_proto(config.format)
        stream = self.dataplane.open_stream(config.model, fmt, stream_options(config))
        model = stream.spec.name
        queue = ChunkQueue(max_bytes=limits.max_queued_bytes, max_items=limits.max_queued_chunks)
        reader = asyncio.create_task(_read_audio(requests, queue, limits, deadline))
        self._live.add(queue)
        self._none_live.clear()
        if self._shutting_down:
            queue.stop()

        def counts() -> tuple[int, int]:
            # Audio still queued was received too, though never classified.
            received = (stream.framer.bytes_received + queue.bytes) // fmt.frame_bytes
            return received, stream.frames_consumed

        progress.counts = counts
        try:
            queue_stage = self.metrics.stage_histogram("queue", model)
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
                    yield event_to_proto(event)
            for event in await self.dataplane.finish_stream(stream):
                yield event_to_proto(event)
        finally:
            self._live.discard(queue)
            if not self._live:
                self._none_live.set()
            self.dataplane.close_stream(stream)
            queue.stop()  # a reader waiting for room returns even if its cancel went astray
            reader.cancel()
            # asyncio.wait, not `await reader`: our own cancellation must not be swallowed.
            await asyncio.wait({reader})
            if not reader.cancelled():
                reader.exception()  # retrieved, so asyncio does not log it

    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListModelsResponse:
        return pb.ListModelsResponse(models=[model_info(s) for s in self.dataplane.models()])

    async def LoadModel(
        self, request: pb.LoadModelRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInfo:
        return model_info(await self.dataplane.load_model(request.name))

    async def GetModel(
        self, request: pb.GetModelRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInfo:
        return model_info(self.dataplane.describe(request.name))


class _Progress:
    """Where a stream stands, for the trailing metadata of its error."""

    def __init__(self) -> None:
        self.counts: Callable[[], tuple[int, int]] = lambda: (0, 0)


async def _read_audio(
    requests: AsyncIterator[pb.StreamClassifyRequest],
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
            async for request in requests:
                watchdog.last = time.monotonic()
                if request.WhichOneof("request") != "audio":
                    raise InvalidRequest("a stream carries one StreamConfig, in its first message")
                audio = request.audio
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
