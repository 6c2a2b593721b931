"""Real human speech from Debian's pocketsphinx-testdata (16 kHz mono s16le WAV files)."""

from __future__ import annotations

import wave
from pathlib import Path

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
