"""One stream, several models, optionally gated by voice activity.

Every model gets the stream's audio and keeps its own window buffer and state (each runs at
its own rate and hop). The gate's model hears each chunk first, so that by the time a gated
model looks at its windows the gate knows whether speech is near them; a gated window the
gate has not decided yet waits for the next chunk (or the end of the stream, when the gate
decides everything). The summary keeps the first model's fields and adds one entry per
model, the gate included.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

from tritone_server.core.gate import (
    DEFAULT_GATE_PADDING_MS,
    DEFAULT_GATE_THRESHOLD,
    MAX_GATE_PADDING_MS,
    SpeechGate,
)
from tritone_server.core.inference import Inference
from tritone_server.core.models import ModelSpec
from tritone_server.core.scoring import FloatArray
from tritone_server.core.segment_clips import SegmentClipStream, hears_whole_segments
from tritone_server.core.stream_request import GateRequest, StreamRequest
from tritone_server.core.streams import (
    LiveStream,
    ModelSummary,
    SegmentEvent,
    StreamEvent,
    StreamOptions,
    SummaryEvent,
)
from tritone_server.errors import InvalidRequest, ModelNotFound

__all__ = ["GateObserver", "ModelFanout", "open_fanout"]

ModelStream = LiveStream | SegmentClipStream
"""A model's share of the stream: windows (`LiveStream`) or whole segments as clips."""

GATE_TASK = "voice-activity"
GATE_RUN_S = 0.5
"""The gate's hops go to Triton in runs of this much audio: one request per half second, not
per chunk, at the cost of deciding (and reporting speech) up to this much later."""


class GateObserver:
    """Feeds the gate model's speech probabilities to a `SpeechGate`; answers segment events."""

    def __init__(self, gate: SpeechGate, model: str) -> None:
        self.gate = gate
        self.model = model
        self.stream: LiveStream | None = None  # set once the gate's stream exists

    def __call__(self, scores: FloatArray, start_s: float, end_s: float) -> list[StreamEvent]:
        change = self.gate.observe(float(scores[0]), start_s, end_s)
        if change is None:
            return []
        return [self._event(change.start_s, change.end_s, change.final)]

    def finish(self, end_s: float) -> list[StreamEvent]:
        change = self.gate.finish(end_s)
        if change is None:
            return []
        return [self._event(change.start_s, change.end_s, change.final)]

    def _event(self, start_s: float, end_s: float, final: bool) -> SegmentEvent:
        stream = self.stream
        assert stream is not None
        return SegmentEvent(start_s, end_s, final, self.model, stream.progress())


class ModelFanout:
    """The models of one stream, in the caller's order, and the gate's stream."""

    def __init__(
        self,
        streams: list[ModelStream],
        gate_stream: LiveStream | None = None,
        gate: GateObserver | None = None,
    ) -> None:
        self.streams = streams
        self.gate_stream = gate_stream
        self.gate = gate
        # the gate hears every chunk first
        order: list[ModelStream] = [gate_stream] if gate_stream is not None else []
        self._order = order + [s for s in streams if s is not gate_stream]

    @property
    def spec(self) -> ModelSpec:
        return self.streams[0].spec

    @property
    def specs(self) -> list[ModelSpec]:
        return [s.spec for s in self._order]

    @property
    def bytes_received(self) -> int:
        return self._order[0].bytes_received

    @property
    def frames_received(self) -> int:
        return self._order[0].frames_received

    @property
    def frames_consumed(self) -> int:
        """Frames every model has accounted for (classified or skipped by the gate)."""
        return min(s.frames_consumed for s in self._order)

    async def feed(self, data: bytes) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for stream in self._order:
            events += await stream.feed(data)
        return events

    async def finish(self) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        summaries: dict[int, SummaryEvent] = {}
        for stream in self._order:
            for event in await stream.finish():
                if isinstance(event, SummaryEvent):
                    summaries[id(stream)] = event
                else:
                    events.append(event)
            if stream is self.gate_stream and self.gate is not None:
                # the gate has heard everything: close its segment, decide every window
                events += self.gate.finish(stream.duration_s)
        segments = self.gate.gate.count if self.gate is not None else 0
        models = tuple(
            self._model_summary(stream, summaries[id(stream)], segments) for stream in self._order
        )
        first = summaries[id(self.streams[0])]
        return [*events, dataclasses.replace(first, models=models)]

    def _model_summary(
        self, stream: ModelStream, summary: SummaryEvent, segments: int
    ) -> ModelSummary:
        is_gate = stream is self.gate_stream
        gated = stream.gate is not None
        return ModelSummary(
            model=summary.model,
            model_version=summary.model_version,
            windows=summary.windows,
            windows_skipped=stream.windows_skipped,
            segments=segments if gated or is_gate else 0,
            model_samples=summary.model_samples,
            padding_samples=summary.padding_samples,
            detections=summary.detections,
            labels=summary.labels,
            gated=gated,
            gate=is_gate,
        )


