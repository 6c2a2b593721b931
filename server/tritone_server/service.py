"""The AudioClassification servicer: validate, map proto to domain and back, delegate."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Sequence

import grpc
from tritone._proto import audio_classification_pb2 as pb
from tritone._proto import audio_classification_pb2_grpc as pb_grpc

from tritone_server.audio import (
    AudioLimits,
    DecodedAudio,
    DecodePool,
    PcmEncoding,
    PcmFormat,
    decode_encoded_async,
    pcm_to_float,
)
from tritone_server.errors import InvalidRequest, LimitExceeded
from tritone_server.inference import Inference
from tritone_server.models import Activation, Catalogue, ModelSpec
from tritone_server.scoring import top_k
from tritone_server.streams import (
    DetectionEvent,
    LiveStream,
    StreamEvent,
    StreamOptions,
    SummaryEvent,
    WindowEvent,
)

DEFAULT_TOP_K = 5

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


def pcm_format_from_proto(fmt: pb.PcmFormat, limits: AudioLimits) -> PcmFormat:
    encoding = _ENCODINGS.get(fmt.encoding)
    if encoding is None:
        raise InvalidRequest("raw audio needs an encoding: PCM_S16LE or PCM_F32LE")
    if fmt.sample_rate == 0:
        raise InvalidRequest("raw audio needs its sample_rate")
    result = PcmFormat(encoding, int(fmt.sample_rate), int(fmt.channels or 1))
    result.validate(limits)
    return result


def resolve_top_k(requested: int, spec: ModelSpec) -> int:
    return min(requested or DEFAULT_TOP_K, len(spec.labels))


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
    )


def event_to_proto(event: StreamEvent) -> pb.StreamClassifyResponse:
    progress = event.progress
    reply = pb.StreamClassifyResponse(
        frames_received=progress.frames_received, consumed_s=progress.consumed_s
    )
    if isinstance(event, WindowEvent):
        reply.window.CopyFrom(
            pb.WindowResult(
                index=event.index,
                start_s=event.start_s,
                end_s=event.end_s,
                labels=label_scores(event.labels),
                interim=event.interim,
            )
        )
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


def stream_options(config: pb.StreamConfig, spec: ModelSpec) -> StreamOptions:
    return StreamOptions(
        top_k=resolve_top_k(config.top_k, spec),
        hop_ms=int(config.hop_ms),
        interim_results=config.interim_results,
        detection_threshold=float(config.detection_threshold),
        detection_labels=tuple(config.detection_labels),
        activation=activation_from_proto(config.activation),
        suppress_windows=config.suppress_windows,
    )


_END = object()


class AudioClassificationService(pb_grpc.AudioClassificationServicer):
    def __init__(
        self,
        catalogue: Catalogue,
        inference: Inference,
        *,
        limits: AudioLimits,
        decode_pool: DecodePool | None = None,
        stream_queue_chunks: int = 64,
    ) -> None:
        self.catalogue = catalogue
        self.inference = inference
        self.limits = limits
        self.decode_pool = decode_pool
        self.stream_queue_chunks = stream_queue_chunks
        self.open_streams = 0

    async def decode(self, audio: pb.Audio) -> DecodedAudio:
        source = audio.WhichOneof("source")
        if source == "encoded":
            if len(audio.encoded) > self.limits.max_encoded_bytes:
                raise LimitExceeded(
                    f"the audio is {len(audio.encoded)} bytes; the limit is "
                    f"{self.limits.max_encoded_bytes}"
                )
            return await decode_encoded_async(audio.encoded, self.limits, pool=self.decode_pool)
        if source == "raw":
            fmt = pcm_format_from_proto(audio.raw.format, self.limits)
            return pcm_to_float(audio.raw.data, fmt, self.limits)
        raise InvalidRequest("the request carries no audio: set audio.encoded or audio.raw")

    async def Classify(
        self, request: pb.ClassifyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClassifyResponse:
        spec = self.catalogue.get(request.model)
        activation = activation_from_proto(request.activation)
        k = resolve_top_k(request.top_k, spec)
        audio = await self.decode(request.audio)
        clip = await self.inference.classify_clip(
            spec, audio, activation, timeout_s=context.time_remaining()
        )
        reply = pb.ClassifyResponse(
            model=spec.name,
            model_version=spec.version,
            labels=label_scores(top_k(clip.scores, spec.labels, k)),
            duration_s=audio.duration_s,
            input_frames=audio.frames,
            input_sample_rate=audio.sample_rate,
        )
        if request.segments:
            for i, row in enumerate(clip.window_scores):
                start_s, end_s = clip.window_span(i, spec.window_samples)
                reply.segments.append(
                    pb.Segment(
                        start_s=start_s,
                        end_s=end_s,
                        labels=label_scores(top_k(row, spec.labels, k)),
                    )
                )
        return reply

    async def StreamClassify(
        self,
        request_iterator: AsyncIterable[pb.StreamClassifyRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.StreamClassifyResponse]:
        requests = aiter(request_iterator)
        first = await anext(requests, None)
        if first is None or first.WhichOneof("request") != "config":
            raise InvalidRequest("the first message of a stream must carry a StreamConfig")
        spec = self.catalogue.get(first.config.model)
        fmt = pcm_format_from_proto(first.config.format, self.limits)
        stream = LiveStream(spec, self.inference, fmt, stream_options(first.config, spec))
        queue: asyncio.Queue[object] = asyncio.Queue(maxsize=self.stream_queue_chunks)
        reader = asyncio.create_task(_read_audio(requests, queue))
        self.open_streams += 1
        try:
            while (item := await queue.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, bytes)
                for event in await stream.feed(item):
                    yield event_to_proto(event)
            for event in await stream.finish():
                yield event_to_proto(event)
        finally:
            self.open_streams -= 1
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListModelsResponse:
        return pb.ListModelsResponse(models=[model_info(s) for s in self.catalogue.all()])

    async def GetModel(
        self, request: pb.GetModelRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInfo:
        return model_info(self.catalogue.lookup(request.name))


async def _read_audio(
    requests: AsyncIterator[pb.StreamClassifyRequest], queue: asyncio.Queue[object]
) -> None:
    """Move audio from the wire to the bounded queue; a full queue holds the client back."""
    try:
        async for request in requests:
            if request.WhichOneof("request") != "audio":
                raise InvalidRequest("a stream carries one StreamConfig, in its first message")
            if request.audio:
                await queue.put(request.audio)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        await queue.put(exc)
        return
    await queue.put(_END)
