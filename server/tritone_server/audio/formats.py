"""Audio formats and limits, and raw PCM: the fast path for clips and streams.

Every byte a caller sends is untrusted (shared/DESIGN.md, "Untrusted audio"). Raw PCM
(`pcm_to_float`, `PcmFramer`) is plain numpy on bytes: it checks whole frames, finite floats
and the configured caps (`AudioLimits`). No function here loops over samples in Python.
Encoded files are `decode`'s job; downmix, resampling and windows are `dsp`'s.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import numpy as np
import numpy.typing as npt

from tritone_server.audio.dsp import mean_of_columns
from tritone_server.errors import AudioError, AudioLimitError

__all__ = [
    "AudioLimits",
    "Bytes",
    "DecodedAudio",
    "Float32Array",
    "PcmEncoding",
    "PcmFormat",
    "PcmFramer",
    "PreparedAudio",
    "nbytes",
    "pcm_to_float",
    "pcm_to_mono",
]

Float32Array: TypeAlias = npt.NDArray[np.float32]
#: what the decoding functions accept as bytes
Bytes: TypeAlias = bytes | bytearray | memoryview

_S16_SCALE: Final = np.float32(1.0 / 32768.0)


@dataclass(frozen=True, slots=True)
class AudioLimits:
    """Caps applied to every clip and stream."""

    max_duration_s: float = 600.0
    max_channels: int = 8
    min_sample_rate: int = 1000
    max_sample_rate: int = 384000
    #: size of an encoded file or of a raw PCM clip as received
    max_encoded_bytes: int = 64 * 1024 * 1024
    decode_timeout_s: float = 30.0
    #: size of the decoded float32 samples (all channels); bounds decompression bombs whose
    #: duration is within `max_duration_s` but whose rate and channels are at the maximum
    max_decoded_bytes: int = 512 * 1024 * 1024

    def __post_init__(self) -> None:
        if not (self.max_duration_s > 0 and math.isfinite(self.max_duration_s)):
            raise ValueError("max_duration_s must be a positive number of seconds")
        if self.max_channels < 1:
            raise ValueError("max_channels must be at least 1")
        if not 0 < self.min_sample_rate <= self.max_sample_rate:
            raise ValueError("need 0 < min_sample_rate <= max_sample_rate")
        if self.max_encoded_bytes < 1 or self.max_decoded_bytes < 1:
            raise ValueError("byte limits must be positive")
        if not self.decode_timeout_s > 0:
            raise ValueError("decode_timeout_s must be positive")

    def max_frames(self, sample_rate: int, channels: int) -> tuple[int, str]:
        """The most frames a clip at this rate and channel count may hold, and which limit
        sets it ("duration" or "decoded_bytes")."""
        by_duration = math.floor(self.max_duration_s * sample_rate)
        by_bytes = self.max_decoded_bytes // (4 * channels)
        if by_bytes < by_duration:
            return by_bytes, "decoded_bytes"
        return by_duration, "duration"

    def check_sample_rate(self, sample_rate: int) -> None:
        if not self.min_sample_rate <= sample_rate <= self.max_sample_rate:
            raise AudioLimitError(
                f"the audio's sample rate of {sample_rate} Hz is outside the supported range "
                f"of {self.min_sample_rate} to {self.max_sample_rate} Hz",
                limit="sample_rate",
            )

    def check_channels(self, channels: int) -> None:
        if channels > self.max_channels:
            raise AudioLimitError(
                f"the audio has {channels} channels, more than the limit of {self.max_channels}",
                limit="channels",
            )

    def check_encoded_size(self, size: int, what: str = "audio") -> None:
        if size == 0:
            raise AudioError(f"the {what} is empty: the request carried 0 bytes")
        if size > self.max_encoded_bytes:
            raise AudioLimitError(
                f"the {what} is {size} bytes, more than the limit of "
                f"{self.max_encoded_bytes} bytes",
                limit="encoded_bytes",
            )

    def check_frames(self, frames: int, sample_rate: int, channels: int, *, declared: bool) -> None:
        cap, which = self.max_frames(sample_rate, channels)
        if frames <= cap:
            return
        how = "its header declares" if declared else "it holds at least"
        if which == "duration":
            raise AudioLimitError(
                f"the audio is longer than the limit of {self.max_duration_s:g} s "
                f"({how} {frames / sample_rate:.1f} s)",
                limit="duration",
            )
        raise AudioLimitError(
            f"the audio decodes to more than the limit of {self.max_decoded_bytes} bytes "
            f"({how} {frames} frames of {channels} channels)",
            limit="decoded_bytes",
        )


# --------------------------------------------------------------------------------------------
# Formats and decoded audio
# --------------------------------------------------------------------------------------------


class PcmEncoding(enum.Enum):
    """Sample encodings accepted as raw PCM (little-endian, interleaved)."""

    S16LE = "s16le"
    F32LE = "f32le"

    @property
    def bytes_per_sample(self) -> int:
        return 2 if self is PcmEncoding.S16LE else 4

    @property
    def dtype(self) -> np.dtype[np.int16] | np.dtype[np.float32]:
        if self is PcmEncoding.S16LE:
            return np.dtype("<i2")
        return np.dtype("<f4")


@dataclass(frozen=True, slots=True)
class PcmFormat:
    """What the caller declares about raw PCM."""

    encoding: PcmEncoding
    sample_rate: int
    channels: int = 1

    @property
    def frame_bytes(self) -> int:
        return self.encoding.bytes_per_sample * self.channels

    def validate(self, limits: AudioLimits) -> None:
        """Raise AudioError (AudioLimitError for a cap) if this format cannot be accepted."""
        if not isinstance(self.encoding, PcmEncoding):
            raise AudioError(
                f"the raw audio encoding {self.encoding!r} is not supported; use s16le or f32le"
            )
        if isinstance(self.sample_rate, bool) or not isinstance(self.sample_rate, int):
            raise AudioError(
                f"the sample rate must be a whole number of Hz, not {self.sample_rate!r}"
            )
        if self.sample_rate <= 0:
            raise AudioError(
                f"the raw audio needs a positive sample rate; got {self.sample_rate} Hz"
            )
        if isinstance(self.channels, bool) or not isinstance(self.channels, int):
            raise AudioError(f"the channel count must be a whole number, not {self.channels!r}")
        if self.channels <= 0:
            raise AudioError(f"the raw audio needs at least 1 channel; got {self.channels}")
        limits.check_sample_rate(self.sample_rate)
        limits.check_channels(self.channels)


@dataclass(frozen=True, slots=True, eq=False)
class DecodedAudio:
    """Decoded audio: float32 samples of shape [frames, channels], C-contiguous."""

    samples: Float32Array
    sample_rate: int

    def __post_init__(self) -> None:
        s = self.samples
        if s.dtype != np.float32 or s.ndim != 2 or not s.flags.c_contiguous:
            raise ValueError("DecodedAudio.samples must be C-contiguous float32 [frames, channels]")

    @property
    def frames(self) -> int:
        return int(self.samples.shape[0])

    @property
    def channels(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate


@dataclass(frozen=True, slots=True, eq=False)
class PreparedAudio:
    """A clip ready for a model: mono float32 at the model's rate, and what was received."""

    samples: Float32Array
    """[n] mono float32 at `sample_rate`."""
    sample_rate: int
    input_frames: int
    input_sample_rate: int
    input_channels: int

    @property
    def duration_s(self) -> float:
        """Length of the audio as received."""
        return self.input_frames / self.input_sample_rate


