"""silero-vad 6.2.3 itself, the reference the voice-activity model is compared with."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch

from tritone_server.triton.torchscript import quiet_torchscript

RATE = 16_000
HOP = 512

FloatArray = npt.NDArray[np.float32]


def import_silero_vad() -> Any:
    """The silero_vad package; a missing one fails the test with what to install."""
    try:
        return importlib.import_module("silero_vad")
    except ImportError:
        pytest.fail(
            "the Python package silero-vad is not installed (pip install silero-vad==6.2.3): "
            "it is the reference for the voice-activity tests"
        )


@contextmanager
def reference_model(silero_vad: Any) -> Iterator[Any]:
    """silero's own model; torch's thread count is put back afterwards (silero sets it to 1)."""
    threads = torch.get_num_threads()
    with quiet_torchscript():  # silero's model is TorchScript
        model = silero_vad.load_silero_vad()
    try:
        yield model
    finally:
        torch.set_num_threads(threads)


def to_float(pcm: bytes) -> FloatArray:
    return (np.frombuffer(pcm, dtype="<i2") / np.float32(32768.0)).astype(np.float32)


def silero_probabilities(silero: Any, audio: FloatArray) -> FloatArray:
    """silero-vad's own per-chunk probabilities, as its get_speech_timestamps computes them."""
    silero.reset_states()
    x = torch.from_numpy(audio)
    probs = []
    with torch.inference_mode():
        for start in range(0, x.shape[0], HOP):
            chunk = x[start : start + HOP]
            if chunk.shape[0] < HOP:
                chunk = torch.nn.functional.pad(chunk, (0, HOP - chunk.shape[0]))
            probs.append(float(silero(chunk, RATE).item()))
    return np.asarray(probs, dtype=np.float32)
