"""StreamClassify through the real gateway and the real Triton."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

import tritone
from support.tones import LABELS, chunks, to_s16le, tone_sequence

SEGMENT_S = 2.0
SEQUENCE = [0, 3, 6, 1, 4, 7, 2, 5, 0, 6]  # 20 s, the tone changes every 2 s
MARGIN_S = 0.05


def expected_label(start_s: float, end_s: float) -> str | None:
    """The tone a window must report, or None when it straddles a change."""
    first = int((start_s + MARGIN_S) // SEGMENT_S)
    last = int((end_s - MARGIN_S) // SEGMENT_S)
    if first != last or first >= len(SEQUENCE):
        return None
    return LABELS[SEQUENCE[first]]


async def collect(
    client: tritone.AsyncClient, pcm: bytes, chunk_bytes: int, **options: object
) -> list[tritone.StreamEvent]:
    return [
        event
        async for event in client.stream_classify(
            chunks(pcm, chunk_bytes),
            model="tones",
            **options,  # type: ignore[arg-type]
        )
    ]


@pytest.mark.parametrize("chunk_ms", [10, 100, 1000])
async def test_window_labels_follow_the_tone_changes(
    client: tritone.AsyncClient, chunk_ms: int
) -> None:
    rate = 16000
    audio = tone_sequence(SEQUENCE, SEGMENT_S, rate)
    pcm = to_s16le(audio)
    events = await collect(
        client,
        pcm,
        rate * 2 * chunk_ms // 1000,
        sample_rate=rate,
        encoding=tritone.PcmEncoding.S16LE,
        top_k=1,
    )
    windows = [e for e in events if isinstance(e, tritone.WindowResult)]
    summaries = [e for e in events if isinstance(e, tritone.StreamSummary)]
    assert len(summaries) == 1 and events[-1] is summaries[0]
    checked = 0
    for w in windows:
        label = expected_label(w.start_s, w.end_s)
        if label is not None:
            assert w.labels[0].label == label, f"window {w.start_s:.2f}-{w.end_s:.2f} s"
            checked += 1
    # 0.5 s windows every 0.25 s: 79 windows, of which only those across a change are skipped.
    assert len(windows) == 79
    assert checked >= 60
    assert [w.index for w in windows] == list(range(len(windows)))
    summary = summaries[0]
    assert summary.bytes_received == len(pcm)
    assert summary.frames_received == audio.shape[0]
    assert summary.model_samples == audio.shape[0]
    assert summary.windows == len(windows)
    assert summary.duration_s == pytest.approx(20.0)
    assert summary.consumed_s == pytest.approx(20.0)
    assert windows[-1].end_s == pytest.approx(20.0)
    received = [e.frames_received for e in events]
    assert received == sorted(received)


async def test_resampled_stereo_stream_accounts_for_every_sample(
    client: tritone.AsyncClient,
) -> None:
    rate = 44100
    audio = tone_sequence(SEQUENCE[:4], SEGMENT_S, rate, channels=2)
    pcm = audio.astype("<f4").tobytes()
    events = await collect(
        client,
        pcm,
        4410 * 8 + 3,  # frames split across chunks on purpose
        sample_rate=rate,
        channels=2,
        encoding=tritone.PcmEncoding.F32LE,
    )
    windows = [e for e in events if isinstance(e, tritone.WindowResult)]
    summary = events[-1]
    assert isinstance(summary, tritone.StreamSummary)
    assert summary.bytes_received == len(pcm)
    assert summary.frames_received == audio.shape[0]
    assert abs(summary.model_samples - 8.0 * 16000) <= 2
    assert summary.duration_s == pytest.approx(8.0)
    for w in windows:
        label = expected_label(w.start_s, w.end_s)
        if label is not None:
            assert w.labels[0].label == label


async def test_stream_with_a_tail_pads_the_last_window(client: tritone.AsyncClient) -> None:
    rate = 16000
    audio = tone_sequence([2], 0.6, rate)  # one full window (0.5 s) and a 0.1 s tail
    events = await collect(client, to_s16le(audio), 3200, sample_rate=rate)
    windows = [e for e in events if isinstance(e, tritone.WindowResult)]
    summary = events[-1]
    assert isinstance(summary, tritone.StreamSummary)
    assert [round(w.start_s, 3) for w in windows] == [0.0, 0.25]
    assert windows[-1].interim and windows[-1].end_s == pytest.approx(0.6)
    assert summary.padding_samples == 4000 + 8000 - 9600  # window at 0.25 s, 0.6 s received
    assert all(w.labels[0].label == LABELS[2] for w in windows)


async def test_detections_mark_where_a_tone_plays(client: tritone.AsyncClient) -> None:
    rate = 16000
    audio = tone_sequence([0, 4, 0], 2.0, rate)
    events = await collect(
        client,
        to_s16le(audio),
        1600,
        sample_rate=rate,
        detection_threshold=0.8,
        detection_labels=[LABELS[4]],
        suppress_windows=True,
    )
    detections = [e for e in events if isinstance(e, tritone.Detection)]
    assert not any(isinstance(e, tritone.WindowResult) for e in events)
    assert len(detections) == 1
    d = detections[0]
    assert d.label == LABELS[4]
    assert d.start_s == pytest.approx(2.0, abs=0.3)
    assert d.end_s == pytest.approx(4.0, abs=0.3)
    assert d.peak_score > 0.8
    summary = events[-1]
    assert isinstance(summary, tritone.StreamSummary) and summary.detections == 1


async def test_fifty_concurrent_streams_from_one_client(client: tritone.AsyncClient) -> None:
    rate = 16000

    async def one(n: int) -> None:
        order = [(n + k) % 8 for k in range(3)]
        audio = tone_sequence(order, 1.0, rate)
        events = await collect(client, to_s16le(audio), 3200, sample_rate=rate, top_k=1)
        windows = [e for e in events if isinstance(e, tritone.WindowResult)]
        for w in windows:
            seg_first, seg_last = int((w.start_s + 0.05) // 1.0), int((w.end_s - 0.05) // 1.0)
            if seg_first == seg_last:
                assert w.labels[0].label == LABELS[order[seg_first]], f"stream {n}"
        summary = events[-1]
        assert isinstance(summary, tritone.StreamSummary)
        assert summary.frames_received == audio.shape[0]
        assert summary.windows == len(windows) == 11

    await asyncio.gather(*(one(n) for n in range(50)))


async def test_interim_results_before_the_first_window(client: tritone.AsyncClient) -> None:
    rate = 16000
    audio = tone_sequence([5], 1.0, rate)
    events = await collect(
        client, to_s16le(audio), 2000, sample_rate=rate, interim_results=True, hop_ms=125
    )
    windows = [e for e in events if isinstance(e, tritone.WindowResult)]
    interim = [w for w in windows if w.interim]
    assert interim and interim[0].end_s < 0.5
    assert all(w.labels[0].label == LABELS[5] for w in windows)
    full = [w for w in windows if not w.interim]
    assert np.allclose(np.diff([w.start_s for w in full]), 0.125)
