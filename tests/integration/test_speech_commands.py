"""speech-commands through the real gateway, held to what its card claims.

The card's figures come from result files (recipes/speech_commands/results/); each test reads
the claim from the file and requires the gateway's result on its own small sample to meet
it within a binomial / Poisson margin (support/claims.py: a model exactly as good as
claimed fails with probability at most 1 %):
- held-out synthetic voices (flite rms and awb, never trained on) saying the ten words:
  accuracy of held_out_synthetic.json;
- real English recordings without command words (pocketsphinx-testdata), streamed at the
  model's own operating point, wideband and as a phone line delivers them: false alarms at
  the upper end of the evaluated rate's 95 % interval (real_speech_evaluation.json);
- the held-out voices' words alone in a stream: detected at the evaluated isolated recall.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import tritone
from recipes.speech_commands import real_speech
from recipes.speech_commands import synthesize as synth
from support.claims import binomial_floor, claim, poisson_ceiling
from support.gateway import REPO
from support.recordings import recording_path

MODEL = "speech-commands"
WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
VOICES = (synth.Voice("flite", "rms", 1.0, 110.0), synth.Voice("flite", "awb", 1.0, 110.0))
# pocketsphinx-testdata's English recordings whose transcripts hold no command word.
NEGATIVES = (
    *(
        f"librivox/sense_and_sensibility_01_austen_64kb-{n}.wav"
        for n in ("0870", "0880", "0890", "0920", "0930")
    ),
    *(f"cards/00{n}.wav" for n in range(1, 6)),
)


@pytest.fixture(scope="module")
def clips() -> list[tuple[str, synth.FloatArray]]:
    synth.require_tools(("flite",))
    jobs = [(voice, word) for voice in VOICES for word in WORDS]
    words = synth.synthesize_many(jobs)
    return [
        (word, synth.place(0.5 * audio, None, center=True))
        for (_, word), audio in zip(jobs, words, strict=True)
    ]


async def test_held_out_voices_say_the_ten_words_as_well_as_the_card_claims(
    client: tritone.AsyncClient, clips: list[tuple[str, synth.FloatArray]]
) -> None:
    claimed = claim("held_out_synthetic.json")["accuracy"]
    results = [
        await client.classify(audio, sample_rate=16000, model=MODEL, top_k=1) for _, audio in clips
    ]
    said = [r.labels[0].label for r in results]
    correct = sum(word == heard for (word, _), heard in zip(clips, said, strict=True))
    pairs = [(word, heard) for (word, _), heard in zip(clips, said, strict=True)]
    floor = binomial_floor(len(clips), claimed)
    assert correct >= floor, f"{correct} of {len(clips)} right (claim {claimed}): {pairs}"


async def _detections(
    client: tritone.AsyncClient, audio: synth.FloatArray, rate: int
) -> list[tritone.Detection]:
    pcm = real_speech.to_s16(audio)
    step = 2 * rate // 10
    chunks = [pcm[i : i + step] for i in range(0, len(pcm), step)]
    events = [
        e
        async for e in client.stream_classify(
            chunks,
            sample_rate=rate,
            model=MODEL,
            detection_threshold="model",
            detection_labels=WORDS,
            suppress_windows=True,
        )
    ]
    summary = events[-1]
    assert isinstance(summary, tritone.StreamSummary)
    found = [e for e in events if isinstance(e, tritone.Detection)]
    assert summary.detections == len(found)
    return found


@pytest.mark.parametrize("condition", ["wideband", "telephone"])
async def test_real_english_speech_raises_no_more_false_alarms_than_claimed(
    client: tritone.AsyncClient, condition: str
) -> None:
    evaluated = claim("real_speech_evaluation.json")["report"][condition]["negatives"]["all"]
    rate = evaluated["per_hour_95ci"][1]
    seconds = 0.0
    alarms: list[tuple[str, str]] = []
    for name in NEGATIVES:
        line = real_speech.Line("pocketsphinx", "test", recording_path(name), "")
        audio = real_speech.load(line)
        seconds += audio.size / 16000
        if condition == "telephone":
            found = await _detections(client, real_speech.telephone(audio), 8000)
        else:
            found = await _detections(client, audio, 16000)
        alarms += [(name, d.label) for d in found]
    ceiling = poisson_ceiling(rate, seconds)
    assert len(alarms) <= ceiling, f"{alarms} in {seconds:.0f} s (claim {rate}/h)"


async def test_held_out_words_alone_are_detected_as_often_as_claimed(
    client: tritone.AsyncClient, clips: list[tuple[str, synth.FloatArray]]
) -> None:
    evaluated = claim("real_speech_evaluation.json")["report"]["wideband"]["recall"]["isolated"]
    pad = np.zeros(8000, dtype=np.float32)
    hits = []
    for word, audio in clips:
        found = await _detections(client, np.concatenate([pad, audio, pad]), 16000)
        hits.append((word, word in {d.label for d in found}))
    floor = binomial_floor(len(clips), evaluated["recall"])
    assert sum(h for _, h in hits) >= floor, f"claim {evaluated['recall']}: {hits}"


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


async def test_the_model_describes_the_operating_point_streams_detect_at(
    client: tritone.AsyncClient,
) -> None:
    """GetModel carries the calibrated thresholds from config.pbtxt, in label order, so a
    caller (and `tritone evaluate --detect`) can see what ``detection_threshold="model"`` is."""
    config = (REPO / "model_repository" / MODEL / "config.pbtxt").read_text(encoding="utf-8")
    found = re.search(r'key: "detection_thresholds" value: \{ string_value: "(.*?)" \}', config)
    assert found is not None, "speech-commands has no detection_thresholds in its config"
    calibrated = json.loads(found.group(1).replace('\\"', '"'))
    info = await client.get_model(MODEL)
    assert dict(info.detection_thresholds) == calibrated
    assert [label for label, _ in info.detection_thresholds] == [
        label for label in info.labels if label in calibrated
    ]
    assert info.detection_min_windows >= 1
