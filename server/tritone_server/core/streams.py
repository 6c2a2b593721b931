"""One live stream: PCM framing, streaming resampler, window buffer, model state, events.

Audio arrives as raw PCM chunks of any size. Samples at the model's rate collect in a
buffer; every time a full window is available it is classified (all windows a chunk
completes go to the backend as one batch). At the end the tail is classified in one
zero-padded window, so every sample received is classified and the summary says so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tritone_server.audio.dsp import StreamResampler
from tritone_server.audio.formats import PcmFormat, PcmFramer
from tritone_server.audio.window_buffer import WindowBuffer
from tritone_server.core.detection import SpanDetector
from tritone_server.core.gate import SpeechGate
from tritone_server.core.inference import Inference, State, initial_state
from tritone_server.core.limits import MIN_HOP_MS
from tritone_server.core.models import Activation, ModelSpec
from tritone_server.core.scoring import FloatArray, activate, top_k
from tritone_server.core.utterance import Utterance, UtteranceCollector
from tritone_server.errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class StreamOptions:
    top_k: int = 5
    hop_ms: int = 0
    interim_results: bool = False
    detection_threshold: float = 0.0
    detection_labels: tuple[str, ...] = ()
    activation: Activation | None = None
    suppress_windows: bool = False
    model_thresholds: bool = False
    """With detection_threshold 0: detect at the model's own operating point."""


@dataclass(frozen=True, slots=True)
class Progress:
    frames_received: int
    consumed_s: float


@dataclass(frozen=True, slots=True)
class WindowEvent:
    index: int
    start_s: float
    end_s: float
    labels: list[tuple[str, float]]
    interim: bool
    """A guess on the audio so far, zero-padded, before the first full window
    (``interim_results``)."""
    progress: Progress
    model: str = ""
    """Set when the stream runs several models or a gate."""
    padded_tail: bool = False
    """The stream's last window, zero-padded past the end of its audio."""

    @property
    def zero_padded(self) -> bool:
        """Not (or no longer) full of audio: what the wire's ``interim`` flag says."""
        return self.interim or self.padded_tail


@dataclass(frozen=True, slots=True)
class DetectionEvent:
    label: str
    start_s: float
    end_s: float
    peak_score: float
    progress: Progress
    model: str = ""


@dataclass(frozen=True, slots=True)
class SegmentEvent:
    """The gate heard speech start (``final`` False) or end."""

    start_s: float
    end_s: float
    final: bool
    model: str
    progress: Progress


@dataclass(frozen=True, slots=True)
class UtteranceEvent:
    """A per-segment model's one answer for a speech segment."""

    model: str
    start_s: float
    end_s: float
    labels: list[tuple[str, float]]
    """Labels of the window the model preferred (a whole-clip model: of the segment's
    audio), best first; empty if ``too_long`` or for an embedding model."""
    window_start_s: float
    window_end_s: float
    """The audio the answer comes from."""
    too_long: bool
    """The segment was longer than one utterance can be: no labels."""
    progress: Progress
    embedding: tuple[float, ...] = ()
    """An embedding model's answer: the segment's pooled, unit-length embedding."""


@dataclass(frozen=True, slots=True)
class ModelSummary:
    """One model's share of a stream that runs several models or a gate."""

    model: str
    model_version: str
    windows: int
    windows_skipped: int
    segments: int
    model_samples: int
    padding_samples: int
    detections: int
    labels: list[tuple[str, float]]
    gated: bool
    gate: bool


@dataclass(frozen=True, slots=True)
class SummaryEvent:
    bytes_received: int
    frames_received: int
    model_samples: int
    padding_samples: int
    windows: int
    detections: int
    duration_s: float
    labels: list[tuple[str, float]]
    model: str
    model_version: str
    progress: Progress
    models: tuple[ModelSummary, ...] = ()
    """Per model, when the stream runs several models or a gate."""


StreamEvent = WindowEvent | DetectionEvent | SegmentEvent | UtteranceEvent | SummaryEvent

ScoreObserver = Callable[[FloatArray, float, float], list[StreamEvent]]
"""Sees each classified window's scores (start and end in seconds); may answer events."""

