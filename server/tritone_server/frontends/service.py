"""The AudioClassification servicer: validate, map proto to domain and back, delegate."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Sequence

import grpc

from tritone_protos import audio_classification_pb2 as pb
from tritone_protos import audio_classification_pb2_grpc as pb_grpc
from tritone_server.audio.formats import PcmEncoding, PcmFormat
from tritone_server.core.dataplane import ClipAudio, DataPlane, RawPcmAudio
from tritone_server.core.description import describe_model
from tritone_server.core.limits import Admission
from tritone_server.core.models import Activation, ModelSpec
from tritone_server.core.stream_request import GateRequest, StreamRequest
from tritone_server.core.streams import (
    DetectionEvent,
    ModelSummary,
    SegmentEvent,
    StreamEvent,
    StreamOptions,
    SummaryEvent,
    UtteranceEvent,
    WindowEvent,
)
from tritone_server.errors import InvalidRequest

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
    fields = describe_model(spec)
    fields["activation"] = _ACTIVATION_TO_PROTO[fields["activation"]]
    fields["state"] = pb.MODEL_STATE_READY if fields.pop("ready") else pb.MODEL_STATE_UNAVAILABLE
    return pb.ModelInfo(**fields)


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
        window.interim = event.zero_padded  # the wire has one flag for both
        if event.model:
            window.model = event.model
        for label, score in event.labels:
            window.labels.add(label=label, score=score)
    elif isinstance(event, DetectionEvent):
        reply.detection.CopyFrom(
            pb.Detection(
                label=event.label,
                start_s=event.start_s,
                end_s=event.end_s,
                peak_score=event.peak_score,
                model=event.model,
            )
        )
    elif isinstance(event, SegmentEvent):
        reply.segment.CopyFrom(
            pb.SpeechSegment(
                start_s=event.start_s, end_s=event.end_s, final=event.final, model=event.model
            )
        )
    elif isinstance(event, UtteranceEvent):
        reply.utterance.CopyFrom(
            pb.Utterance(
                model=event.model,
                start_s=event.start_s,
                end_s=event.end_s,
                labels=label_scores(event.labels),
                window_start_s=event.window_start_s,
                window_end_s=event.window_end_s,
                too_long=event.too_long,
                embedding=event.embedding,
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
                models=[model_summary(m) for m in event.models],
            )
        )
    return reply


def model_summary(summary: ModelSummary) -> pb.ModelSummary:
    return pb.ModelSummary(
        model=summary.model,
        model_version=summary.model_version,
        windows=summary.windows,
        windows_skipped=summary.windows_skipped,
        segments=summary.segments,
        model_samples=summary.model_samples,
        padding_samples=summary.padding_samples,
        detections=summary.detections,
        labels=label_scores(summary.labels),
        gated=summary.gated,
        gate=summary.gate,
    )


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


def stream_request(first: pb.StreamClassifyRequest | None) -> StreamRequest:
    """What the first message of a stream asks for."""
    if first is None or first.WhichOneof("request") != "config":
        raise InvalidRequest("the first message of a stream must carry a StreamConfig")
    config = first.config
    fmt, options = pcm_format_from_proto(config.format), stream_options(config)
    models = tuple(config.models)
    if models and config.model:
        raise InvalidRequest("a StreamConfig names model or models, not both")
    if not all(models):
        raise InvalidRequest(f"models holds an empty model name: {list(models)!r}")
    padding = int(config.gate_padding_ms) if config.HasField("gate_padding_ms") else None
    gate = None
    if config.gate_model:
        gate = GateRequest(config.gate_model, float(config.gate_threshold), padding)
    elif config.gate_threshold or padding is not None:
        raise InvalidRequest("gate_threshold and gate_padding_ms need a gate_model")
    per_segment = tuple(config.per_segment)
    if not models and gate is None and not per_segment:
        return StreamRequest((config.model,), fmt, options)  # the one-model stream, as ever
    return StreamRequest(
        models or (config.model,), fmt, options, gate, per_segment=per_segment, several=True
    )


def stream_audio(request: pb.StreamClassifyRequest) -> bytes:
    """The audio of a later message of a stream."""
    if request.WhichOneof("request") != "audio":
        raise InvalidRequest("a stream carries one StreamConfig, in its first message")
    return request.audio


def clip_audio(audio: pb.Audio) -> ClipAudio:
    source = audio.WhichOneof("source")
    if source == "encoded":
        return audio.encoded
    if source == "raw":
        return RawPcmAudio(audio.raw.data, pcm_format_from_proto(audio.raw.format))
    raise InvalidRequest("the request carries no audio: set audio.encoded or audio.raw")


class AudioClassificationService(pb_grpc.AudioClassificationServicer):
    def __init__(self, dataplane: DataPlane, *, max_unary_calls: int = 64) -> None:
        self.dataplane = dataplane
        self.metrics = dataplane.metrics
        self.sessions = dataplane.sessions
        self.unary = Admission(max_unary_calls, what="unary calls", setting="max_unary_calls")

    def begin_shutdown(self) -> int:
        """Every live stream ends with its summary; new calls are refused (see
        `StreamSessions.begin_shutdown`)."""
        return self.sessions.begin_shutdown()

    async def wait_streams_ended(self, timeout_s: float) -> bool:
        return await self.sessions.wait_ended(timeout_s)

    async def Classify(
        self, request: pb.ClassifyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClassifyResponse:
        self.sessions.refuse_if_shutting_down()
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
        self.sessions.refuse_if_shutting_down()
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
        session = self.sessions.session(aiter(request_iterator), stream_request, stream_audio)
        try:
            async for event in session.events():
                yield event_to_proto(event)
        except Exception:
            # Every failed stream tells the caller where to resume: the frames the gateway
            # received and the frames whose audio was fully classified.
            received, consumed = session.counts()
            context.set_trailing_metadata(
                (
                    ("tritone-frames-received", str(received)),
                    ("tritone-frames-consumed", str(consumed)),
                )
            )
            raise

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
