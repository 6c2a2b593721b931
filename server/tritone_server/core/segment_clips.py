"""Per-segment answers of whole-clip models: each speech segment heard as one clip.

"Who spoke" is asked of a whole utterance, not of a window. The speaker models the gateway
serves (``speaker-embedding``, and every ``tritone train`` model on it) take a whole clip
(``window_samples`` 0): inside, the embedding model cuts the clip into its own partial
windows (1.6 s every 0.77 s), averages their L2-normalised embeddings and normalises the
mean again; a trained speaker model puts its head and its open-set rule (``unknown`` when
the pooled embedding's cosine with every enrolled centroid is below the calibrated
threshold, training/openset.py) on that pooled embedding. Its threshold was calibrated on
whole clips pooled this way, so the principled per-segment answer is the model run once
on the segment's audio: exactly what Classify (or Embed) answers for that audio as a clip.

So this stream keeps the audio the gate may still call speech, and when the gate closes a
segment it sends the segment, widened by the gate's padding on both sides, to the model as
one clip (windowed like Classify for a windowed embedding model, whose window embeddings are
averaged and normalised). A classifier answers its labels (``unknown`` included, when the
model has it); an embedding model answers the unit-length pooled embedding. A segment
longer than `MAX_CLIP_S` is heard by its last `MAX_CLIP_S` (the event says which audio),
which bounds the audio a stream keeps.
"""

from __future__ import annotations

import math

import numpy as np

from tritone_server.audio.formats import PcmFormat, PcmFramer
from tritone_server.audio.window_buffer import WindowBuffer
from tritone_server.core.clips import frame_clip
from tritone_server.core.gate import SpeechGate
from tritone_server.core.inference import Inference
from tritone_server.core.models import Activation, ModelSpec
from tritone_server.core.scoring import FloatArray, top_k
from tritone_server.core.streams import (
    Progress,
    StreamEvent,
    StreamOptions,
    SummaryEvent,
    UtteranceEvent,
    resample,
    resampler_for,
)

__all__ = ["MAX_CLIP_S", "SegmentClipStream", "hears_whole_segments"]

MAX_CLIP_S = 30.0
"""The most audio of one segment the model hears (the segment's last this many seconds)."""


def hears_whole_segments(spec: ModelSpec) -> bool:
    """Whether a per-segment `spec` answers from the segment as one clip (an embedding or
    whole-clip model), rather than from its preferred window (`UtteranceCollector`)."""
    return spec.window_samples == 0 or spec.is_embedding


