"""stream_classify(models=..., gate=...): the config it sends, its checks, and the events
(speech segments, per-model summaries) it gives back."""

from __future__ import annotations

from typing import Any

import pytest

import tritone
from tritone import _convert, cli
from tritone_protos import audio_classification_pb2 as pb


def config(**options: Any) -> pb.StreamConfig:
    base: dict[str, Any] = {
        "sample_rate": 16000,
        "model": None,
        "encoding": tritone.PcmEncoding.S16LE,
        "channels": 1,
        "top_k": None,
        "hop_ms": None,
        "interim_results": False,
        "detection_threshold": None,
        "detection_labels": (),
        "activation": None,
        "suppress_windows": False,
    }
    return _convert.stream_config_request(**{**base, **options}).config


def test_models_and_gate_reach_the_config() -> None:
    c = config(
        models=["speech-commands", "speaker"],
        gate="voice-activity",
        gate_threshold=0.6,
        gate_padding_ms=0,
    )
    assert list(c.models) == ["speech-commands", "speaker"] and c.model == ""
    assert c.gate_model == "voice-activity" and c.gate_threshold == pytest.approx(0.6)
    assert c.HasField("gate_padding_ms") and c.gate_padding_ms == 0


def test_without_the_new_options_the_config_is_as_before() -> None:
    c = config(model="speech-commands")
    assert not c.models and not c.gate_model and not c.HasField("gate_padding_ms")


@pytest.mark.parametrize(
    ("options", "sentence"),
    [
        ({"model": "a", "models": ["b"]}, "model or models, not both"),
        ({"models": "ab"}, "not one string"),
        ({"models": ["a", ""]}, "non-empty model names"),
        ({"gate_threshold": 0.5}, "need a gate model"),
        ({"gate": "voice-activity", "gate_threshold": 0}, "gate_threshold"),
        ({"gate": "voice-activity", "gate_threshold": 1.5}, "gate_threshold"),
        ({"gate": "voice-activity", "gate_padding_ms": -1}, "gate_padding_ms"),
        ({"gate": ""}, "gate must be a model name"),
    ],
)
def test_bad_gate_options_are_refused_at_once(options: dict[str, Any], sentence: str) -> None:
    with pytest.raises(tritone.InvalidArgumentError, match=sentence):
        config(**options)


def test_segment_and_per_model_summary_events() -> None:
    segment = _convert.stream_event(
        pb.StreamClassifyResponse(
            segment=pb.SpeechSegment(start_s=1.0, end_s=1.5, final=True, model="vad"),
            frames_received=24000,
            consumed_s=1.2,
        )
    )
    assert segment == tritone.SpeechSegment(1.0, 1.5, True, "vad", 24000, 1.2)
    summary = _convert.stream_event(
        pb.StreamClassifyResponse(
            summary=pb.StreamSummary(
                model="sc",
                windows=3,
                models=[
                    pb.ModelSummary(model="vad", windows=100, segments=2, gate=True),
                    pb.ModelSummary(
                        model="sc",
                        windows=3,
                        windows_skipped=9,
                        segments=2,
                        gated=True,
                        labels=[pb.LabelScore(label="yes", score=0.5)],
                    ),
                ],
            )
        )
    )
    assert isinstance(summary, tritone.StreamSummary)
    vad, sc = summary.models
    assert vad.gate and not vad.gated and vad.windows == 100
    assert sc.gated and (sc.windows, sc.windows_skipped, sc.segments) == (3, 9, 2)
    assert sc.labels == (tritone.LabelScore("yes", 0.5),)
    window = _convert.stream_event(pb.StreamClassifyResponse(window=pb.WindowResult(model="sc")))
    assert isinstance(window, tritone.WindowResult) and window.model == "sc"


def test_per_segment_reaches_the_config_and_needs_a_gate() -> None:
    c = config(models=["speech-commands"], gate="voice-activity", per_segment=["speech-commands"])
    assert list(c.per_segment) == ["speech-commands"]
    with pytest.raises(tritone.InvalidArgumentError, match="give gate"):
        config(models=["speech-commands"], per_segment=["speech-commands"])


def test_an_utterance_event() -> None:
    event = _convert.stream_event(
        pb.StreamClassifyResponse(
            utterance=pb.Utterance(
                model="sc",
                start_s=1.0,
                end_s=1.5,
                labels=[pb.LabelScore(label="yes", score=0.5)],
                window_start_s=0.75,
                window_end_s=1.75,
            )
        )
    )
    assert event == tritone.Utterance(
        "sc", 1.0, 1.5, (tritone.LabelScore("yes", 0.5),), 0.75, 1.75, False, 0, 0.0
    )


def test_an_embedding_utterance_carries_the_pooled_embedding() -> None:
    event = _convert.stream_event(
        pb.StreamClassifyResponse(
            utterance=pb.Utterance(
                model="speaker-embedding", start_s=1.0, end_s=2.5, embedding=[0.6, 0.8]
            )
        )
    )
    assert isinstance(event, tritone.Utterance)
    assert event.labels == () and event.embedding == pytest.approx((0.6, 0.8))


def test_the_cli_prints_who_spoke_and_an_embedding_per_segment(
    capsys: pytest.CaptureFixture[str],
) -> None:
    speaker = tritone.Utterance(
        "fish", 1.0, 2.5, (tritone.LabelScore("unknown", 0.9),), 0.8, 2.7, False, 0, 0.0
    )
    pooled = tritone.Utterance("speaker-embedding", 1.0, 2.5, (), 0.8, 2.7, False, 0, 0.0, (1.0,))
    cli._print_event(speaker, as_json=False)
    cli._print_event(pooled, as_json=False)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "utterance fish [   1.00 -    2.50] unknown 0.900",
        "utterance speaker-embedding [   1.00 -    2.50] embedding 1-d [1.000, ...]",
    ]
