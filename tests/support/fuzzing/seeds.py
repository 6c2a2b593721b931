"""Valid encoded files of every container the gateway decodes, made with soundfile.

They are the starting points the mutators corrupt: a mutation of a valid file reaches much
deeper into a parser than random bytes, which most parsers refuse at the magic number.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import soundfile as sf

# Name -> (libsndfile major format, subtype). Every container in
# tritone_server.audio.decode.SUPPORTED_CONTAINERS, OGG twice (Vorbis and Opus), WAV also
# as float (the only container that carries NaN and infinities).
CONTAINERS: Final[dict[str, tuple[str, str]]] = {
    "wav": ("WAV", "PCM_16"),
    "wav_float": ("WAV", "FLOAT"),
    "wavex": ("WAVEX", "PCM_24"),
    "rf64": ("RF64", "PCM_16"),
    "w64": ("W64", "PCM_16"),
    "aiff": ("AIFF", "PCM_16"),
    "au": ("AU", "PCM_16"),
    "caf": ("CAF", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "ogg_vorbis": ("OGG", "VORBIS"),
    "ogg_opus": ("OGG", "OPUS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
}

# (sample rate, channels, seconds): short clips so that a fuzz input costs milliseconds.
# Opus takes 8, 12, 16, 24 or 48 kHz only; MP3 takes the MPEG rates.
_SHAPES: Final = ((16000, 1, 0.6), (48000, 2, 0.25), (8000, 1, 1.0))


@dataclass(frozen=True, slots=True)
class Seed:
    name: str  # container key and shape, e.g. "flac-48000x2"
    container: str  # key of CONTAINERS
    data: bytes


def tone(rate: int, channels: int, seconds: float, hz: float = 1000.0) -> npt.NDArray[np.float32]:
    """A sine at `hz` (a different phase per channel), float32 [frames, channels]."""
    t = np.arange(int(rate * seconds), dtype=np.float64) / rate
    cols = [0.5 * np.sin(2 * np.pi * hz * t + c) for c in range(channels)]
    out: npt.NDArray[np.float32] = np.stack(cols, axis=1).astype(np.float32)
    return out


def encode(samples: npt.NDArray[np.float32], rate: int, container: str) -> bytes:
    major, subtype = CONTAINERS[container]
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format=major, subtype=subtype)
    return buf.getvalue()


def make_seeds() -> tuple[list[Seed], dict[str, str]]:
    """Every container in every shape libsndfile can write here, and why the rest could not
    be written (e.g. an MP3 encoder missing from this libsndfile build)."""
    seeds: list[Seed] = []
    failed: dict[str, str] = {}
    for container in CONTAINERS:
        for rate, channels, seconds in _SHAPES:
            try:
                data = encode(tone(rate, channels, seconds), rate, container)
            except (sf.LibsndfileError, ValueError, TypeError, RuntimeError) as exc:
                failed[f"{container}-{rate}x{channels}"] = str(exc)
                continue
            seeds.append(Seed(f"{container}-{rate}x{channels}", container, data))
    return seeds, failed
