"""Voice activity gating the other models of a stream: SpeechGate alone, then the fan-out
against a fake backend whose "speech" is loud signal."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from support.fake_backend import LevelsBackend, config
from tritone_server.audio.formats import PcmEncoding, PcmFormat
from tritone_server.core.fanout import ModelFanout, open_fanout
from tritone_server.core.gate import SpeechGate
from tritone_server.core.inference import Inference
from tritone_server.core.models import ModelSpec, spec_from_config
from tritone_server.core.stream_request import GateRequest, StreamRequest
from tritone_server.core.streams import (
    DetectionEvent,
    LiveStream,
    SegmentEvent,
    StreamEvent,
    StreamOptions,
    SummaryEvent,
    UtteranceEvent,
    WindowEvent,
)
from tritone_server.core.utterance import UtteranceCollector
from tritone_server.errors import InvalidRequest, ModelNotFound

RATE = 1000
F32 = PcmFormat(PcmEncoding.F32LE, RATE, 1)
SPEECH = 0.3  # "three" to the levels model, speech to the fake gate
FloatArray = npt.NDArray[np.float32]


# --- SpeechGate alone ---------------------------------------------------------------------


def hops(gate: SpeechGate, probabilities: Sequence[float], hop_s: float = 0.1) -> list[Any]:
    changes = []
    for i, p in enumerate(probabilities):
        change = gate.observe(p, i * hop_s, (i + 1) * hop_s)
        if change is not None:
            changes.append(change)
    return changes


def test_consecutive_speech_hops_make_one_segment_reported_at_start_and_end() -> None:
    gate = SpeechGate(0.5, 0.0)
    changes = hops(gate, [0.1, 0.6, 0.9, 0.7, 0.2, 0.1, 0.8])
    assert [(round(c.start_s, 6), round(c.end_s, 6), c.final) for c in changes] == [
        (0.1, 0.2, False),
        (0.1, 0.4, True),
        (0.6, 0.7, False),
    ]
    assert gate.count == 2
    last = gate.finish(0.75)
    assert last is not None and last.final and last.end_s == pytest.approx(0.75)
    assert [(round(a, 6), round(b, 6)) for a, b in gate.segments] == [(0.1, 0.4), (0.6, 0.75)]
    assert gate.finish(0.75) is None  # nothing open any more


def test_a_window_is_undecided_until_the_gate_has_heard_past_it_and_its_padding() -> None:
    gate = SpeechGate(0.5, 0.2)
    hops(gate, [0.0] * 5)  # silence up to 0.5 s
    assert gate.speech_near(0.0, 0.2) is False  # heard to 0.5 >= 0.2 + 0.2
    assert gate.speech_near(0.1, 0.4) is None  # needs up to 0.6
    gate.observe(0.9, 0.5, 0.6)  # speech from 0.5 s
    assert gate.speech_near(0.1, 0.4) is True  # 0.5 - 0.2 < 0.4
    assert gate.speech_near(0.0, 0.2) is False  # decided before, and still so


def test_an_open_segment_heard_only_before_a_window_does_not_decide_it() -> None:
    gate = SpeechGate(0.5, 0.0)
    hops(gate, [0.9])  # speech from 0 s, still open, heard to 0.1 s
    assert gate.speech_near(0.0, 0.2) is True
    assert gate.speech_near(0.5, 0.6) is None  # the speech may or may not reach it
    hops(gate, [0.9, 0.0, 0.0, 0.0, 0.0, 0.0])  # it ends at 0.2 s; heard to 0.7 s
    assert gate.speech_near(0.5, 0.6) is False


def test_padding_extends_speech_on_both_sides() -> None:
    gate = SpeechGate(0.5, 0.2)
    hops(gate, [0.0, 0.0, 0.0, 0.0, 0.0, 0.9, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])  # speech 0.5-0.6
    assert gate.speech_near(0.25, 0.29) is False  # ends 0.21 s before speech
    assert gate.speech_near(0.25, 0.35) is True  # within the padding before
    assert gate.speech_near(0.75, 0.9) is True  # within the padding after
    assert gate.speech_near(0.85, 0.95) is False


def test_the_finished_gate_decides_everything() -> None:
    gate = SpeechGate(0.5, 0.2)
    hops(gate, [0.0, 0.0])
    assert gate.speech_near(0.1, 0.2) is None
    gate.finish(0.2)
    assert gate.speech_near(0.1, 0.2) is False
    assert gate.speech_near(5.0, 6.0) is False


# --- the fan-out against a fake backend ---------------------------------------------------


def gate_config(name: str = "vad", task: str = "voice-activity") -> dict[str, Any]:
    """A gate model whose speech probability is the mean level of a 10 ms hop, times 3."""
    c = config(name, window=10, hop=10)
    c["output"][0]["dims"] = ["1"]
    c["parameters"]["task"] = {"string_value": task}
    c["parameters"]["labels"] = {"string_value": '["speech"]'}
    return c


class GateBackend(LevelsBackend):
    """LevelsBackend, plus gate models whose one logit is the window's mean level times 3."""

    async def infer(
        self,
        model: str,
        inputs: Mapping[str, FloatArray],
        outputs: Sequence[str],
        *,
        timeout_s: float | None = None,
    ) -> dict[str, FloatArray]:
        if model.startswith("vad"):
            windows = inputs["waveform"]
            self.calls.append((model, windows.shape[0]))
            return {"logits": (windows.mean(axis=1, keepdims=True) * 3).astype(np.float32)}
        return await super().infer(model, inputs, outputs, timeout_s=timeout_s)


