"""Voice activity gating speech-commands on one stream, through the real gateway and Triton.

Real read sentences from pocketsphinx-testdata joined by 1-3 s pauses of low room noise (about
half the audio is pause). The same audio is streamed twice: speech-commands alone, and
speech-commands gated by voice-activity. The gated stream must send speech-commands' windows
to Triton only near the speech the gate found, give those windows the results the ungated
stream gives them, and account for every sample.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import tritone
from support.gateway import REPO, RunningGateway
from support.recordings import LIBRIVOX, sentences_with_pauses, stream_pcm

pytestmark = pytest.mark.integration

RATE = 16_000
GATED = "speech-commands"
GATE = "voice-activity"
PADDING_S = 0.2
TOLERANCE = 1e-4
SENTENCES = [LIBRIVOX.format(n) for n in ("0880", "0930", "0890")]
PAUSES_S = [2.0, 1.0, 3.0, 2.5]


def windows_of(events: list[tritone.StreamEvent]) -> list[tritone.WindowResult]:
    return [e for e in events if isinstance(e, tritone.WindowResult)]


async def test_gated_speech_commands_runs_only_near_speech_and_agrees_with_ungated(
    client: tritone.AsyncClient,
) -> None:
    pcm, sentences = sentences_with_pauses(SENTENCES, PAUSES_S)
    frames = len(pcm) // 2
    info = await client.get_model(GATED)
    window_s, hop_s = info.window_samples / RATE, info.hop_samples / RATE

    plain = await stream_pcm(client, pcm, model=GATED, top_k=3)
    gated = await stream_pcm(client, pcm, models=[GATED], gate=GATE, top_k=3)

    # the gate's segments: reported when they start and when they end, in order
    segments = [e for e in gated if isinstance(e, tritone.SpeechSegment)]
    assert segments and all(s.model == GATE for s in segments)
    assert [s.final for s in segments] == [False, True] * (len(segments) // 2)
    speech = [(s.start_s, s.end_s) for s in segments if s.final]
    # every sentence holds speech; the middle of every pause holds none
    for start, end in sentences:
        assert any(s < end and e > start for s, e in speech), (start, end, speech)
    edges = [0.0, *(x for span in sentences for x in span), frames / RATE]
    for pause_start, pause_end in zip(edges[::2], edges[1::2], strict=True):
        middle = (pause_start + pause_end) / 2
        assert not any(s <= middle <= e for s, e in speech), (middle, speech)

    # which windows went to Triton: exactly the ungated windows near (padded) speech
    reference = {w.index: w for w in windows_of(plain)}
    sent = windows_of(gated)
    assert all(w.model == GATED for w in sent)

    def near_speech(w: tritone.WindowResult) -> bool:
        return any(s - PADDING_S < w.end_s and e + PADDING_S > w.start_s for s, e in speech)

    assert [w.index for w in sent] == [i for i, w in sorted(reference.items()) if near_speech(w)]
    # their results equal the ungated stream's
    for w in sent:
        ref = reference[w.index]
        assert (w.start_s, w.end_s) == pytest.approx((ref.start_s, ref.end_s))
        assert [x.label for x in w.labels] == [x.label for x in ref.labels]
        assert [x.score for x in w.labels] == pytest.approx(
            [x.score for x in ref.labels], abs=TOLERANCE
        )

    # the number sent is the speech fraction of the windows, within one window per segment
    padded = _union([(s - PADDING_S, e + PADDING_S) for s, e in speech])
    speech_fraction = sum(e - s for s, e in padded) / (frames / RATE)
    per_segment = window_s / hop_s + 1  # one window's overhang, and the rounding
    assert abs(len(sent) - speech_fraction * len(reference)) <= per_segment * len(padded)
    assert len(sent) < 0.8 * len(reference)  # the pauses cost speech-commands nothing

    # no sample lost: every frame received, and every window classified or skipped
    summary, plain_summary = gated[-1], plain[-1]
    assert isinstance(summary, tritone.StreamSummary)
    assert isinstance(plain_summary, tritone.StreamSummary)
    assert summary.frames_received == plain_summary.frames_received == frames
    assert summary.consumed_s == pytest.approx(frames / RATE)
    by_model = {m.model: m for m in summary.models}
    assert set(by_model) == {GATED, GATE}
    commands, vad = by_model[GATED], by_model[GATE]
    assert commands.gated and vad.gate
    assert commands.windows == len(sent)
    assert commands.windows + commands.windows_skipped == plain_summary.windows
    assert commands.model_samples == vad.model_samples == plain_summary.model_samples == frames
    assert commands.segments == vad.segments == len(speech)
    assert vad.windows_skipped == 0


async def test_a_gate_that_is_not_voice_activity_is_refused(
    client: tritone.AsyncClient,
) -> None:
    with pytest.raises(tritone.InvalidArgumentError, match="must be a voice-activity model"):
        await stream_pcm(client, b"\x00\x00" * 1600, models=[GATED], gate=GATED)
    with pytest.raises(tritone.InvalidArgumentError, match="gate_model 'no-such-vad'"):
        await stream_pcm(client, b"\x00\x00" * 1600, models=[GATED], gate="no-such-vad")


def _union(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def test_the_readme_example_runs(gateway: RunningGateway, tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Several models on one stream", 1)[1].split("\n## ", 1)[0]
    (example,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    script = tmp_path / "gate_example.py"
    script.write_text(example.replace("127.0.0.1:50051", gateway.target))
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("speech ") and len(lines) >= 3
    gate, commands = lines[-2].split(), lines[-1].split()
    assert gate[0] == GATE and gate[4] == "0"  # the gate hears everything
    assert commands[0] == GATED and int(commands[1]) > 0 and int(commands[4]) > 0
