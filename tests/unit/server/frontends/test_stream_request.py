"""The first message of a stream, read into what the core runs: the one-model form stays
as it was; several models and a gate are checked before anything opens."""

from __future__ import annotations

import pytest

from tritone_protos import audio_classification_pb2 as pb
from tritone_server.core.stream_request import GateRequest
from tritone_server.errors import InvalidRequest
from tritone_server.frontends.service import stream_request

FORMAT = pb.PcmFormat(encoding=pb.PCM_S16LE, sample_rate=16000)


def first(**fields: object) -> pb.StreamClassifyRequest:
    return pb.StreamClassifyRequest(config=pb.StreamConfig(format=FORMAT, **fields))  # type: ignore[arg-type]


def test_a_config_without_the_new_fields_is_the_one_model_stream() -> None:
    request = stream_request(first(model="speech-commands"))
    assert request.models == ("speech-commands",)
    assert request.gate is None and not request.several


def test_several_models_and_a_gate() -> None:
    request = stream_request(
        first(models=["a", "b"], gate_model="voice-activity", gate_threshold=0.6)
    )
    assert request.models == ("a", "b") and request.several
    assert request.gate is not None
    assert request.gate.model == "voice-activity" and request.gate.padding_ms is None
    assert request.gate.threshold == pytest.approx(0.6)


def test_a_gate_on_the_one_model_and_an_explicit_zero_padding() -> None:
    request = stream_request(first(model="a", gate_model="vad", gate_padding_ms=0))
    assert request.models == ("a",) and request.several
    assert request.gate == GateRequest("vad", 0.0, 0)


@pytest.mark.parametrize(
    ("fields", "sentence"),
    [
        ({"model": "a", "models": ["b"]}, "model or models, not both"),
        ({"models": ["a", ""]}, "empty model name"),
        ({"gate_threshold": 0.5}, "need a gate_model"),
        ({"gate_padding_ms": 100}, "need a gate_model"),
    ],
)
def test_config_mistakes_are_named(fields: dict[str, object], sentence: str) -> None:
    with pytest.raises(InvalidRequest, match=sentence):
        stream_request(first(**fields))
