"""The one core behind both skins: gRPC (frontends.service) and HTTP (frontends.http).

It resolves the model, checks options, prepares the untrusted audio once (decoded, mono, at
the model's rate), cuts it into windows, classifies and ranks, and keeps the metrics of
clips and streams alike. The skins only translate their wire format to these calls and the
results back; they ask it for models too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from dataclasses import dataclass

from tritone_server.audio.decode_pool import DecodePool
from tritone_server.audio.formats import AudioLimits, PcmFormat, PreparedAudio
from tritone_server.audio.prepare import prepare_encoded_async, prepare_pcm_async
from tritone_server.core.clips import frame_clip
from tritone_server.core.fanout import open_fanout
from tritone_server.core.inference import ClipScores, Inference
from tritone_server.core.limits import StreamLimits
from tritone_server.core.models import Activation, Catalogue, ModelSpec
from tritone_server.core.scoring import FloatArray, top_k
from tritone_server.core.session import OpenStream, StreamSessions
from tritone_server.core.stream_request import StreamRequest
from tritone_server.core.streams import LiveStream, StreamEvent, StreamOptions, SummaryEvent
from tritone_server.errors import InvalidRequest
from tritone_server.metrics import Metrics, current_model

_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

DEFAULT_TOP_K = 5

Ranked = list[tuple[str, float]]


@dataclass(frozen=True, slots=True)
class RawPcmAudio:
    data: bytes
    format: PcmFormat


ClipAudio = bytes | RawPcmAudio
"""An encoded file, or raw PCM with its declared format."""


@dataclass(frozen=True, slots=True)
class ClipResult:
    spec: ModelSpec
    labels: Ranked
    segments: list[tuple[float, float, Ranked]]
    duration_s: float
    input_frames: int
    input_sample_rate: int


@dataclass(frozen=True, slots=True)
class EmbedResult:
    spec: ModelSpec
    embedding: FloatArray
    duration_s: float
    input_frames: int
    input_sample_rate: int


def resolve_top_k(requested: int | None, spec: ModelSpec) -> int:
    if requested is not None and requested < 0:
        raise InvalidRequest(f"top_k must be 0 or more, not {requested}")
    return min(requested or DEFAULT_TOP_K, len(spec.labels))


class DataPlane:
    def __init__(
        self,
        catalogue: Catalogue,
        inference: Inference,
        *,
        limits: AudioLimits,
        decode_pool: DecodePool | None = None,
        metrics: Metrics | None = None,
        stream_limits: StreamLimits | None = None,
        max_streams: int = 256,
    ) -> None:
        self.catalogue = catalogue
        self.inference = inference
        self.limits = limits
        self.decode_pool = decode_pool
        self.metrics = metrics or inference.metrics
        self._loading = asyncio.Lock()  # Triton loads and catalogue reloads in turn
        self.sessions = StreamSessions(self, stream_limits or StreamLimits(), max_streams)
        """The live streams: admission, shutdown."""

    def model(self, name: str) -> ModelSpec:
        """A ready model (the default one for an empty name)."""
        return self.catalogue.get(name)

    def models(self) -> list[ModelSpec]:
        """Every model the catalogue knows, ready or not."""
        return self.catalogue.all()

    def describe(self, name: str) -> ModelSpec:
        """One model by name, ready or not (ModelNotFound if unknown)."""
        return self.catalogue.lookup(name)

    async def prepare(self, audio: ClipAudio, spec: ModelSpec) -> PreparedAudio:
        """Decode once to mono at the model's rate (the "decode" stage of the metrics)."""
        with self.metrics.stage("decode", spec.name):
            # Both paths check format, emptiness and size against the limits first.
            if isinstance(audio, RawPcmAudio):
                return await prepare_pcm_async(
                    audio.data, audio.format, spec.sample_rate, self.limits
                )
            return await prepare_encoded_async(
                audio, spec.sample_rate, self.limits, pool=self.decode_pool
            )

    async def classify(
        self,
        model: str,
        audio: ClipAudio,
        *,
        top_k_requested: int | None = None,
        activation: Activation | None = None,
        segments: bool = False,
        timeout_s: float | None = None,
    ) -> ClipResult:
        spec = self.model(model)
        current_model.set(spec.name)  # the call's metrics and access log name its model
        if spec.is_embedding:
            raise InvalidRequest(f"model {spec.name!r} gives embeddings, not labels; use Embed")
        k = resolve_top_k(top_k_requested, spec)
        decoded, clip = await self._run_clip(spec, audio, activation, timeout_s)
        spans = []
        if segments:
            for i, row in enumerate(clip.window_scores):
                start_s, end_s = clip.window_span(i, spec.window_samples)
                spans.append((start_s, end_s, top_k(row, spec.labels, k)))
        return ClipResult(
            spec=spec,
            labels=top_k(clip.scores, spec.labels, k),
            segments=spans,
            duration_s=decoded.duration_s,
            input_frames=decoded.input_frames,
            input_sample_rate=decoded.input_sample_rate,
        )

    async def embed(
        self, model: str, audio: ClipAudio, *, timeout_s: float | None = None
    ) -> EmbedResult:
        spec = self.model(model)
        current_model.set(spec.name)
        if not spec.is_embedding:
            raise InvalidRequest(f"model {spec.name!r} gives labels, not embeddings; use Classify")
        decoded, clip = await self._run_clip(spec, audio, "none", timeout_s)
        return EmbedResult(
            spec=spec,
            embedding=clip.scores,
            duration_s=decoded.duration_s,
            input_frames=decoded.input_frames,
            input_sample_rate=decoded.input_sample_rate,
        )

    async def _run_clip(
        self,
        spec: ModelSpec,
        audio: ClipAudio,
        activation: Activation | None,
        timeout_s: float | None,
    ) -> tuple[PreparedAudio, ClipScores]:
        prepared = await self.prepare(audio, spec)
        windows = frame_clip(spec, prepared.samples, prepared.duration_s)
        clip = await self.inference.classify_clip(spec, windows, activation, timeout_s=timeout_s)
        self.metrics.audio_seconds.labels(spec.name).inc(prepared.duration_s)
        return prepared, clip

    async def load_model(self, name: str) -> ModelSpec:
        """Load (or reload) a model directory from the repository; no restart needed."""
        if not _MODEL_NAME.fullmatch(name or ""):
            raise InvalidRequest(
                f"model name {name!r} must be letters, digits, '.', '_' or '-' (a directory name)"
            )
        async with self._loading:
            await self.inference.backend.load_model(name)
            await self.catalogue.reload(self.inference.backend)
        return self.catalogue.lookup(name)

    async def refresh_models(self) -> list[ModelSpec]:
        """Read the model list again from Triton (in turn with LoadModel); the last list
        stays if Triton does not answer (the error is raised)."""
        async with self._loading:
            return await self.catalogue.reload(self.inference.backend)

    def open_stream(self, model: str, fmt: PcmFormat, options: StreamOptions) -> LiveStream:
        """A live stream, counted in the open-streams gauge until `close_stream`."""
        spec = self.model(model)
        current_model.set(spec.name)
        fmt.validate(self.limits)
        stream = LiveStream(spec, self.inference, fmt, _with_top_k(spec, options))
        self.metrics.open_streams.inc()  # close_stream takes it off
        return stream

    def open_stream_request(self, request: StreamRequest) -> OpenStream:
        """The stream a session's handshake asked for: one model as `open_stream` gives it,
        or several models and a gate on one stream's audio."""
        if not request.several:
            return self.open_stream(request.models[0], request.format, request.options)
        current_model.set(self.model(request.models[0]).name)  # its first model names it
        request.format.validate(self.limits)
        stream = open_fanout(request, self.model, _with_top_k, self.inference)
        self.metrics.open_streams.inc()  # close_stream takes it off
        return stream

    def close_stream(self, stream: OpenStream) -> None:
        """Call once for every stream `open_stream` gave, however it ended."""
        self.metrics.open_streams.dec()

    async def finish_stream(self, stream: OpenStream) -> list[StreamEvent]:
        """The stream's last events and summary; its audio counts like a clip's, for every
        model that heard it."""
        events = await stream.finish()
        for event in events:
            if isinstance(event, SummaryEvent):
                names = [m.model for m in event.models] or [stream.spec.name]
                for name in names:
                    self.metrics.audio_seconds.labels(name).inc(event.duration_s)
        return events


def _with_top_k(spec: ModelSpec, options: StreamOptions) -> StreamOptions:
    return dataclasses.replace(options, top_k=resolve_top_k(options.top_k, spec))