CONFIGS = [config("levels"), config("other", window=200, hop=100), gate_config()]
CONFIGS.append(gate_config("vad-wrong", task="audio-classification"))


def setup() -> tuple[dict[str, ModelSpec], GateBackend]:
    backend = GateBackend(CONFIGS)
    specs = {c["name"]: spec_from_config(c, "1") for c in CONFIGS}
    return specs, backend


def spec_of(specs: dict[str, ModelSpec]) -> Any:
    def get(name: str) -> ModelSpec:
        if name not in specs:
            raise ModelNotFound(f"no model {name!r}")
        return specs[name]

    return get


def keep(spec: ModelSpec, options: StreamOptions) -> StreamOptions:
    return options


def fanout(
    models: tuple[str, ...],
    gate: GateRequest | None,
    options: StreamOptions | None = None,
) -> tuple[ModelFanout, GateBackend]:
    specs, backend = setup()
    request = StreamRequest(models, F32, options or StreamOptions(), gate, several=True)
    return open_fanout(request, spec_of(specs), keep, Inference(backend)), backend


def levels(*parts: tuple[float, float]) -> bytes:
    return (
        np.concatenate([np.full(round(s * RATE), level, dtype=np.float32) for level, s in parts])
        .astype("<f4")
        .tobytes()
    )


# half silence: speech 1.0-1.5 s and 3.0-3.6 s of 4.5 s
AUDIO = levels((0.0, 1.0), (SPEECH, 0.5), (0.0, 1.5), (SPEECH, 0.6), (0.0, 0.9))


async def run(stream: LiveStream | ModelFanout, data: bytes, chunk: int) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    for i in range(0, len(data), chunk):
        events += await stream.feed(data[i : i + chunk])
    return events + await stream.finish()


async def ungated_windows(model: str = "levels") -> list[WindowEvent]:
    specs, backend = setup()
    stream = LiveStream(specs[model], Inference(backend), F32, StreamOptions())
    return [e for e in await run(stream, AUDIO, 400) if isinstance(e, WindowEvent)]


