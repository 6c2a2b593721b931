"""Real human speech from Debian's pocketsphinx-testdata (16 kHz mono s16le WAV files)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

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
