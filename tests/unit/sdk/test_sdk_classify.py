"""classify(), list_models(), get_model(): what the SDK sends and what it returns."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

import tritone
from tritone_protos import audio_classification_pb2 as pb

if TYPE_CHECKING:
    from support.fake_gateway import FakeServer


def last_request(fake_server: FakeServer) -> pb.ClassifyRequest:
    return fake_server.servicer.classify_requests[-1]


async def test_path_sends_the_file_bytes(
    client: tritone.AsyncClient, fake_server: FakeServer, tmp_path: Path
) -> None:
    path = tmp_path / "clip.flac"
    path.write_bytes(b"fLaC-not-really" * 10)
    await client.classify(path)
    await client.classify(str(path))
    assert last_request(fake_server).audio.encoded == path.read_bytes()
    assert fake_server.servicer.classify_requests[-2].audio.encoded == path.read_bytes()


async def test_bytes_are_sent_as_an_encoded_file(
    client: tritone.AsyncClient, fake_server: FakeServer
) -> None:
    await client.classify(b"RIFF....WAVE", model="m1", top_k=2, segments=True, activation="none")
    request = last_request(fake_server)
    assert request.audio.WhichOneof("source") == "encoded"
    assert request.audio.encoded == b"RIFF....WAVE"
    assert (request.model, request.top_k, request.segments) == ("m1", 2, True)
    assert request.activation == pb.ACTIVATION_NONE


async def test_defaults_leave_options_to_the_server(
    client: tritone.AsyncClient, fake_server: FakeServer
) -> None:
    await client.classify(b"x")
    request = last_request(fake_server)
    assert (request.model, request.top_k, request.segments) == ("", 0, False)
    assert request.activation == pb.ACTIVATION_UNSPECIFIED


async def test_float_array_is_sent_as_f32le(
    client: tritone.AsyncClient, fake_server: FakeServer
) -> None:
    audio = np.linspace(-1, 1, 800, dtype=np.float64)
    result = await client.classify(audio, sample_rate=8000)
    raw = last_request(fake_server).audio.raw
    assert raw.format.encoding == pb.PCM_F32LE
    assert (raw.format.sample_rate, raw.format.channels) == (8000, 1)
    assert raw.data == audio.astype("<f4").tobytes()
    assert (result.input_frames, result.input_sample_rate) == (800, 8000)


async def test_int16_array_is_sent_as_s16le(
    client: tritone.AsyncClient, fake_server: FakeServer
) -> None:
    audio = np.arange(-500, 500, dtype=np.int16)
    await client.classify(audio, sample_rate=16000)
    raw = last_request(fake_server).audio.raw
    assert raw.format.encoding == pb.PCM_S16LE
    assert raw.data == audio.astype("<i2").tobytes()


async def test_stereo_array_is_interleaved(
    client: tritone.AsyncClient, fake_server: FakeServer
) -> None:
    left = np.full(100, 0.25, dtype=np.float32)
    right = np.full(100, -0.5, dtype=np.float32)
    stereo = np.stack([left, right], axis=1)
    result = await client.classify(stereo, sample_rate=44100)
    raw = last_request(fake_server).audio.raw
    assert raw.format.channels == 2
    samples = np.frombuffer(raw.data, dtype="<f4")
    assert samples[:4].tolist() == [0.25, -0.5, 0.25, -0.5]
    assert result.input_frames == 100


async def test_raw_pcm_is_sent_as_declared(
    client: tritone.AsyncClient, fake_server: FakeServer
) -> None:
    pcm = tritone.RawPcm(b"\x01\x00" * 6, 22050, tritone.PcmEncoding.S16LE, channels=2)
    await client.classify(pcm)
    raw = last_request(fake_server).audio.raw
    assert raw.format.encoding == pb.PCM_S16LE
    assert (raw.format.sample_rate, raw.format.channels, raw.data) == (22050, 2, pcm.data)


async def test_result_is_converted_to_frozen_dataclasses(client: tritone.AsyncClient) -> None:
    result = await client.classify(b"x", model="m2", segments=True)
    assert isinstance(result, tritone.ClassifyResult)
    assert result.labels == (
        tritone.LabelScore("dog", 0.75),
        tritone.LabelScore("cat", 0.125),
        tritone.LabelScore("bird", 0.0625),
    )
    assert result.top == tritone.LabelScore("dog", 0.75)
    assert (result.model, result.model_version, result.duration_s) == ("m2", "7", 1.5)
    assert result.segments == (
        tritone.Segment(0.0, 1.0, (tritone.LabelScore("dog", 0.75),)),
        tritone.Segment(0.5, 1.5, (tritone.LabelScore("cat", 0.125),)),
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.model = "other"  # type: ignore[misc]
    assert isinstance(result.labels, tuple) and isinstance(result.segments, tuple)


async def test_top_k_is_forwarded(client: tritone.AsyncClient) -> None:
    result = await client.classify(b"x", top_k=1)
    assert [ls.label for ls in result.labels] == ["dog"]


@pytest.mark.parametrize(
    ("audio", "kwargs", "fragment"),
    [
        (np.zeros(10, dtype=np.float32), {}, "sample_rate is required"),
        (np.zeros(10, dtype=np.float32), {"sample_rate": 0}, "sample_rate"),
        (np.zeros(10, dtype=np.int32), {"sample_rate": 8000}, "dtype int32"),
        (np.zeros((2, 2, 2), dtype=np.float32), {"sample_rate": 8000}, "shape"),
        (np.zeros(0, dtype=np.float32), {"sample_rate": 8000}, "empty"),
        (b"", {}, "empty"),
        (b"x", {"sample_rate": 16000}, "sample_rate applies only"),
        (b"x", {"top_k": 0}, "top_k"),
        (b"x", {"activation": "relu"}, "activation"),
        (b"x", {"model": ""}, "model"),
        (b"x", {"timeout": -1.0}, "timeout"),
        (tritone.RawPcm(b"\x00\x01\x02", 16000, tritone.PcmEncoding.S16LE), {}, "whole number"),
        (tritone.RawPcm(b"\x00\x00", 16000, tritone.PcmEncoding.S16LE, 0), {}, "channels"),
        (12345, {}, "audio must be"),
    ],
)
async def test_bad_input_is_rejected_before_sending(
    client: tritone.AsyncClient,
    fake_server: FakeServer,
    audio: Any,
    kwargs: dict[str, Any],
    fragment: str,
) -> None:
    sent = len(fake_server.servicer.classify_requests)
    with pytest.raises(tritone.InvalidArgumentError) as caught:
        await client.classify(audio, **kwargs)
    assert caught.value.code is tritone.StatusCode.INVALID_ARGUMENT
    assert isinstance(caught.value, ValueError)
    assert fragment in caught.value.details
    assert len(fake_server.servicer.classify_requests) == sent


async def test_missing_file_raises_oserror(client: tritone.AsyncClient, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        await client.classify(tmp_path / "nope.wav")


async def test_list_and_get_models(client: tritone.AsyncClient) -> None:
    models = await client.list_models()
    assert [m.name for m in models] == ["speech", "vad"]
    speech, vad = models
    assert speech == tritone.ModelInfo(
        name="speech",
        version="7",
        task="audio-classification",
        labels=("dog", "cat", "bird"),
        sample_rate=16000,
        window_samples=16000,
        hop_samples=8000,
        activation="softmax",
        stateful=False,
        ready=True,
        description="the speech model",
    )
    assert vad.stateful and vad.activation == "sigmoid"
    assert await client.get_model("speech") == speech
    with pytest.raises(tritone.ModelNotFoundError) as caught:
        await client.get_model("missing")
    assert caught.value.details == "no model named 'missing'"


async def test_token_is_sent_as_bearer_metadata_without_tls(fake_server: FakeServer) -> None:
    async with tritone.AsyncClient(fake_server.target, token="s3cret") as c:
        await c.classify(b"x")
        async for _ in c.stream_classify([b"\x00\x00"], sample_rate=16000, model="token-stream"):
            pass
    assert fake_server.servicer.classify_metadata[-1]["authorization"] == "Bearer s3cret"
    assert fake_server.servicer.streams["token-stream"].metadata["authorization"] == (
        "Bearer s3cret"
    )


async def test_closed_client_refuses_calls(fake_server: FakeServer) -> None:
    c = tritone.AsyncClient(fake_server.target)
    await c.classify(b"x")
    await c.close()
    await c.close()
    with pytest.raises(tritone.ClientClosedError):
        await c.classify(b"x")
    with pytest.raises(tritone.ClientClosedError):
        c.stream_classify(sample_rate=16000)
    assert isinstance(tritone.ClientClosedError("x"), RuntimeError)


async def test_client_argument_validation() -> None:
    with pytest.raises(ValueError, match="target"):
        tritone.AsyncClient("")
    with pytest.raises(ValueError, match="retries"):
        tritone.AsyncClient("h:1", retries=-1)
    with pytest.raises(ValueError, match="timeout"):
        tritone.AsyncClient("h:1", timeout=0)
    with pytest.raises(TypeError, match="tls"):
        tritone.AsyncClient("h:1", tls="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="private_key"):
        tritone.TlsConfig(private_key=b"k")