@pytest.mark.parametrize("chunk", [4 * 7, 400, 4 * 1700, len(AUDIO)])
async def test_gated_windows_go_to_the_backend_only_near_speech(chunk: int) -> None:
    stream, backend = fanout(("levels",), GateRequest("vad", padding_ms=50))
    events = await run(stream, AUDIO, chunk)
    windows = [e for e in events if isinstance(e, WindowEvent)]
    reference = {w.index: w for w in await ungated_windows()}
    # every window sent overlaps speech padded by 50 ms; every window near speech is sent
    speech = [(1.0, 1.5), (3.0, 3.6)]

    def near(w: WindowEvent) -> bool:
        return any(s - 0.05 < w.end_s and e + 0.05 > w.start_s for s, e in speech)

    assert [w.index for w in windows] == [i for i, w in reference.items() if near(w)]
    for w in windows:  # the same window, the same result, as the ungated stream gives
        assert w.model == "levels"
        ref = reference[w.index]
        assert (w.start_s, w.end_s, w.labels) == (ref.start_s, ref.end_s, ref.labels)
    sent = sum(n for model, n in backend.calls if model == "levels")
    assert sent == len(windows) < len(reference)
    segments = [e for e in events if isinstance(e, SegmentEvent)]
    assert [(round(s.start_s, 6), round(s.end_s, 6)) for s in segments if s.final] == [
        (1.0, 1.5),
        (3.0, 3.6),
    ]
    assert [s.final for s in segments] == [False, True, False, True]
    summary = events[-1]
    assert isinstance(summary, SummaryEvent)
    by_model = {m.model: m for m in summary.models}
    assert set(by_model) == {"levels", "vad"}
    gated, gate = by_model["levels"], by_model["vad"]
    assert gated.gated and not gated.gate and gate.gate and not gate.gated
    assert gated.windows == len(windows)
    assert gated.windows + gated.windows_skipped == len(reference)
    assert gated.segments == gate.segments == 2
    assert gated.model_samples == gate.model_samples == 4500
    assert summary.frames_received == 4500 and stream.frames_consumed == 4500
    assert summary.model == "levels" and summary.windows == len(windows)


async def test_silence_costs_only_the_gate() -> None:
    stream, backend = fanout(("levels", "other"), GateRequest("vad"))
    events = await run(stream, levels((0.0, 3.0)), 400)
    assert {model for model, _ in backend.calls} == {"vad"}
    assert not [e for e in events if isinstance(e, WindowEvent | SegmentEvent)]
    summary = events[-1]
    assert isinstance(summary, SummaryEvent)
    assert [(m.model, m.windows, m.segments) for m in summary.models] == [
        ("vad", 300, 0),
        ("levels", 0, 0),
        ("other", 0, 0),
    ]
    assert all(m.windows_skipped > 0 for m in summary.models if m.gated)
    assert stream.frames_consumed == 3000


async def test_ungated_models_run_on_every_window_and_events_name_their_model() -> None:
    stream, _ = fanout(("levels", "other"), None)
    events = await run(stream, AUDIO, 400)
    windows = [e for e in events if isinstance(e, WindowEvent)]
    by_model = {m: [w for w in windows if w.model == m] for m in ("levels", "other")}
    assert len(by_model["levels"]) == len(await ungated_windows("levels"))
    assert len(by_model["other"]) == len(await ungated_windows("other"))
    summary = events[-1]
    assert isinstance(summary, SummaryEvent)
    assert [(m.model, m.windows_skipped, m.gated) for m in summary.models] == [
        ("levels", 0, False),
        ("other", 0, False),
    ]


async def test_a_gate_listed_among_the_models_reports_its_windows_too() -> None:
    stream, _ = fanout(("vad", "levels"), GateRequest("vad"))
    events = await run(stream, AUDIO, 400)
    vad_windows = [e for e in events if isinstance(e, WindowEvent) and e.model == "vad"]
    assert len(vad_windows) == 450
    summary = events[-1]
    assert isinstance(summary, SummaryEvent) and summary.model == "vad"


async def test_a_skipped_window_closes_a_detection() -> None:
    options = StreamOptions(detection_threshold=5.0, detection_labels=("three",))
    stream, _ = fanout(("levels",), GateRequest("vad", padding_ms=0), options)
    events = await run(stream, AUDIO, 400)
    detections = [e for e in events if isinstance(e, DetectionEvent)]
    assert len(detections) == 2 and {d.model for d in detections} == {"levels"}


