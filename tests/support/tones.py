"""Test signals for the ``tones`` model: which of 8 half-octave bands holds the tone."""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt

FREQS = (250, 354, 500, 707, 1000, 1414, 2000, 2828)
LABELS = tuple(f"tone_{f}" for f in FREQS)


def tone(
    freq: float, seconds: float, rate: int, channels: int = 1, amplitude: float = 0.5
) -> npt.NDArray[np.float32]:
    """A sine; [frames] for mono, [frames, channels] otherwise (same tone on every channel)."""
    t = np.arange(round(seconds * rate)) / rate
    mono: npt.NDArray[np.float32] = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    if channels == 1:
        return mono
    stacked: npt.NDArray[np.float32] = np.repeat(mono[:, None], channels, axis=1)
    return stacked


def tone_sequence(
    indices: list[int], segment_s: float, rate: int, channels: int = 1
) -> npt.NDArray[np.float32]:
    """Tones back to back, each ``segment_s`` long, phase-continuous within a segment."""
    return np.concatenate([tone(FREQS[i], segment_s, rate, channels) for i in indices])


def to_s16le(samples: npt.NDArray[np.float32]) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def encode(samples: npt.NDArray[np.float32], rate: int, container: str) -> bytes:
    """Encode with soundfile (a test dependency through the server extra)."""
    import soundfile as sf

    formats = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS")}
    fmt, subtype = formats[container]
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]