# One chunk is worked on in slices of at most this many model-rate samples: a chunk at a low
# declared rate grows many times over when resampled, and one slice at a time keeps both the
# memory and the event loop's time per step bounded whatever the chunk holds.
SLICE_SAMPLES = 64_000
# Resampling more input samples than this runs in a thread, off the event loop.
_INLINE_RESAMPLE = 16_000
# Windows sent to the backend per step (the backend splits further by max_batch_size).
_WINDOWS_PER_STEP = 64


def resampler_for(fmt: PcmFormat, rate: int) -> StreamResampler | None:
    """A streaming resampler from the stream's rate to the model's, None when they agree."""
    return StreamResampler(fmt.sample_rate, rate) if fmt.sample_rate != rate else None


async def resample(resampler: StreamResampler, part: FloatArray) -> FloatArray:
    """``part`` at the model's rate; a large part off the event loop."""
    if part.shape[0] > _INLINE_RESAMPLE:
        return await asyncio.to_thread(resampler.process, part)
    return resampler.process(part)


def detector_for(spec: ModelSpec, options: StreamOptions) -> SpanDetector | None:
    """The stream's own threshold for its watched labels, or the model's operating point when
    the stream asks for it (``model_thresholds``) without a threshold of its own."""
    if options.detection_threshold > 0:
        watched = options.detection_labels or spec.labels
        return SpanDetector(spec.labels, dict.fromkeys(watched, options.detection_threshold), 1)
    if not options.model_thresholds:
        return None
    point = spec.detection
    if not point.thresholds:
        raise InvalidRequest(
            f"model {spec.name!r} has no calibrated detection thresholds; give detection_threshold"
        )
    calibrated = dict(point.thresholds)
    uncalibrated = sorted(set(options.detection_labels) - set(calibrated))
    if uncalibrated:
        raise InvalidRequest(
            f"model {spec.name!r} has no calibrated threshold for {uncalibrated}; "
            "give detection_threshold"
        )
    watched = options.detection_labels or tuple(calibrated)
    return SpanDetector(spec.labels, {k: calibrated[k] for k in watched}, point.min_windows)


def validate_options(spec: ModelSpec, options: StreamOptions) -> int:
    """The hop in model samples; raise InvalidRequest for options the model cannot take."""
    if spec.window_samples == 0:
        raise InvalidRequest(
            f"model {spec.name!r} classifies whole clips (no window_samples); use Classify"
        )
    if spec.is_embedding:
        raise InvalidRequest(f"model {spec.name!r} has no labels to stream; use an embedding call")
    hop = spec.hop_samples
    if options.hop_ms:
        window_ms = spec.window_samples * 1000 / spec.sample_rate
        if not MIN_HOP_MS <= options.hop_ms <= window_ms:
            raise InvalidRequest(
                f"hop_ms={options.hop_ms} must be between {MIN_HOP_MS} ms and the window of "
                f"model {spec.name!r}, {window_ms:g} ms: a longer hop would leave audio between "
                "windows unclassified, a shorter one multiplies the work for no new audio"
            )
        hop = min(max(1, round(options.hop_ms * spec.sample_rate / 1000)), spec.window_samples)
        if spec.stateful and hop != spec.hop_samples:
            raise InvalidRequest(
                f"model {spec.name!r} is stateful and needs its own hop of "
                f"{spec.hop_samples * 1000 / spec.sample_rate:g} ms; leave hop_ms at 0"
            )
    unknown = sorted(set(options.detection_labels) - set(spec.labels))
    if unknown:
        raise InvalidRequest(f"detection_labels {unknown} are not labels of model {spec.name!r}")
    if (
        not 0.0 <= options.detection_threshold <= 1.0
        and (options.activation or spec.activation) != "none"
    ):
        raise InvalidRequest("detection_threshold must be between 0 and 1")
    return hop


