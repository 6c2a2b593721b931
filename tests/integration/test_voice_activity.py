"""The voice-activity model through the real gateway and the real Triton, against silero-vad.

Real human speech from Debian's pocketsphinx-testdata is streamed as 16 kHz s16le; window i
of the stream must score what silero-vad's own model gives its chunk i, and the detections
must lie where silero's get_speech_timestamps finds speech. Needs the Python package
silero-vad (6.2.3) and pocketsphinx-testdata; without them these tests fail, never skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch

import tritone
from support.recordings import read_pcm, recording_path, stream_pcm
from support.silero import (
    import_silero_vad,
    reference_model,
    silero_probabilities,
    to_float,
)

pytestmark = pytest.mark.integration

MODEL = "voice-activity"
# Two words apart (two speech segments), and a long read sentence (one segment, with dips).
RECORDINGS = ["cards/004.wav", "librivox/sense_and_sensibility_01_austen_64kb-0890.wav"]
RATE = 16_000
HOP = 512
CONTEXT = 64
TOLERANCE = 1e-4
SLACK_S = 0.3

FloatArray = npt.NDArray[np.float32]


@pytest.fixture(scope="module")
def silero_vad() -> Any:
    return import_silero_vad()


@pytest.fixture(scope="module")
def silero(silero_vad: Any) -> Iterator[Any]:
    with reference_model(silero_vad) as model:
        yield model


def silero_speech(silero_vad: Any, silero: Any, audio: FloatArray) -> list[tuple[float, float]]:
    stamps = silero_vad.get_speech_timestamps(
        torch.from_numpy(audio), silero, sampling_rate=RATE, return_seconds=True
    )
    return [(float(s["start"]), float(s["end"])) for s in stamps]


def speech_score(labels: tuple[tritone.LabelScore, ...]) -> float:
    assert [item.label for item in labels] == ["speech"]
    return labels[0].score


@pytest.mark.parametrize("name", RECORDINGS)
async def test_stream_matches_silero_vad(
    client: tritone.AsyncClient, silero_vad: Any, silero: Any, name: str
) -> None:
    pcm = read_pcm(recording_path(name))
    audio = to_float(pcm)
    reference = silero_probabilities(silero, audio)
    speech = silero_speech(silero_vad, silero, audio)
    assert speech, f"silero finds no speech in {name}"

    events = await stream_pcm(client, pcm, model=MODEL, detection_threshold=0.5, top_k=1)
    windows = [e for e in events if isinstance(e, tritone.WindowResult)]
    detections = [e for e in events if isinstance(e, tritone.Detection)]
    summary = events[-1]
    assert isinstance(summary, tritone.StreamSummary)

    # (a) window i is silero's chunk i: same span, same probability.
    assert [w.index for w in windows] == list(range(reference.shape[0]))
    for w in windows:
        assert w.start_s == pytest.approx(w.index * HOP / RATE)
        assert w.end_s == pytest.approx(min((w.index + 1) * HOP, audio.shape[0]) / RATE)
    scores = np.array([speech_score(w.labels) for w in windows], dtype=np.float32)
    assert float(np.abs(scores - reference).max()) <= TOLERANCE
    assert summary.windows == len(windows)
    assert summary.model_samples == audio.shape[0]
    assert speech_score(summary.labels) == pytest.approx(float(reference.max()), abs=TOLERANCE)

    # (b) detections lie within silero's speech segments, and cover each of them.
    assert detections and summary.detections == len(detections)
    assert all(d.label == "speech" and d.peak_score >= 0.5 for d in detections)
    for d in detections:
        assert any(s - SLACK_S <= d.start_s and d.end_s <= e + SLACK_S for s, e in speech), (
            f"detection {d.start_s:.3f}-{d.end_s:.3f} s outside silero's speech {speech}"
        )
    for s, e in speech:
        inside = [d for d in detections if s - SLACK_S <= d.start_s and d.end_s <= e + SLACK_S]
        assert inside, f"no detection for silero's speech {s:.3f}-{e:.3f} s"
        assert abs(inside[0].start_s - s) <= SLACK_S
        assert abs(inside[-1].end_s - e) <= SLACK_S


async def test_silence_gives_no_detection(client: tritone.AsyncClient) -> None:
    pcm = bytes(3 * RATE * 2)  # 3 s of s16le zeros
    events = await stream_pcm(client, pcm, model=MODEL, detection_threshold=0.5, top_k=1)
    windows = [e for e in events if isinstance(e, tritone.WindowResult)]
    assert len(windows) == -(-3 * RATE // HOP)
    assert not [e for e in events if isinstance(e, tritone.Detection)]
    assert max(speech_score(w.labels) for w in windows) < 0.5
    summary = events[-1]
    assert isinstance(summary, tritone.StreamSummary) and summary.detections == 0


async def test_classify_recording_says_speech(client: tritone.AsyncClient, silero: Any) -> None:
    path = recording_path(RECORDINGS[1])
    audio = to_float(read_pcm(path))
    reference = silero_probabilities(silero, audio)
    result = await client.classify(path, model=MODEL, top_k=1, segments=True)
    assert result.top is not None and result.top.label == "speech"
    # Every whole window of the clip is a silero chunk; the clip's score is their maximum.
    full = (audio.shape[0] + CONTEXT - (CONTEXT + HOP)) // HOP + 1
    segment_scores = np.array([speech_score(s.labels) for s in result.segments[:full]])
    assert float(np.abs(segment_scores - reference[:full]).max()) <= TOLERANCE
    assert result.top.score >= float(reference[:full].max()) - TOLERANCE
