"""Per-segment speech-commands: one answer per speech segment the voice-activity gate finds,
through the real gateway and Triton, on a real short recording and a real read sentence."""

from __future__ import annotations

import pytest

import tritone
from support.recordings import LIBRIVOX, sentences_with_pauses, stream_pcm

pytestmark = pytest.mark.integration

RATE = 16_000
GATED = "speech-commands"
GATE = "voice-activity"
SENTENCE = LIBRIVOX.format("0880")


async def test_per_segment_speech_commands_answers_once_per_segment(
    client: tritone.AsyncClient,
) -> None:
    pcm, _ = sentences_with_pauses(["cards/001.wav", SENTENCE], [1.5, 2.0, 1.5])
    events = await stream_pcm(client, pcm, models=[GATED], gate=GATE, per_segment=[GATED], top_k=3)
    assert not [e for e in events if isinstance(e, tritone.WindowResult)]  # none per window
    segments = [(e.start_s, e.end_s) for e in events if isinstance(e, tritone.SpeechSegment)]
    finals = [
        (e.start_s, e.end_s) for e in events if isinstance(e, tritone.SpeechSegment) and e.final
    ]
    assert segments and finals
    answers = [e for e in events if isinstance(e, tritone.Utterance)]
    info = await client.get_model(GATED)
    window_s = info.window_samples / RATE
    # one answer per segment, with the segment's bounds; too long beyond 1.5 windows
    bounds = [x for a in answers for x in (a.start_s, a.end_s)]
    assert bounds == pytest.approx([x for span in finals for x in span])
    for answer in answers:
        assert answer.model == GATED
        too_long = answer.end_s - answer.start_s > 1.5 * window_s
        assert answer.too_long == too_long
        assert (answer.labels == ()) == too_long
        if not too_long:
            assert len(answer.labels) == 3
            assert answer.labels[0].label in info.labels
            assert answer.window_end_s - answer.window_start_s == pytest.approx(window_s)
    assert any(a.too_long for a in answers)  # the read sentence is not one command
    summary = events[-1]
    assert isinstance(summary, tritone.StreamSummary)
    commands = next(m for m in summary.models if m.model == GATED)
    assert commands.segments == len(finals) and commands.windows > 0
    assert summary.frames_received == len(pcm) // 2
