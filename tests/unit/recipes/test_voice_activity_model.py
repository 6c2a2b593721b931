"""The committed voice-activity model.pt against silero-vad itself.

model.pt is run the way the gateway runs it (64 zeros before the stream, 576-sample windows
every 512 samples, the LSTM state carried from zeros) and its sigmoid(logits) must equal
silero-vad's own per-chunk probabilities within 1e-4. Needs the Python package silero-vad
(6.2.3) and Debian's pocketsphinx-testdata; without them these tests fail, never skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch

from support.recordings import LIBRIVOX, read_pcm, recording_path
from support.silero import import_silero_vad, reference_model, silero_probabilities, to_float
from tritone_server.triton.torchscript import device_constants, quiet_torchscript

MODEL_PATH = Path(__file__).resolve().parents[3] / "model_repository/voice-activity/1/model.pt"
RECORDING = LIBRIVOX.format("0870")
RATE = 16_000
HOP = 512
CONTEXT = 64
WINDOW = CONTEXT + HOP
TOLERANCE = 1e-4

FloatArray = npt.NDArray[np.float32]


def _load_jit(path: str) -> Any:
    with quiet_torchscript():
        return torch.jit.load(path, map_location="cpu")  # type: ignore[no-untyped-call]


@pytest.fixture(scope="module")
def model() -> Any:
    if not MODEL_PATH.is_file():
        pytest.fail(f"{MODEL_PATH} is missing: run python recipes/build_voice_activity.py")
    return _load_jit(str(MODEL_PATH)).eval()


@pytest.fixture(scope="module")
def silero() -> Iterator[Any]:
    with reference_model(import_silero_vad()) as reference:
        yield reference


def recording() -> FloatArray:
    return to_float(read_pcm(recording_path(RECORDING)))


def gateway_windows(audio: FloatArray) -> FloatArray:
    """64 zeros, then windows padded[k*512 : k*512+576], the last one zero-padded."""
    n = -(-audio.shape[0] // HOP)
    padded = np.zeros(CONTEXT + n * HOP, dtype=np.float32)
    padded[CONTEXT : CONTEXT + audio.shape[0]] = audio
    return np.stack([padded[k * HOP : k * HOP + WINDOW] for k in range(n)])


def model_probabilities(model: Any, streams: list[FloatArray], run: int) -> list[FloatArray]:
    """Streams of equal length side by side in one batch, in runs of up to `run` windows
    per call (as the gateway sends them), the state carried per row."""
    windows = np.stack([gateway_windows(a) for a in streams])  # [B, n, 576]
    count = windows.shape[1]
    # the windows' own samples: window k is waveform[k*512 : k*512 + 576]
    waveform = np.concatenate(
        [windows[:, 0], windows[:, 1:, CONTEXT:].reshape(len(streams), -1)], 1
    )
    state = torch.zeros(len(streams), 2, 128)
    rows = []
    with torch.inference_mode():
        for k in range(0, count, run):
            n = min(run, count - k)
            part = np.ascontiguousarray(waveform[:, k * HOP : k * HOP + CONTEXT + n * HOP])
            logits, state = model(torch.from_numpy(part), state)
            assert logits.shape == (len(streams), n, 1) and state.shape == (len(streams), 2, 128)
            rows.append(torch.sigmoid(logits[:, :, 0]).numpy())
    probs = np.concatenate(rows, axis=1)
    return [probs[i] for i in range(len(streams))]


def test_recording_matches_silero(model: Any, silero: Any) -> None:
    audio = recording()
    reference = silero_probabilities(silero, audio)
    (ours,) = model_probabilities(model, [audio], run=2048)
    assert ours.shape == reference.shape
    assert float(np.abs(ours - reference).max()) <= TOLERANCE
    # Real speech with pauses: the recording must hold both speech and non-speech windows.
    assert reference.max() > 0.9 and reference.min() < 0.2


def test_noise_and_silence_match_silero_in_one_batch(model: Any, silero: Any) -> None:
    rng = np.random.default_rng(7)
    n = 3 * RATE + 100  # ends in a partial, zero-padded window
    white = rng.standard_normal(n).astype(np.float32)
    streams = [
        np.zeros(n, dtype=np.float32),
        0.01 * white,
        np.clip(0.3 * white, -1, 1).astype(np.float32),
        recording()[:n],
    ]
    batched = model_probabilities(model, streams, run=2048)
    for audio, ours in zip(streams, batched, strict=True):
        reference = silero_probabilities(silero, audio)
        assert float(np.abs(ours - reference).max()) <= TOLERANCE
        # alone, window by window, and in short runs: the state carries across calls
        for run in (1, 7):
            (single,) = model_probabilities(model, [audio], run=run)
            assert float(np.abs(ours - single).max()) <= 1e-5


def test_rejects_a_run_that_is_not_whole_hops(model: Any) -> None:
    with pytest.raises(torch.jit.Error, match="waveform must be"):
        model(torch.zeros(1, WINDOW + 100), torch.zeros(1, 2, 128))


def test_rejects_a_wrong_window_length(model: Any) -> None:
    with pytest.raises(torch.jit.Error, match="waveform must be"):
        model(torch.zeros(1, HOP), torch.zeros(1, 2, 128))


def test_graph_pins_no_device(model: Any) -> None:
    assert device_constants(model) == []
