"""Real human speech from Debian's pocketsphinx-testdata (16 kHz mono s16le WAV files)."""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import tritone

TESTDATA = Path("/usr/share/pocketsphinx/test/data")
LIBRIVOX = "librivox/sense_and_sensibility_01_austen_64kb-{}.wav"


def recording_path(name: str) -> Path:
    """The recording's path; a missing package fails the test with what to install."""
    path = TESTDATA / name
    if not path.is_file():
        pytest.fail(
            f"{path} is missing: install the Debian package pocketsphinx-testdata "
            "(apt-get install pocketsphinx-testdata), the real speech these tests use"
        )
    return path


def read_pcm(path: Path) -> bytes:
    """The s16le frames of a 16 kHz mono WAV file."""
    with wave.open(str(path), "rb") as f:
        assert (f.getframerate(), f.getnchannels(), f.getsampwidth()) == (16000, 1, 2)
        return f.readframes(f.getnframes())


def sentences_with_pauses(
    names: list[str], pauses_s: list[float], *, noise_rms: float = 0.002, seed: int = 0
) -> tuple[bytes, list[tuple[float, float]]]:
    """Real sentences joined by pauses of low Gaussian room noise (a pause before the first
    one, between each two, and after the last: one pause more than sentences), as 16 kHz
    s16le; and where each sentence lies, in seconds."""
    assert len(pauses_s) == len(names) + 1
    rng = np.random.default_rng(seed)

    def noise(seconds: float) -> npt.NDArray[np.int16]:
        samples = rng.normal(0.0, noise_rms * 32767, round(seconds * 16000))
        quantized: npt.NDArray[np.int16] = np.clip(np.rint(samples), -32768, 32767).astype(np.int16)
        return quantized

    parts = [noise(pauses_s[0])]
    placed: list[tuple[float, float]] = []
    at = parts[0].shape[0]
    for name, pause in zip(names, pauses_s[1:], strict=True):
        speech = np.frombuffer(read_pcm(recording_path(name)), dtype="<i2").astype(np.int16)
        placed.append((at / 16000, (at + speech.shape[0]) / 16000))
        parts += [speech, noise(pause)]
        at += speech.shape[0] + parts[-1].shape[0]
    return np.concatenate(parts).astype("<i2").tobytes(), placed


async def stream_pcm(
    client: tritone.AsyncClient,
    pcm: bytes,
    *,
    sample_rate: int = 16_000,
    chunk_bytes: int = 3_200,
    **options: Any,
) -> list[tritone.StreamEvent]:
    """Every event of a stream of s16le mono ``pcm`` sent in ``chunk_bytes`` chunks (100 ms
    at 16 kHz by default); ``options`` go to ``stream_classify``."""
    chunks = [pcm[i : i + chunk_bytes] for i in range(0, len(pcm), chunk_bytes)]
    return [
        event async for event in client.stream_classify(chunks, sample_rate=sample_rate, **options)
    ]