def open_fanout(
    request: StreamRequest,
    spec_of: Callable[[str], ModelSpec],
    options_for: Callable[[ModelSpec, StreamOptions], StreamOptions],
    inference: Inference,
) -> ModelFanout:
    """The streams a several-models or gated request asks for; InvalidRequest for a request
    that cannot run, naming what is wrong."""
    names = request.models
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise InvalidRequest(f"models names {twice} more than once; name each model once")
    specs = [spec_of(name) for name in names]
    fmt = request.format
    per_segment = set(request.per_segment)
    _check_per_segment(request, specs)
    gate_spec = None
    gate: SpeechGate | None = None
    observer: GateObserver | None = None
    if request.gate is not None:
        gate_spec = _gate_spec(request.gate, spec_of)
        gate = SpeechGate(*_gate_settings(request.gate))
        observer = GateObserver(gate, gate_spec.name)
    streams: list[ModelStream] = []
    gate_stream: LiveStream | None = None
    for spec in specs:
        options = options_for(spec, request.options)
        if gate_spec is not None and spec.name == gate_spec.name:
            gate_stream = LiveStream(spec, inference, fmt, options, named=True, observer=observer)
            streams.append(gate_stream)
        elif gate is not None and spec.name in per_segment and hears_whole_segments(spec):
            streams.append(SegmentClipStream(spec, inference, fmt, options, gate))
        else:
            streams.append(
                LiveStream(
                    spec,
                    inference,
                    fmt,
                    options,
                    gate=gate,
                    named=True,
                    per_segment=spec.name in per_segment,
                )
            )
    if gate_spec is not None and gate_stream is None:
        # the gate alone: no window events of its own, only segments
        options = options_for(gate_spec, StreamOptions(top_k=1, suppress_windows=True))
        gate_stream = LiveStream(
            gate_spec,
            inference,
            fmt,
            options,
            named=True,
            observer=observer,
            min_run=_gate_run(gate_spec),
        )
    if observer is not None:
        observer.stream = gate_stream
    return ModelFanout(streams, gate_stream, observer)


def _check_per_segment(request: StreamRequest, specs: list[ModelSpec]) -> None:
    if not request.per_segment:
        return
    if request.gate is None:
        raise InvalidRequest("per_segment models answer once per speech segment: set gate_model")
    by_name = {spec.name: spec for spec in specs}
    for name in request.per_segment:
        spec = by_name.get(name)
        if spec is None:
            raise InvalidRequest(f"per_segment model {name!r} is not one of the stream's models")
        if spec.name == request.gate.model:
            raise InvalidRequest(f"per_segment model {name!r} is the gate; the gate runs always")
        if spec.task == GATE_TASK or spec.stateful:
            raise InvalidRequest(
                f"per_segment model {name!r} is stateful ({spec.task}); a per-segment model "
                "is a classifier of one window, or a whole-clip or embedding model that "
                "hears the segment as one clip"
            )


def _gate_run(spec: ModelSpec) -> int:
    return max(1, round(GATE_RUN_S * spec.sample_rate / spec.hop_samples))


def _gate_spec(gate: GateRequest, spec_of: Callable[[str], ModelSpec]) -> ModelSpec:
    try:
        spec = spec_of(gate.model)
    except ModelNotFound:
        raise InvalidRequest(
            f"gate_model {gate.model!r} is not a model this gateway serves; "
            f"name a {GATE_TASK} model"
        ) from None
    if spec.task != GATE_TASK or len(spec.labels) != 1:
        raise InvalidRequest(
            f"gate_model {spec.name!r} is a {spec.task!r} model; the gate must be a "
            f"{GATE_TASK} model (one speech probability per hop)"
        )
    return spec


def _gate_settings(gate: GateRequest) -> tuple[float, float]:
    threshold = gate.threshold or DEFAULT_GATE_THRESHOLD
    if not (math.isfinite(threshold) and 0.0 < threshold <= 1.0):
        raise InvalidRequest(f"gate_threshold must be above 0 and at most 1, not {threshold:g}")
    padding_ms = DEFAULT_GATE_PADDING_MS if gate.padding_ms is None else gate.padding_ms
    if not 0 <= padding_ms <= MAX_GATE_PADDING_MS:
        raise InvalidRequest(
            f"gate_padding_ms must be between 0 and {MAX_GATE_PADDING_MS}, not {padding_ms}"
        )
    return threshold, padding_ms / 1000