# --------------------------------------------------------------------------------------------
# Raw PCM
# --------------------------------------------------------------------------------------------


def nbytes(data: Bytes) -> int:
    """Size of `data` in bytes, whatever buffer type it is."""
    return data.nbytes if isinstance(data, memoryview) else len(data)


def _pcm_frames(buf: bytes | bytearray | memoryview, frames: int, fmt: PcmFormat) -> Float32Array:
    """The first `frames` whole frames of `buf` as float32 [frames, channels]."""
    raw = np.frombuffer(buf, dtype=fmt.encoding.dtype, count=frames * fmt.channels)
    if fmt.encoding is PcmEncoding.S16LE:
        out = raw.astype(np.float32)
        out *= _S16_SCALE
    else:
        _check_finite(raw)
        out = raw.astype(np.float32)  # native byte order, and a copy the caller owns
    return out.reshape(frames, fmt.channels)


def _pcm_mono(buf: bytes | bytearray | memoryview, frames: int, fmt: PcmFormat) -> Float32Array:
    """The first `frames` whole frames of `buf` as mono float32 [frames]."""
    if fmt.channels == 1:
        return _pcm_frames(buf, frames, fmt).reshape(frames)
    raw = np.frombuffer(buf, dtype=fmt.encoding.dtype, count=frames * fmt.channels)
    if fmt.encoding is PcmEncoding.F32LE:
        _check_finite(raw)
    mono = mean_of_columns(raw.reshape(frames, fmt.channels))
    if fmt.encoding is PcmEncoding.S16LE:
        mono *= _S16_SCALE
    return mono


