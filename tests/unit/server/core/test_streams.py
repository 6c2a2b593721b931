"""LiveStream against the fake backend: windows, tail, accounting, state, detections."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import numpy as np
import pytest

from support.fake_backend import LevelsBackend, config
from tritone_server.audio.formats import PcmEncoding, PcmFormat
from tritone_server.core.inference import Inference
from tritone_server.core.models import spec_from_config
from tritone_server.core.streams import (
    SLICE_SAMPLES,
    DetectionEvent,
    LiveStream,
    StreamOptions,
    SummaryEvent,
    WindowEvent,
)
from tritone_server.errors import AudioError, InvalidRequest

RATE = 1000
F32 = PcmFormat(PcmEncoding.F32LE, RATE, 1)


def levels(*parts: tuple[float, float]) -> bytes:
    """(level, seconds) pieces of constant signal as f32le."""
    return (
        np.concatenate([np.full(round(s * RATE), level, dtype=np.float32) for level, s in parts])
        .astype("<f4")
        .tobytes()
    )


def make(options: StreamOptions | None = None, **cfg: Any) -> tuple[LiveStream, LevelsBackend]:
    c = config(**cfg)
    backend = LevelsBackend([c])
    spec = spec_from_config(c, "1")
    return LiveStream(spec, Inference(backend), F32, options or StreamOptions()), backend


async def run(stream: LiveStream, data: bytes, chunk: int) -> list[object]:
    events: list[object] = []
    for i in range(0, len(data), chunk):
        events += await stream.feed(data[i : i + chunk])
    return events + await stream.finish()


@pytest.mark.parametrize("chunk", [4, 7 * 4 + 2, 400, 10_000])
async def test_windows_cover_every_sample_whatever_the_chunking(chunk: int) -> None:
    stream, backend = make()
    data = levels((0.1, 0.3), (0.2, 0.3))
    events = await run(stream, data, chunk)
    windows = [e for e in events if isinstance(e, WindowEvent)]
    summary = events[-1]
    assert isinstance(summary, SummaryEvent)
    assert [w.start_s for w in windows] == pytest.approx(
        [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5]
    )
    assert [w.labels[0][0] for w in windows[:5]] == ["one"] * 5
    assert [w.labels[0][0] for w in windows[6:]] == ["two"] * 5
    assert windows[-1].end_s == pytest.approx(0.6) and not windows[-1].zero_padded
    assert summary.frames_received == 600 and summary.bytes_received == len(data)
    assert summary.model_samples == 600 and summary.padding_samples == 0
    assert summary.windows == 11 and summary.progress.consumed_s == pytest.approx(0.6)
    assert all(n <= 4 for _, n in backend.calls)


async def test_tail_is_classified_in_a_padded_window() -> None:
    stream, _ = make()
    events = await run(stream, levels((0.3, 0.13)), 40)
    windows = [e for e in events if isinstance(e, WindowEvent)]
    summary = events[-1]
    assert isinstance(summary, SummaryEvent)
    assert [round(w.start_s, 3) for w in windows] == [0.0, 0.05]
    assert windows[-1].padded_tail and windows[-1].end_s == pytest.approx(0.13)
    assert not windows[-1].interim  # the tail is classified for good, not a guess
    assert windows[-1].zero_padded and not windows[0].zero_padded
    assert summary.padding_samples == 50 + 100 - 130


async def test_stream_ending_inside_a_frame_is_an_error() -> None:
    stream, _ = make()
    await stream.feed(levels((0.1, 0.2)) + b"\x00\x00")
    with pytest.raises(AudioError, match="frame"):
        await stream.finish()


async def test_state_is_carried_from_window_to_window() -> None:
    stream, backend = make(stateful=True)
    events = await run(stream, levels((0.0, 0.4)), 100)
    windows = [e for e in events if isinstance(e, WindowEvent)]
    # The state counts windows; its value is reported as the "three" logit.
    assert [dict(w.labels)["three"] for w in windows] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    assert all(n == 1 for _, n in backend.calls)


async def test_detections_open_and_close_with_the_threshold() -> None:
    options = StreamOptions(detection_threshold=5.0, detection_labels=("two",), activation="none")
    stream, _ = make(options)
    events = await run(stream, levels((0.0, 0.3), (0.2, 0.3), (0.0, 0.3), (0.2, 0.2)), 100)
    detections = [e for e in events if isinstance(e, DetectionEvent)]
    assert [(d.label, round(d.start_s, 2), round(d.end_s, 2)) for d in detections] == [
        ("two", 0.3, 0.6),
        ("two", 0.9, 1.1),
    ]
    summary = events[-1]
    assert isinstance(summary, SummaryEvent) and summary.detections == 2


async def test_hop_override_and_suppressed_windows() -> None:
    stream, _ = make(StreamOptions(hop_ms=25, suppress_windows=True))
    events = await run(stream, levels((0.1, 0.2)), 1000)
    assert not [e for e in events if isinstance(e, WindowEvent)]
    summary = events[-1]
    assert isinstance(summary, SummaryEvent) and summary.windows == 5


def test_options_the_model_cannot_take_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="stateful"):
        make(StreamOptions(hop_ms=10), stateful=True)
    with pytest.raises(InvalidRequest, match="nope"):
        make(StreamOptions(detection_threshold=0.5, detection_labels=("nope",)))
    with pytest.raises(InvalidRequest, match="whole clips"):
        make(window=0, hop=0)


def test_an_embedding_model_is_not_streamed_even_with_labels() -> None:
    c = config()
    c["output"][0]["name"] = "embedding"  # labels given, yet the output is a vector
    spec = spec_from_config(c, "1")
    with pytest.raises(InvalidRequest, match="no labels to stream"):
        LiveStream(spec, Inference(LevelsBackend([c])), F32, StreamOptions())


async def test_context_samples_lead_each_window_and_times_exclude_them() -> None:
    c = config(window=150, hop=100)
    c["parameters"]["context_samples"] = {"string_value": "50"}
    backend = LevelsBackend([c])
    spec = spec_from_config(c, "1")
    stream = LiveStream(spec, Inference(backend), F32, StreamOptions())
    events = await run(stream, levels((0.3, 0.3)), 100)
    windows = [e for e in events if isinstance(e, WindowEvent)]
    # The first window is 50 zeros + 100 samples at 0.3: mean 0.2 -> "two"; then "three".
    assert [w.labels[0][0] for w in windows] == ["two", "three", "three"]
    assert [(round(w.start_s, 3), round(w.end_s, 3)) for w in windows] == [
        (0.0, 0.1),
        (0.1, 0.2),
        (0.2, 0.3),
    ]
    summary = events[-1]
    assert isinstance(summary, SummaryEvent)
    assert summary.model_samples == 300 and summary.padding_samples == 0
    assert summary.progress.consumed_s == pytest.approx(0.3)


@pytest.mark.parametrize("context", [0, 50])
async def test_an_empty_stream_has_no_window_and_a_summary(context: int) -> None:
    c = config(window=150, hop=100)
    if context:
        c["parameters"]["context_samples"] = {"string_value": str(context)}
    stream = LiveStream(
        spec_from_config(c, "1"), Inference(LevelsBackend([c])), F32, StreamOptions()
    )
    events = await stream.finish()
    assert len(events) == 1
    summary = events[0]
    assert isinstance(summary, SummaryEvent)
    assert (summary.windows, summary.model_samples, summary.frames_received) == (0, 0, 0)
    assert summary.labels == [] and summary.progress.consumed_s == 0.0


@pytest.mark.parametrize("hop_ms", [1, 9, 101, 1000])
def test_a_hop_outside_10_ms_to_the_window_is_refused(hop_ms: int) -> None:
    # The model's window is 100 samples at 1 kHz: 100 ms.
    with pytest.raises(InvalidRequest, match=r"between 10 ms and the window .* 100 ms"):
        make(StreamOptions(hop_ms=hop_ms))


@pytest.mark.parametrize("hop_ms", [10, 100])
async def test_a_hop_at_either_bound_classifies_every_sample(hop_ms: int) -> None:
    stream, _ = make(StreamOptions(hop_ms=hop_ms))
    events = await run(stream, levels((0.1, 0.35)), 1000)
    windows = [e for e in events if isinstance(e, WindowEvent)]
    summary = events[-1]
    assert isinstance(summary, SummaryEvent)
    # No gap between windows: each starts before the previous one ends, the last reaches
    # the end, so the summary's samples were all classified.
    for before, after in itertools.pairwise(windows):
        assert after.start_s <= before.end_s
    assert windows[-1].end_s == pytest.approx(0.35)
    assert summary.model_samples == 350


async def test_interim_results_are_not_sent_when_windows_are_suppressed() -> None:
    stream, _ = make(StreamOptions(interim_results=True, suppress_windows=True))
    events = await run(stream, levels((0.1, 0.05)), 10 * 4)  # 50 ms < one 100 ms window
    assert not [e for e in events if isinstance(e, WindowEvent)]
    summary = events[-1]
    assert isinstance(summary, SummaryEvent) and summary.windows == 1


async def test_interim_results_still_come_without_suppression() -> None:
    stream, _ = make(StreamOptions(interim_results=True))
    events = await run(stream, levels((0.1, 0.05)), 10 * 4)
    windows = [e for e in events if isinstance(e, WindowEvent)]
    guesses = [w for w in windows if w.interim]
    assert guesses and not any(w.padded_tail for w in guesses)
    assert windows[-1].padded_tail and not windows[-1].interim


async def test_a_chunk_at_a_low_declared_rate_is_worked_in_bounded_slices() -> None:
    """A chunk that grows 16 times when resampled is never held whole at the model rate,
    and the event loop gets to run other callers between the slices."""
    c = config(window=8000, hop=8000, rate=16000)
    c["max_batch_size"] = 64
    backend = LevelsBackend([c])
    spec = spec_from_config(c, "1")
    fmt = PcmFormat(PcmEncoding.F32LE, 1000, 1)
    stream = LiveStream(spec, Inference(backend), fmt, StreamOptions(suppress_windows=True))
    largest: list[int] = []
    original = stream._append

    def watch(samples: Any) -> None:
        largest.append(int(samples.shape[0]))
        original(samples)

    stream._append = watch  # type: ignore[method-assign]
    ticks = 0

    async def other_caller() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(other_caller())
    try:
        data = np.full(20_000, 0.1, dtype="<f4").tobytes()  # 20 s at 1 kHz: 320,000 at 16 kHz
        await stream.feed(data)
    finally:
        ticker.cancel()
    assert max(largest) <= SLICE_SAMPLES + 4096  # plus what the resampler held back before
    assert sum(largest) > 300_000
    assert len(largest) >= 5 and ticks >= len(largest) - 1  # the loop ran between slices
    assert stream.buffer.end - stream.buffer.start <= SLICE_SAMPLES + 8000


async def test_frames_consumed_counts_input_frames_fully_classified() -> None:
    stream, _ = make()  # window 100, hop 50 at 1 kHz
    await stream.feed(levels((0.1, 0.23)))
    assert stream.frames_received == 230
    assert stream.frames_consumed == 200  # windows [0,100) .. [100,200) answered
    await stream.finish()
    assert stream.frames_consumed == 230