class SegmentClipStream:
    """One whole-clip model's per-segment answers on a gated stream."""

    def __init__(
        self,
        spec: ModelSpec,
        inference: Inference,
        fmt: PcmFormat,
        options: StreamOptions,
        gate: SpeechGate,
    ) -> None:
        self.spec = spec
        self.gate = gate
        self.inference = inference
        self.k = options.top_k or len(spec.labels)
        self.embedding = spec.is_embedding
        self.activation: Activation = (
            "none" if self.embedding else (options.activation or spec.activation)
        )
        self.rate = spec.sample_rate
        self.framer = PcmFramer(fmt)
        self.input_rate = fmt.sample_rate
        self.resampler = resampler_for(fmt, self.rate)
        self.buffer = WindowBuffer(self.rate * 4)
        self.total = 0
        """Model-rate samples received."""
        self.answered = 0
        """Closed segments of the gate answered so far."""
        self.kept_from = 0
        """Samples before this index are answered or can no longer be speech."""
        self.windows_classified = 0
        self.windows_skipped = 0  # a whole-clip model has no windows for the gate to skip

    @property
    def bytes_received(self) -> int:
        return self.framer.bytes_received

    @property
    def frames_received(self) -> int:
        return self.framer.frames_received

    @property
    def frames_consumed(self) -> int:
        """Input frames no segment can need any more (answered, or never speech)."""
        frames = self.kept_from * self.input_rate // self.rate
        return min(frames, self.framer.frames_received)

    @property
    def duration_s(self) -> float:
        return self.total / self.rate

    def _append(self, samples: FloatArray) -> None:
        if samples.size:
            self.buffer.append(samples)
            self.total += int(samples.shape[0])

    async def feed(self, data: bytes) -> list[StreamEvent]:
        samples = self.framer.push(data)
        if self.resampler is not None:
            samples = await resample(self.resampler, samples)
        self._append(samples)
        return await self._answer(finished=False)

    async def finish(self) -> list[StreamEvent]:
        """Answer every segment left (the gate has heard the whole stream), then summarise."""
        self.framer.finish()
        if self.resampler is not None:
            self._append(self.resampler.flush())
        events = await self._answer(finished=True)
        self.kept_from = self.total
        return [*events, self._summary()]

    def _bounds(self, start_s: float, end_s: float) -> tuple[int, int]:
        """The samples of a segment widened by the padding, within the stream's audio, and
        at most `MAX_CLIP_S` long (its end kept)."""
        pad = self.gate.padding_s
        hi = min(math.ceil((end_s + pad) * self.rate), self.total)
        lo = max(math.floor((start_s - pad) * self.rate), 0, hi - round(MAX_CLIP_S * self.rate))
        return lo, hi

    async def _answer(self, finished: bool) -> list[StreamEvent]:
        gate = self.gate
        events: list[StreamEvent] = []
        while self.answered < len(gate.segments):
            start_s, end_s = gate.segments[self.answered]
            lo, hi = self._bounds(start_s, end_s)
            if not finished and hi < math.ceil((end_s + gate.padding_s) * self.rate):
                break  # the padding after the segment has not arrived yet
            self.answered += 1
            if hi > lo:
                events.append(await self._utterance(start_s, end_s, lo, hi))
        self._discard(finished)
        return events

    def _discard(self, finished: bool) -> None:
        """Forget audio no segment can need: before every unanswered segment (padding
        included, at most its last `MAX_CLIP_S`) and before what the gate may still call
        speech."""
        gate = self.gate
        if finished:
            keep = self.total
        else:
            pending = [gate.segments[i] for i in range(self.answered, len(gate.segments))]
            if gate.open_start is not None:
                pending.append((gate.open_start, max(gate.open_end, gate.heard_s)))
            heard = min(gate.heard_s, self.total / self.rate)
            keep = self._bounds(heard, heard)[0]
            for start_s, end_s in pending:
                keep = min(keep, self._bounds(start_s, end_s)[0])
        self.kept_from = max(self.kept_from, min(keep, self.total))
        self.buffer.discard_before(self.kept_from)

    async def _utterance(self, start_s: float, end_s: float, lo: int, hi: int) -> UtteranceEvent:
        spec = self.spec
        audio = np.array(self.buffer.window(lo, hi - lo), dtype=np.float32)
        if audio.shape[0] < spec.min_samples:  # a blip: zeros up to what the model takes
            audio = np.pad(audio, (0, spec.min_samples - audio.shape[0]))
        clip = frame_clip(spec, audio)
        scores = await self.inference.classify_clip(spec, clip, self.activation)
        self.windows_classified += len(clip.starts)
        labels: list[tuple[str, float]] = []
        embedding: tuple[float, ...] = ()
        if self.embedding:
            pooled = scores.scores.astype(np.float64)
            norm = float(np.linalg.norm(pooled))
            embedding = tuple(float(x) for x in pooled / max(norm, 1e-12))
        else:
            labels = top_k(scores.scores, spec.labels, self.k)
        return UtteranceEvent(
            spec.name,
            start_s,
            end_s,
            labels,
            lo / self.rate,
            hi / self.rate,
            False,
            self._progress(),
            embedding,
        )

    def _progress(self) -> Progress:
        return Progress(self.framer.frames_received, self.kept_from / self.rate)

    def _summary(self) -> SummaryEvent:
        return SummaryEvent(
            bytes_received=self.framer.bytes_received,
            frames_received=self.framer.frames_received,
            model_samples=self.total,
            padding_samples=0,
            windows=self.windows_classified,
            detections=0,
            duration_s=self.framer.frames_received / self.input_rate,
            labels=[],
            model=self.spec.name,
            model_version=self.spec.version,
            progress=Progress(self.framer.frames_received, self.total / self.rate),
        )