def _check_finite(raw: npt.NDArray[Any]) -> None:
    finite = np.isfinite(raw)
    if not finite.all():
        first = int(np.argmin(finite))
        raise AudioError(
            f"the f32le audio contains NaN or infinite samples (the first at sample {first})"
        )


def _checked_frames(data: Bytes, fmt: PcmFormat, limits: AudioLimits) -> int:
    fmt.validate(limits)
    size = nbytes(data)
    limits.check_encoded_size(size, "raw audio")
    frames, rest = divmod(size, fmt.frame_bytes)
    if rest:
        raise AudioError(
            f"raw {fmt.encoding.value} audio with {fmt.channels} channel(s) comes in "
            f"{fmt.frame_bytes}-byte frames, but {size} bytes is not a whole number of "
            f"frames ({rest} bytes left over)"
        )
    limits.check_frames(frames, fmt.sample_rate, fmt.channels, declared=False)
    return frames


def pcm_to_float(data: Bytes, fmt: PcmFormat, limits: AudioLimits) -> DecodedAudio:
    """Convert a whole raw PCM clip to float32 [frames, channels] (s16 scaled by 1/32768)."""
    frames = _checked_frames(data, fmt, limits)
    return DecodedAudio(_pcm_frames(data, frames, fmt), fmt.sample_rate)


def pcm_to_mono(data: Bytes, fmt: PcmFormat, limits: AudioLimits) -> Float32Array:
    """A whole raw PCM clip as mono float32 [frames] in one pass (the same checks and the
    same values as `dsp.to_mono(pcm_to_float(...).samples)`)."""
    frames = _checked_frames(data, fmt, limits)
    return _pcm_mono(data, frames, fmt)


class PcmFramer:
    """Rejoins raw PCM chunks that split frames and converts each chunk to mono float32."""

    __slots__ = ("_fmt", "_frames_received", "_pending", "_received")

    def __init__(self, fmt: PcmFormat) -> None:
        self._fmt = fmt
        self._pending = b""
        self._received = 0
        self._frames_received = 0

    @property
    def format(self) -> PcmFormat:
        return self._fmt

    @property
    def pending_bytes(self) -> int:
        """Bytes of an incomplete frame kept for the next `push`."""
        return len(self._pending)

    @property
    def bytes_received(self) -> int:
        return self._received

    @property
    def frames_received(self) -> int:
        """Whole frames converted so far."""
        return self._frames_received

    def push(self, data: bytes | bytearray | memoryview) -> Float32Array:
        """Mono float32 samples of every whole frame available so far.

        Raises AudioError (and keeps its state) if f32 samples are NaN or infinite.
        """
        size = nbytes(data)
        buf = self._pending + bytes(data) if self._pending else data
        total = len(self._pending) + size
        frames = total // self._fmt.frame_bytes
        mono = _pcm_mono(buf, frames, self._fmt)
        used = frames * self._fmt.frame_bytes
        self._pending = bytes(memoryview(buf).cast("B")[used:]) if used < total else b""
        self._received += size
        self._frames_received += frames
        return mono

    def finish(self) -> None:
        """Call at the end of a stream: AudioError if it ended inside a frame."""
        if self._pending:
            raise AudioError(
                f"the raw audio ended with {len(self._pending)} bytes that are not a whole "
                f"{self._fmt.frame_bytes}-byte frame"
            )
