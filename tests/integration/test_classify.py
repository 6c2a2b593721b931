"""Classify through the real gateway and the real Triton: the tone model's exact labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tritone
from support.recordings import recording_path
from support.tones import FREQS, LABELS, encode, to_s16le, tone

RATES = (8000, 16000, 44100, 48000)
CHANNELS = (1, 2)
CONTAINERS = ("wav", "flac", "ogg")


def _case_index(*parts: object) -> int:
    """A different tone for each case, the same one on every run."""
    return sum(len(str(p)) * (i + 3) for i, p in enumerate(parts)) % len(FREQS)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("container", CONTAINERS)
async def test_encoded_files_give_the_tone_label(
    client: tritone.AsyncClient, container: str, rate: int, channels: int
) -> None:
    index = (RATES.index(rate) * 3 + CHANNELS.index(channels) + CONTAINERS.index(container)) % 8
    audio = tone(FREQS[index], 1.0, rate, channels)
    result = await client.classify(encode(audio, rate, container), model="tones")
    assert result.labels[0].label == LABELS[index]
    assert result.labels[0].score > 0.9
    assert result.input_sample_rate == rate
    assert result.duration_s == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("encoding", ["s16le", "f32le"])
async def test_raw_pcm_gives_the_tone_label(
    client: tritone.AsyncClient, encoding: str, rate: int, channels: int
) -> None:
    index = (RATES.index(rate) * 2 + CHANNELS.index(channels) * 5 + len(encoding)) % 8
    audio = tone(FREQS[index], 0.75, rate, channels)
    if encoding == "s16le":
        pcm = tritone.RawPcm(to_s16le(audio), rate, tritone.PcmEncoding.S16LE, channels)
    else:
        pcm = tritone.RawPcm(
            audio.astype("<f4").tobytes(), rate, tritone.PcmEncoding.F32LE, channels
        )
    result = await client.classify(pcm, model="tones", top_k=3)
    assert result.labels[0].label == LABELS[index]
    assert len(result.labels) == 3
    assert result.input_frames == audio.shape[0]


async def test_numpy_array_and_path_inputs(client: tritone.AsyncClient, tmp_path: Path) -> None:
    audio = tone(FREQS[6], 1.0, 22050)
    from_array = await client.classify(audio, sample_rate=22050, model="tones")
    path = tmp_path / "tone.flac"
    path.write_bytes(encode(audio, 22050, "flac"))
    from_path = await client.classify(path, model="tones")
    assert from_array.labels[0].label == from_path.labels[0].label == LABELS[6]


async def test_segments_follow_a_tone_change(client: tritone.AsyncClient) -> None:
    rate = 16000
    audio = np.concatenate([tone(FREQS[1], 2.0, rate), tone(FREQS[5], 2.0, rate)])
    result = await client.classify(audio, sample_rate=rate, model="tones", segments=True, top_k=1)
    assert result.segments, "segments were requested"
    for segment in result.segments:
        if segment.end_s <= 2.0:
            assert segment.labels[0].label == LABELS[1]
        elif segment.start_s >= 2.0:
            assert segment.labels[0].label == LABELS[5]
    assert result.segments[-1].end_s == pytest.approx(4.0)
    assert {x.label for x in result.labels} <= set(LABELS)


async def test_short_clip_is_padded_to_one_window(client: tritone.AsyncClient) -> None:
    audio = tone(FREQS[3], 0.1, 16000)
    result = await client.classify(audio, sample_rate=16000, model="tones", segments=True)
    assert result.labels[0].label == LABELS[3]
    assert len(result.segments) == 1


async def test_top_k_and_activation(client: tritone.AsyncClient) -> None:
    audio = tone(FREQS[0], 0.5, 16000)
    everything = await client.classify(audio, sample_rate=16000, model="tones", top_k=100)
    assert sorted(x.label for x in everything.labels) == sorted(LABELS)
    scores = [x.score for x in everything.labels]
    assert scores == sorted(scores, reverse=True)
    assert sum(scores) == pytest.approx(1.0, abs=1e-4)
    raw = await client.classify(audio, sample_rate=16000, model="tones", activation="none")
    assert raw.labels[0].label == LABELS[0]
    assert raw.labels[0].score != pytest.approx(everything.labels[0].score)


async def test_default_model_is_used_when_none_is_named(client: tritone.AsyncClient) -> None:
    """The default is voice-activity: a recording of a person reading scores as speech."""
    result = await client.classify(
        recording_path("librivox/sense_and_sensibility_01_austen_64kb-0880.wav")
    )
    assert result.model == "voice-activity"
    assert result.labels[0].label == "speech" and result.labels[0].score > 0.5
    silent = await client.classify(np.zeros(16000, dtype=np.float32), sample_rate=16000)
    assert silent.model == "voice-activity" and silent.labels[0].score < 0.5
