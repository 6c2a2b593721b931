"""Result types and audio inputs of the Tritone SDK.

Small frozen dataclasses: times are float seconds, sample counts ints, sequences tuples.
Labels are always best first.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "Activation",
    "AudioChunk",
    "AudioInput",
    "ClassifyResult",
    "Detection",
    "Embedding",
    "LabelScore",
    "ModelInfo",
    "PcmEncoding",
    "RawPcm",
    "Segment",
    "StreamEvent",
    "StreamSummary",
    "WindowResult",
]

Activation = Literal["softmax", "sigmoid", "none"]
"""How logits become scores: softmax (one label per clip), sigmoid (independent labels),
none (raw logits). Passing None to a call means the model's own default."""


class PcmEncoding(enum.Enum):
    """Sample encoding of raw PCM; channels are interleaved."""

    S16LE = "s16le"
    """Signed 16-bit little-endian integers."""
    F32LE = "f32le"
    """32-bit little-endian IEEE floats in [-1, 1]."""

    @property
    def sample_bytes(self) -> int:
        """Bytes per sample of one channel."""
        return 2 if self is PcmEncoding.S16LE else 4


@dataclass(frozen=True, slots=True)
class RawPcm:
    """Raw PCM audio with its format declared, for `classify()`."""

    data: bytes
    """Whole frames, channels interleaved."""
    sample_rate: int
    """Frames per second."""
    encoding: PcmEncoding
    """How each sample is stored."""
    channels: int = 1
    """Samples per frame."""


AudioInput = str | os.PathLike[str] | bytes | npt.NDArray[Any] | RawPcm
"""What `classify()` accepts: a file path, an encoded file's bytes, a numpy array
(1-D mono or 2-D [frames, channels]) or `RawPcm`."""

AudioChunk = bytes | npt.NDArray[Any]
"""One piece of a stream: PCM bytes in the stream's encoding, or a numpy array."""


@dataclass(frozen=True, slots=True)
class LabelScore:
    """One label and its score."""

    label: str
    """The label's name, as in the model's labels.txt."""
    score: float
    """Its score after the activation: a probability for softmax and sigmoid."""


@dataclass(frozen=True, slots=True)
class Segment:
    """The result of one analysis window of a clip."""

    start_s: float
    """Start of the window, seconds from the start of the clip."""
    end_s: float
    """End of the window (padding excluded), seconds from the start of the clip."""
    labels: tuple[LabelScore, ...]
    """Labels of this window, best first."""


@dataclass(frozen=True, slots=True)
class ClassifyResult:
    """The result of classifying one clip."""

    labels: tuple[LabelScore, ...]
    """Clip-level labels, best first; empty for models that return no labels."""
    model: str
    """The model that answered."""
    model_version: str
    """Its version."""
    duration_s: float
    """Duration of the decoded clip."""
    input_frames: int
    """Frames decoded from the input, at the input's own rate."""
    input_sample_rate: int
    """Sample rate of the input as decoded."""
    segments: tuple[Segment, ...] = ()
    """Per-window results, when requested with ``segments=True``."""

    @property
    def top(self) -> LabelScore | None:
        """The best label, or None when the model returned no labels."""
        return self.labels[0] if self.labels else None


@dataclass(frozen=True, slots=True)
class Embedding:
    """The embedding a backbone model gives one clip."""

    vector: tuple[float, ...]
    """The embedding itself (L2-normalised if the model normalises)."""
    model: str
    """The model that answered."""
    model_version: str
    """Its version."""
    duration_s: float
    """Duration of the decoded clip."""
    input_frames: int
    """Frames decoded from the input, at the input's own rate."""
    input_sample_rate: int
    """Sample rate of the input as decoded."""

    def as_array(self) -> npt.NDArray[np.float32]:
        """The vector as a float32 numpy array, for cosine similarity and the like."""
        return np.asarray(self.vector, dtype=np.float32)


@dataclass(frozen=True, slots=True)
class WindowResult:
    """Stream event: the result of one analysis window."""

    index: int
    """Index of the window in the stream, from 0."""
    start_s: float
    """Start of the window, seconds from the start of the stream."""
    end_s: float
    """End of the window, seconds from the start of the stream."""
    labels: tuple[LabelScore, ...]
    """Labels of this window, best first."""
    interim: bool
    """The window was zero-padded: the stream had not yet (or no longer) filled it."""
    frames_received: int
    """Frames the server had received when it sent this event."""
    consumed_s: float
    """Seconds of audio the server had consumed when it sent this event."""
    model: str = ""
    """The model that classified the window; set when the stream runs ``models`` or a gate.
    With a gate, `index` counts skipped windows too, so it matches an ungated stream's."""