class LiveStream:
    def __init__(
        self,
        spec: ModelSpec,
        inference: Inference,
        fmt: PcmFormat,
        options: StreamOptions,
        *,
        gate: SpeechGate | None = None,
        named: bool = False,
        observer: ScoreObserver | None = None,
        per_segment: bool = False,
        min_run: int = 1,
    ) -> None:
        self.spec = spec
        self.gate = gate
        """When set, a window goes to the backend only if the gate hears speech near it."""
        self.event_model = spec.name if named else ""
        self.observer = observer
        self.min_run = min_run
        """Windows to gather before one backend request (the end of the stream sends what
        is left): fewer, larger requests for a model whose windows are short."""
        self.utterances: UtteranceCollector | None = None
        """When set, the model answers once per speech segment instead of per window."""
        if per_segment:
            assert gate is not None, "a per-segment model needs the gate"
            self.utterances = UtteranceCollector(
                gate,
                spec.labels,
                options.top_k or len(spec.labels),
                spec.window_samples / spec.sample_rate,
            )
        self.inference = inference
        self.options = options
        self.hop_samples = validate_options(spec, options)
        self.window_samples = spec.window_samples
        self.rate = spec.sample_rate
        self.activation: Activation = options.activation or spec.activation
        self.framer = PcmFramer(fmt)
        self.input_rate = fmt.sample_rate
        self.resampler = resampler_for(fmt, self.rate)
        # Internally samples are counted from the start of the context zeros that a model
        # with context_samples sees before the stream's first sample.
        self.context = spec.context_samples
        # room for a few windows and hops; WindowBuffer grows if a chunk is larger
        self.buffer = WindowBuffer(
            4 * (self.window_samples + self.hop_samples), leading_zeros=self.context
        )
        self.total = self.context  # model-rate samples received, plus the context
        self.next_start = 0
        self.covered_end = 0
        self.windows_classified = 0
        """Windows the backend classified (``sequence`` counts the skipped ones too)."""
        self.sequence = 0  # windows classified or skipped: the index of the next one
        self.windows_skipped = 0
        """Windows the gate kept from the backend (no speech near)."""
        self.padding_samples = 0
        """Zeros the padded last window added past the end of the audio."""
        self._pending: list[StreamEvent] = []  # detections closed by skipped windows
        self.last_interim_total = self.context
        self.state: State = initial_state(spec) if spec.stateful else {}
        self.score_sum = np.zeros(len(spec.labels), dtype=np.float64)
        self.score_max = np.full(len(spec.labels), -np.inf, dtype=np.float64)
        self.detector = detector_for(spec, options)

    def _seconds(self, index: int) -> float:
        """Stream time of an internal sample index (which counts the context zeros)."""
        return max(index - self.context, 0) / self.rate

    @property
    def bytes_received(self) -> int:
        """Audio bytes taken in so far."""
        return self.framer.bytes_received

    @property
    def frames_received(self) -> int:
        """Input frames taken in so far."""
        return self.framer.frames_received

    @property
    def frames_consumed(self) -> int:
        """Input frames whose audio has been fully classified (a resume point)."""
        covered = max(min(self.covered_end, self.total) - self.context, 0)
        frames = covered * self.input_rate // self.rate
        return min(frames, self.framer.frames_received)

    @property
    def duration_s(self) -> float:
        """Stream time of everything received so far."""
        return self._seconds(self.total)

    def progress(self) -> Progress:
        """Frames received and seconds consumed, as every event carries them."""
        return self._progress()

    def _progress(self) -> Progress:
        return Progress(
            self.framer.frames_received, self._seconds(min(self.covered_end, self.total))
        )

    def _append(self, samples: FloatArray) -> None:
        if samples.size:
            self.buffer.append(samples)
            self.total += int(samples.shape[0])

    def _slice(self, start: int, length: int) -> FloatArray:
        """Samples [start, start+length) zero-padded past the end of what was received."""
        return self.buffer.window(start, length)

    async def feed(self, data: bytes) -> list[StreamEvent]:
        samples = self.framer.push(data)
        # Input samples per slice such that a slice is at most SLICE_SAMPLES at the model rate.
        step = max(1, SLICE_SAMPLES * self.input_rate // self.rate)
        events: list[StreamEvent] = []
        if self.resampler is None and samples.shape[0] <= step:
            # The usual live chunk: one slice, no resampling; most complete no window.
            self._append(samples)
            if self.next_start + self.window_samples <= self.total:
                events = await self._classify_full_windows()
        else:
            events = await self._feed_slices(samples, step)
        options = self.options
        if (
            options.interim_results
            and self.windows_classified == 0
            and not options.suppress_windows
            and self.gate is None  # a gated model waits for speech, never guesses on silence
        ):
            events += await self._interim()
        return events

    async def _feed_slices(self, samples: FloatArray, step: int) -> list[StreamEvent]:
        """A chunk in slices of at most ``step`` input samples, resampled, the event loop
        let go between two slices."""
        events: list[StreamEvent] = []
        for begin in range(0, samples.shape[0], step):
            part = samples[begin : begin + step]
            if self.resampler is not None:
                part = await resample(self.resampler, part)
            self._append(part)
            events += await self._classify_full_windows()
            if begin + step < samples.shape[0]:
                await asyncio.sleep(0)  # other callers run between two slices of one chunk
        return events

    async def finish(self) -> list[StreamEvent]:
        """Classify what is left after the client half-closed, then summarise."""
        self.framer.finish()
        if self.resampler is not None:
            self._append(self.resampler.flush())
        self.min_run = 1
        events = await self._classify_full_windows()
        received_beyond = self.total > max(self.covered_end, self.context)
        if received_beyond and self.next_start < self.total:
            if self.gate is not None and not self.gate.speech_near(*self._span(self.next_start)):
                self._skip(self.next_start)
                events += self._take_pending()
            else:
                self.padding_samples = self.next_start + self.window_samples - self.total
                events += await self._classify([self.next_start], final=True)
        end_s = self._seconds(self.total)
        if self.utterances is not None:
            events += self._utterances(self.utterances.flush())
        if self.detector is not None:
            events += self._detections(self.detector.close_all(end_s))
        return [*events, self._summary()]

    async def _classify_full_windows(self) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        if self.min_run > 1 and (
            self.next_start + (self.min_run - 1) * self.hop_samples + self.window_samples
            > self.total
        ):
            return events  # not enough windows for one run yet
        while self.next_start + self.window_samples <= self.total:
            if self.gate is None:
                starts: list[int] = []
                while (
                    self.next_start + self.window_samples <= self.total
                    and len(starts) < _WINDOWS_PER_STEP
                ):
                    starts.append(self.next_start)
                    self.next_start += self.hop_samples
            else:
                gated = self._next_gated_run()
                events += self._take_pending()
                if gated is None:
                    break  # the gate has not heard far enough yet
                starts = gated
            if starts:
                events += await self._classify(starts)
        self.buffer.discard_before(min(self.next_start, self.total))
        return events

    def _span(self, start: int) -> tuple[float, float]:
        """Stream time of the window that starts at internal index ``start``."""
        return self._seconds(start), self._seconds(start + self.window_samples)

    def _next_gated_run(self) -> list[int] | None:
        """Consecutive full windows near speech (at most a step's worth), skipping those the
        gate keeps from the backend; None when the gate must hear more first."""
        gate = self.gate
        assert gate is not None
        starts: list[int] = []
        while (
            self.next_start + self.window_samples <= self.total and len(starts) < _WINDOWS_PER_STEP
        ):
            speech = gate.speech_near(*self._span(self.next_start))
            if speech is None:
                return starts or None
            if not speech:
                if starts:
                    break  # a run is consecutive windows: send this one first
                self._skip(self.next_start)
            else:
                starts.append(self.next_start)
            self.next_start += self.hop_samples
        return starts

    def _skip(self, start: int) -> None:
        """The window at ``start`` is accounted for without the backend: no speech near."""
        end = min(start + self.window_samples, self.total)
        self.covered_end = max(self.covered_end, end)
        self.sequence += 1
        self.windows_skipped += 1
        if self.utterances is not None:  # no speech near: the segment before is over
            self._pending += self._utterances(self.utterances.flush())
        if self.detector is not None:
            # silence closes a span, as a score below every threshold would
            silent = np.full(len(self.spec.labels), -np.inf, dtype=np.float32)
            start_s, end_s = start / self.rate, self._seconds(end)
            self._pending += self._detections(self.detector.update(silent, start_s, end_s))

    def _take_pending(self) -> list[StreamEvent]:
        pending, self._pending = self._pending, []
        return pending

    async def _interim(self) -> list[StreamEvent]:
        if self.total == 0 or self.total - self.last_interim_total < self.hop_samples:
            return []
        self.last_interim_total = self.total
        windows = self._slice(0, self.window_samples)[None, :]
        logits, _ = await self.inference.run(self.spec, windows, self.state)
        scores = activate(logits, self.activation)[0]
        labels = top_k(scores, self.spec.labels, self.options.top_k)
        end_s = self._seconds(self.total)
        return [WindowEvent(0, 0.0, end_s, labels, True, self._progress(), self.event_model)]

    async def _classify(self, starts: list[int], final: bool = False) -> list[StreamEvent]:
        # starts are one hop apart: one strided view over the buffer, no copy (one window,
        # the usual case of a live stream, is a plain slice)
        if len(starts) == 1:
            windows = self.buffer.window(starts[0], self.window_samples)[None, :]
        else:
            windows = self.buffer.windows(
                starts[0], len(starts), self.hop_samples, self.window_samples
            )
        logits, self.state = await self.inference.run(self.spec, windows, self.state)
        scores = activate(logits, self.activation)
        self.score_sum += scores.sum(axis=0)
        self.score_max = np.maximum(self.score_max, scores.max(axis=0))
        events: list[StreamEvent] = []
        # a per-segment model prefers its segment's most energetic window (utterance.py)
        energies = np.einsum("ij,ij->i", windows, windows) if self.utterances is not None else None
        for i, (row, start) in enumerate(zip(scores, starts, strict=True)):
            end = min(start + self.window_samples, self.total)
            self.covered_end = max(self.covered_end, end)
            index = self.sequence
            self.sequence += 1
            self.windows_classified += 1
            start_s, end_s = start / self.rate, self._seconds(end)
            if self.observer is not None:
                events += self.observer(row, start_s, end_s)
            if self.utterances is not None:
                assert energies is not None
                energy = float(energies[i])
                events += self._utterances(self.utterances.add(row, start_s, end_s, energy))
            elif not self.options.suppress_windows:
                labels = top_k(row, self.spec.labels, self.options.top_k)
                events.append(
                    WindowEvent(
                        index,
                        start_s,
                        end_s,
                        labels,
                        False,
                        self._progress(),
                        self.event_model,
                        padded_tail=final and self.padding_samples > 0,
                    )
                )
            if self.detector is not None:
                events += self._detections(self.detector.update(row, start_s, end_s))
        return events

    def _utterances(self, done: list[Utterance]) -> list[StreamEvent]:
        progress = self._progress()
        return [
            UtteranceEvent(
                self.spec.name,
                u.start_s,
                u.end_s,
                u.labels,
                u.window_start_s,
                u.window_end_s,
                u.too_long,
                progress,
            )
            for u in done
        ]

    def _detections(self, closed: list[tuple[str, float, float, float]]) -> list[StreamEvent]:
        progress = self._progress()
        model = self.event_model
        return [DetectionEvent(label, s, e, p, progress, model) for label, s, e, p in closed]

    def _summary(self) -> SummaryEvent:
        if self.windows_classified:
            pooled = (
                self.score_max
                if self.spec.aggregation == "max"
                else self.score_sum / self.windows_classified
            )
            labels = top_k(pooled.astype(np.float32), self.spec.labels, self.options.top_k)
        else:
            labels = []
        return SummaryEvent(
            bytes_received=self.framer.bytes_received,
            frames_received=self.framer.frames_received,
            model_samples=self.total - self.context,
            padding_samples=self.padding_samples,
            windows=self.windows_classified,
            detections=self.detector.count if self.detector else 0,
            duration_s=self.framer.frames_received / self.input_rate,
            labels=labels,
            model=self.spec.name,
            model_version=self.spec.version,
            progress=Progress(self.framer.frames_received, self._seconds(self.total)),
        )
