"""Embed through the real gateway: the speaker-embedding backbone on real human speech."""

from __future__ import annotations

import numpy as np
import pytest

import tritone
from support.recordings import LIBRIVOX, read_pcm, recording_path
from support.tones import FREQS, to_s16le, tone

MODEL = "speaker-embedding"


async def embed(client: tritone.AsyncClient, name: str) -> tritone.Embedding:
    return await client.embed(recording_path(name), model=MODEL)


async def test_same_speaker_scores_higher_than_different_speakers(
    client: tritone.AsyncClient,
) -> None:
    a = await embed(client, LIBRIVOX.format("0870"))
    b = await embed(client, LIBRIVOX.format("0880"))
    c = await embed(client, "cards/001.wav")
    for e in (a, b, c):
        assert e.model == MODEL and len(e.vector) == 256
        assert np.linalg.norm(e.as_array()) == pytest.approx(1.0, abs=1e-4)
    same = float(a.as_array() @ b.as_array())
    different = max(float(a.as_array() @ c.as_array()), float(b.as_array() @ c.as_array()))
    assert same > different
    assert same > 0.8


async def test_raw_pcm_and_file_give_the_same_embedding(client: tritone.AsyncClient) -> None:
    path = recording_path("cards/002.wav")
    from_file = await client.embed(path, model=MODEL)
    pcm = tritone.RawPcm(read_pcm(path), 16000, tritone.PcmEncoding.S16LE)
    from_pcm = await client.embed(pcm, model=MODEL)
    assert np.allclose(from_file.as_array(), from_pcm.as_array(), atol=1e-5)
    assert from_file.input_frames == len(pcm.data) // 2


async def test_classify_and_stream_on_a_backbone_are_invalid_argument(
    client: tritone.AsyncClient,
) -> None:
    audio = tone(FREQS[0], 1.0, 16000)
    with pytest.raises(tritone.InvalidArgumentError):
        await client.classify(audio, sample_rate=16000, model=MODEL)
    with pytest.raises(tritone.InvalidArgumentError):
        async for _ in client.stream_classify([to_s16le(audio)], sample_rate=16000, model=MODEL):
            pass


async def test_the_catalogue_describes_the_backbone(client: tritone.AsyncClient) -> None:
    info = await client.get_model(MODEL)
    assert info.task == "embedding" and info.labels == ()
    assert info.sample_rate == 16000 and info.window_samples == 0