@dataclass(frozen=True, slots=True)
class Detection:
    """Stream event: a label's score rose to the detection threshold and fell back."""

    label: str
    """The detected label."""
    start_s: float
    """When its score reached the threshold, seconds from the start of the stream."""
    end_s: float
    """When it fell back below, seconds from the start of the stream."""
    peak_score: float
    """The highest score in between."""
    frames_received: int
    """Frames the server had received when it sent this event."""
    consumed_s: float
    """Seconds of audio the server had consumed when it sent this event."""
    model: str = ""
    """The model whose score crossed; set when the stream runs ``models`` or a gate."""


@dataclass(frozen=True, slots=True)
class SpeechSegment:
    """Stream event from the gate: speech started (``final`` False) or ended (True)."""

    start_s: float
    """Where speech starts, seconds from the start of the stream."""
    end_s: float
    """Where it ends; while not final, where speech was last heard."""
    final: bool
    """The segment has ended."""
    model: str
    """The gate model."""
    frames_received: int
    """Frames the server had received when it sent this event."""
    consumed_s: float
    """Seconds of audio the server had consumed when it sent this event."""


@dataclass(frozen=True, slots=True)
class Utterance:
    """Stream event from a per-segment model: its one answer for a speech segment."""

    model: str
    """The model that answered."""
    start_s: float
    """Start of the speech segment, seconds from the start of the stream."""
    end_s: float
    """End of the speech segment."""
    labels: tuple[LabelScore, ...]
    """Labels of the segment's most energetic window (a whole-clip model such as a `tritone
    train` speaker model: of the segment's audio, `unknown` for a stranger), best first;
    empty when `too_long` or for an embedding model."""
    window_start_s: float
    """Start of the audio the answer comes from (that window, or the padded segment)."""
    window_end_s: float
    """End of that audio."""
    too_long: bool
    """The segment was longer than one utterance (1.5 of the model's windows): no labels."""
    frames_received: int
    """Frames the server had received when it sent this event."""
    consumed_s: float
    """Seconds of audio the server had consumed when it sent this event."""
    embedding: tuple[float, ...] = ()
    """An embedding model's answer: the segment's pooled, unit-length embedding."""


@dataclass(frozen=True, slots=True)
class ModelSummary:
    """One model's share of a stream that runs several models or a gate."""

    model: str
    """The model."""
    model_version: str
    """Its version."""
    windows: int
    """Windows sent to Triton."""
    windows_skipped: int
    """Windows the gate kept from Triton (no speech near them)."""
    segments: int
    """Speech segments the gate found while the model ran (0 for an ungated model)."""
    model_samples: int
    """Samples at the model's rate made from the stream, each classified or skipped."""
    padding_samples: int
    """Zeros appended to fill the last window."""
    detections: int
    """Detections emitted."""
    labels: tuple[LabelScore, ...]
    """Labels pooled over the windows classified, best first."""
    gated: bool
    """The gate decided when this model ran."""
    gate: bool
    """This model is the stream's gate."""


@dataclass(frozen=True, slots=True)
class StreamSummary:
    """Stream event: the last one, sent after the client ended the stream."""

    bytes_received: int
    """Audio bytes the server received."""
    frames_received: int
    """Whole frames those bytes made."""
    model_samples: int
    """Samples at the model's rate made from those frames, all of them classified."""
    padding_samples: int
    """Zeros appended to fill the last window."""
    windows: int
    """Windows classified."""
    detections: int
    """Detections emitted."""
    duration_s: float
    """Duration of the audio received."""
    labels: tuple[LabelScore, ...]
    """Stream-level labels pooled over all windows, best first."""
    model: str
    """The model that answered."""
    model_version: str
    """Its version."""
    consumed_s: float
    """Seconds of audio the server had consumed when it sent this event."""
    models: tuple[ModelSummary, ...] = ()
    """One entry per model (the gate included) when the stream runs ``models`` or a gate;
    the fields above are then the first model's."""


StreamEvent = WindowResult | Detection | SpeechSegment | Utterance | StreamSummary
"""What iterating a stream yields."""


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A model served by the gateway."""

    name: str
    """Name to pass as ``model=``."""
    version: str
    """Version served."""
    task: str
    """"audio-classification", "voice-activity", "embedding", ..."""
    labels: tuple[str, ...]
    """Its labels, in output order."""
    sample_rate: int
    """Rate the model runs at; the gateway resamples other rates."""
    window_samples: int
    """Samples per analysis window, at `sample_rate`."""
    hop_samples: int
    """Samples between windows, at `sample_rate`."""
    activation: Activation
    """The model's default activation."""
    stateful: bool
    """The gateway carries recurrent state between this model's windows."""
    ready: bool
    """The model can serve requests now."""
    description: str
    """Free text from the model's config."""
    detection_thresholds: tuple[tuple[str, float], ...] = ()
    """The model's calibrated operating point, (label, threshold) pairs: what a stream with
    ``detection_threshold="model"`` detects at. Empty when the model has none."""
    detection_min_windows: int = 0
    """Windows a span must last to count at that operating point (0: no operating point)."""
