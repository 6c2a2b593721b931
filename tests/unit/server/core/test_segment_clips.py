"""Whole-clip and embedding models answering once per speech segment, from the segment's
audio as one clip, against a fake backend whose "speech" is loud signal."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from support.fake_backend import LevelsBackend, config
from tritone_server.audio.formats import PcmEncoding, PcmFormat
from tritone_server.core.fanout import ModelFanout, open_fanout
from tritone_server.core.inference import Inference
from tritone_server.core.models import ModelSpec, spec_from_config
from tritone_server.core.segment_clips import MAX_CLIP_S, SegmentClipStream
from tritone_server.core.stream_request import GateRequest, StreamRequest
from tritone_server.core.streams import (
    StreamEvent,
    StreamOptions,
    SummaryEvent,
    UtteranceEvent,
    WindowEvent,
)
from tritone_server.errors import InvalidRequest

RATE = 1000
F32 = PcmFormat(PcmEncoding.F32LE, RATE, 1)
PADDING_MS = 20
FloatArray = npt.NDArray[np.float32]


def gate_config() -> dict[str, Any]:
    """A gate whose speech probability is the mean level of a 10 ms hop, times 3."""
    c = config("vad", window=10, hop=10)
    c["output"][0]["dims"] = ["1"]
    c["parameters"]["task"] = {"string_value": "voice-activity"}
    c["parameters"]["labels"] = {"string_value": '["speech"]'}
    return c


def embedding_config(window: int) -> dict[str, Any]:
    """An embedding model: [mean level, 0.5, 0] per window (not unit length)."""
    c = config("emb", window=window, hop=max(window // 2, 1))
    c["output"] = [{"name": "embedding", "data_type": "TYPE_FP32", "dims": ["3"]}]
    c["parameters"]["task"] = {"string_value": "embedding"}
    del c["parameters"]["labels"]
    return c


class ClipBackend(LevelsBackend):
    """LevelsBackend (``who`` hears whole clips: its label is the clip's mean level times 10),
    plus the gate and the embedding model; remembers every clip ``who`` and ``emb`` hear."""

    def __init__(self, configs: Sequence[dict[str, Any]]) -> None:
        super().__init__(configs)
        self.heard: list[tuple[str, FloatArray]] = []

    async def infer(
        self,
        model: str,
        inputs: Mapping[str, FloatArray],
        outputs: Sequence[str],
        *,
        timeout_s: float | None = None,
    ) -> dict[str, FloatArray]:
        windows = inputs["waveform"]
        if model == "vad":
            return {"logits": (windows.mean(axis=1, keepdims=True) * 3).astype(np.float32)}
        self.heard += [(model, w.copy()) for w in windows]
        if model == "emb":
            rows = np.zeros((windows.shape[0], 3), dtype=np.float32)
            rows[:, 0], rows[:, 1] = windows.mean(axis=1), 0.5
            return {"embedding": rows}
        return await super().infer(model, inputs, outputs, timeout_s=timeout_s)


def open_stream(
    per_segment: tuple[str, ...] = ("who",), emb_window: int = 0, fmt: PcmFormat = F32
) -> tuple[ModelFanout, ClipBackend]:
    configs = [config("who", window=0, hop=0), embedding_config(emb_window), gate_config()]
    backend = ClipBackend(configs)
    specs = {c["name"]: spec_from_config(c, "1") for c in configs}
    request = StreamRequest(
        per_segment,
        fmt,
        StreamOptions(top_k=2),
        GateRequest("vad", padding_ms=PADDING_MS),
        per_segment=per_segment,
        several=True,
    )

    def keep(spec: ModelSpec, options: StreamOptions) -> StreamOptions:
        return options

    return open_fanout(request, specs.__getitem__, keep, Inference(backend)), backend


def levels(*parts: tuple[float, float]) -> bytes:
    return (
        np.concatenate([np.full(round(s * RATE), level, dtype=np.float32) for level, s in parts])
        .astype("<f4")
        .tobytes()
    )


async def run(stream: ModelFanout, data: bytes, chunk: int) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    for i in range(0, len(data), chunk):
        events += await stream.feed(data[i : i + chunk])
    return events + await stream.finish()


# "two" from 0.5 to 0.9 s, "three" from 1.9 to 2.5 s
AUDIO = levels((0.0, 0.5), (0.2, 0.4), (0.0, 1.0), (0.3, 0.6), (0.0, 0.5))


@pytest.mark.parametrize("chunk", [40, 400, len(AUDIO)])
async def test_a_whole_clip_model_hears_each_segment_once_as_one_padded_clip(chunk: int) -> None:
    stream, backend = open_stream()
    events = await run(stream, AUDIO, chunk)
    assert not [e for e in events if isinstance(e, WindowEvent)]
    answers = [e for e in events if isinstance(e, UtteranceEvent)]
    assert [(a.model, a.labels[0][0], a.too_long) for a in answers] == [
        ("who", "two", False),
        ("who", "three", False),
    ]
    assert [len(a.labels) for a in answers] == [2, 2] and all(not a.embedding for a in answers)
    spans = [(round(a.start_s, 3), round(a.end_s, 3)) for a in answers]
    assert spans == [(0.5, 0.9), (1.9, 2.5)]
    pad = PADDING_MS / 1000
    for a in answers:  # the clip is the segment widened by the padding
        assert a.window_start_s == pytest.approx(a.start_s - pad)
        assert a.window_end_s == pytest.approx(a.end_s + pad)
    heard = [clip for model, clip in backend.heard if model == "who"]
    assert [clip.shape[0] for clip in heard] == [440, 640]
    # the clip is the stream's audio there: speech with the padding's silence around it
    assert heard[0][:20].max() == 0 and heard[0][20:420].min() == pytest.approx(0.2)
    summary = events[-1]
    assert isinstance(summary, SummaryEvent)
    (who,) = [m for m in summary.models if m.model == "who"]
    assert (who.windows, who.windows_skipped, who.segments, who.gated) == (2, 0, 2, True)
    assert summary.frames_received == len(AUDIO) // 4
    assert stream.frames_consumed == summary.frames_received


@pytest.mark.parametrize("chunk", [400, 80_000])
async def test_audio_at_another_rate_is_resampled_before_the_clip_is_cut(chunk: int) -> None:
    # at twice the model's rate; one chunk of 20 000 frames is resampled in a thread
    stream, backend = open_stream(fmt=PcmFormat(PcmEncoding.F32LE, 2 * RATE, 1))
    doubled = np.repeat(np.frombuffer(AUDIO, dtype="<f4"), 2).astype("<f4").tobytes()
    answers = [e for e in await run(stream, doubled, chunk) if isinstance(e, UtteranceEvent)]
    assert [a.labels[0][0] for a in answers] == ["two", "three"]
    heard = [clip.shape[0] for model, clip in backend.heard if model == "who"]
    assert heard == [pytest.approx(440, abs=20), pytest.approx(640, abs=20)]


@pytest.mark.parametrize("window", [0, 100])
async def test_an_embedding_model_answers_the_segments_unit_length_mean_embedding(
    window: int,
) -> None:
    stream, backend = open_stream(("emb",), emb_window=window)
    answers = [e for e in await run(stream, AUDIO, 400) if isinstance(e, UtteranceEvent)]
    assert len(answers) == 2 and all(a.labels == [] for a in answers)
    for answer, index in zip(answers, (0, 1), strict=True):
        rows = [
            [clip.mean(), 0.5, 0.0]
            for model, clip in backend.heard
            if model == "emb" and _segment_of(clip) == index
        ]
        mean = np.mean(np.array(rows, dtype=np.float64), axis=0)
        assert np.linalg.norm(answer.embedding) == pytest.approx(1.0)
        assert answer.embedding == pytest.approx(tuple(mean / np.linalg.norm(mean)), abs=1e-6)
    if window:  # a windowed model's windows of one segment are pooled, not one clip
        assert len([m for m, _ in backend.heard if m == "emb"]) > 2


def _segment_of(clip: FloatArray) -> int:
    """Which of AUDIO's segments a clip or window heard (by its loudest level)."""
    return 0 if clip.max() < 0.25 else 1


async def test_a_segment_longer_than_the_limit_is_heard_by_its_last_seconds() -> None:
    long_s = MAX_CLIP_S + 5
    audio = levels((0.0, 0.5), (0.2, 5.0), (0.3, long_s - 5.0), (0.0, 0.5))
    stream, _ = open_stream()
    (answer,) = [e for e in await run(stream, audio, 4000) if isinstance(e, UtteranceEvent)]
    assert answer.end_s - answer.start_s == pytest.approx(long_s)
    assert answer.window_end_s - answer.window_start_s == pytest.approx(MAX_CLIP_S)
    assert answer.window_end_s == pytest.approx(answer.end_s + PADDING_MS / 1000)
    assert answer.labels[0][0] == "three"  # only the last seconds, all at 0.3


async def test_the_stream_keeps_only_audio_a_segment_may_still_need() -> None:
    stream, _ = open_stream()
    (clips,) = [s for s in stream.streams if isinstance(s, SegmentClipStream)]
    silence = levels((0.0, 60.0))
    for i in range(0, len(silence), 400):
        await stream.feed(silence[i : i + 400])
    # silence: nothing before what the gate has heard, less the padding, stays
    assert clips.buffer.end - clips.buffer.start < 1.0 * RATE
    assert clips.frames_consumed > 58 * RATE


def test_a_stateful_per_segment_model_is_refused() -> None:
    stateful = config("state", window=100, hop=100, stateful=True)
    configs = [stateful, gate_config()]
    specs = {c["name"]: spec_from_config(c, "1") for c in configs}
    request = StreamRequest(
        ("state",), F32, StreamOptions(), GateRequest("vad"), per_segment=("state",), several=True
    )
    with pytest.raises(InvalidRequest, match="stateful"):
        open_fanout(request, specs.__getitem__, lambda s, o: o, Inference(ClipBackend(configs)))