@pytest.mark.parametrize(
    ("models", "gate", "sentence"),
    [
        (("levels",), GateRequest("nope"), "gate_model 'nope' is not a model"),
        (("levels",), GateRequest("vad-wrong"), "must be a voice-activity model"),
        (("levels",), GateRequest("levels"), "must be a voice-activity model"),
        (("levels", "levels"), None, "more than once"),
        (("levels",), GateRequest("vad", threshold=1.5), "gate_threshold"),
        (("levels",), GateRequest("vad", padding_ms=60_000), "gate_padding_ms"),
    ],
)
def test_requests_that_cannot_run_are_refused_with_a_reason(
    models: tuple[str, ...], gate: GateRequest | None, sentence: str
) -> None:
    with pytest.raises(InvalidRequest, match=sentence):
        fanout(models, gate)


def test_an_unknown_model_among_the_models_is_not_found() -> None:
    with pytest.raises(ModelNotFound):
        fanout(("levels", "nope"), None)


# --- per-segment answers --------------------------------------------------------------------


def row(*scores: float) -> FloatArray:
    return np.array(scores, dtype=np.float32)


def test_an_utterance_is_the_most_energetic_window_of_its_segment() -> None:
    gate = SpeechGate(0.5, 0.0)
    hops(gate, [0.0] * 5 + [0.9] * 3 + [0.0] * 10 + [0.9] * 30 + [0.0] * 5)
    # segments: 0.5-0.8 s and 1.8-4.8 s (too long for a 1 s window: over 1.5 s)
    collector = UtteranceCollector(gate, ("yes", "no"), 1, window_s=1.0)
    # the first window is the surest, but the second holds more of the utterance
    assert collector.add(row(0.95, 0.05), 0.0, 1.0, energy=2.0) == []
    assert collector.add(row(0.1, 0.9), 0.25, 1.25, energy=5.0) == []
    assert collector.add(row(0.99, 0.01), 0.5, 1.5, energy=1.0) == []
    done = collector.add(row(0.5, 0.5), 1.5, 2.5, energy=9.0)  # the next segment
    assert len(done) == 1
    first = done[0]
    assert (round(first.start_s, 6), round(first.end_s, 6)) == (0.5, 0.8)
    assert [label for label, _ in first.labels] == ["no"] and not first.too_long
    assert first.labels[0][1] == pytest.approx(0.9)
    assert (first.window_start_s, first.window_end_s) == (0.25, 1.25)
    (second,) = collector.flush()
    assert second.too_long and second.labels == []
    assert collector.flush() == []


async def test_a_per_segment_model_answers_once_per_segment_not_per_window() -> None:
    specs, backend = setup()
    request = StreamRequest(
        ("levels", "other"),
        F32,
        StreamOptions(top_k=2),
        GateRequest("vad", padding_ms=20),
        per_segment=("levels",),
        several=True,
    )
    stream = open_fanout(request, spec_of(specs), keep, Inference(backend))
    audio = levels((0.0, 0.5), (SPEECH, 0.1), (0.0, 0.6), (SPEECH, 0.5), (0.0, 0.5))
    events = await run(stream, audio, 400)
    assert not [e for e in events if isinstance(e, WindowEvent) and e.model == "levels"]
    assert [e for e in events if isinstance(e, WindowEvent) and e.model == "other"]
    answers = [e for e in events if isinstance(e, UtteranceEvent)]
    assert [(a.model, a.too_long) for a in answers] == [("levels", False), ("levels", True)]
    short, long = answers
    assert (round(short.start_s, 6), round(short.end_s, 6)) == (0.5, 0.6)
    assert len(short.labels) == 2  # top_k of the preferred window (the fake ties them all)
    assert long.labels == []
    assert short.start_s - 0.02 < short.window_end_s and short.window_start_s < short.end_s + 0.02


@pytest.mark.parametrize(
    ("per_segment", "gate", "sentence"),
    [
        (("levels",), None, "set gate_model"),
        (("nope",), GateRequest("vad"), "not one of the stream's models"),
        (("vad",), GateRequest("vad"), "is the gate"),
    ],
)
def test_per_segment_requests_that_cannot_run_are_refused(
    per_segment: tuple[str, ...], gate: GateRequest | None, sentence: str
) -> None:
    specs, backend = setup()
    request = StreamRequest(
        ("levels", "vad"), F32, StreamOptions(), gate, per_segment=per_segment, several=True
    )
    with pytest.raises(InvalidRequest, match=sentence):
        open_fanout(request, spec_of(specs), keep, Inference(backend))
