"""speech-commands through the real gateway: held-out synthetic voices saying the ten words.

The voices (flite rms and awb) were never used in training; the recipe reports the model's
held-out accuracy in its card, and these clips must classify at about that rate.
"""

from __future__ import annotations

import numpy as np
import pytest

import tritone
from recipes.speech_commands import synthesize as synth

MODEL = "speech-commands"
WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
VOICES = (synth.Voice("flite", "rms", 1.0, 110.0), synth.Voice("flite", "awb", 1.0, 110.0))


@pytest.fixture(scope="module")
def clips() -> list[tuple[str, synth.FloatArray]]:
    synth.require_tools(("flite",))
    jobs = [(voice, word) for voice in VOICES for word in WORDS]
    words = synth.synthesize_many(jobs)
    return [
        (word, synth.place(0.5 * audio, None, center=True))
        for (_, word), audio in zip(jobs, words, strict=True)
    ]


async def test_held_out_voices_say_the_ten_words(
    client: tritone.AsyncClient, clips: list[tuple[str, synth.FloatArray]]
) -> None:
    results = [
        await client.classify(audio, sample_rate=16000, model=MODEL, top_k=1) for _, audio in clips
    ]
    said = [r.labels[0].label for r in results]
    correct = sum(word == heard for (word, _), heard in zip(clips, said, strict=True))
    pairs = [(word, heard) for (word, _), heard in zip(clips, said, strict=True)]
    assert correct >= 14, f"{correct} of {len(clips)} right: {pairs}"


async def test_a_stream_of_words_gives_a_result_per_window(
    client: tritone.AsyncClient, clips: list[tuple[str, synth.FloatArray]]
) -> None:
    chosen = [clips[i] for i in (0, 1, 8)]  # yes, no, stop by one held-out voice
    audio = np.concatenate([a for _, a in chosen])
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    chunks = [pcm[i : i + 3200] for i in range(0, len(pcm), 3200)]
    events = [
        e async for e in client.stream_classify(chunks, sample_rate=16000, model=MODEL, top_k=1)
    ]
    windows = [e for e in events if isinstance(e, tritone.WindowResult)]
    summary = events[-1]
    assert isinstance(summary, tritone.StreamSummary)
    assert summary.frames_received == audio.shape[0] == 48000
    info = await client.get_model(MODEL)
    hop_s = info.hop_samples / 16000
    starts = np.arange(0.0, 3.0 - 1.0 + 1e-9, hop_s)
    assert [w.start_s for w in windows] == pytest.approx(list(starts))
    assert all(w.end_s == pytest.approx(w.start_s + 1.0) for w in windows)
    aligned = [w for w in windows if float(w.start_s).is_integer()]  # exactly one word each
    assert len(aligned) == 3
    heard = [w.labels[0].label for w in aligned]
    assert sum(h == w for h, (w, _) in zip(heard, chosen, strict=True)) >= 2, heard
