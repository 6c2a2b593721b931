"""Bad requests get a clear status, and the gateway keeps serving everyone else."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

import tritone
from support.gateway import RunningGateway
from support.tones import FREQS, LABELS, to_s16le, tone
from tritone.errors import StatusCode
from tritone_protos import audio_classification_pb2 as pb
from tritone_protos import audio_classification_pb2_grpc as pb_grpc


async def assert_still_serving(client: tritone.AsyncClient) -> None:
    result = await client.classify(tone(FREQS[4], 0.5, 16000), sample_rate=16000, model="tones")
    assert result.labels[0].label == LABELS[4]


async def test_unknown_model_is_not_found(client: tritone.AsyncClient) -> None:
    with pytest.raises(tritone.ModelNotFoundError) as caught:
        await client.classify(tone(FREQS[0], 0.5, 16000), sample_rate=16000, model="no-such")
    assert caught.value.code is StatusCode.NOT_FOUND
    assert isinstance(caught.value, LookupError)
    assert "no-such" in caught.value.details
    await assert_still_serving(client)


async def test_get_unknown_model_is_not_found(client: tritone.AsyncClient) -> None:
    with pytest.raises(tritone.ModelNotFoundError):
        await client.get_model("no-such")


async def test_undecodable_bytes_are_invalid_argument(client: tritone.AsyncClient) -> None:
    with pytest.raises(tritone.InvalidArgumentError) as caught:
        await client.classify(b"this is not audio at all" * 100, model="tones")
    assert caught.value.code is StatusCode.INVALID_ARGUMENT
    assert isinstance(caught.value, ValueError)
    await assert_still_serving(client)


async def test_truncated_wav_header_is_invalid_argument(client: tritone.AsyncClient) -> None:
    with pytest.raises(tritone.InvalidArgumentError):
        await client.classify(b"RIFF\x24\x00\x00\x00WAVEfmt ", model="tones")
    await assert_still_serving(client)


async def test_raw_pcm_with_a_partial_frame_is_invalid_argument(
    client: tritone.AsyncClient,
) -> None:
    pcm = tritone.RawPcm(b"\x00\x01\x02", 16000, tritone.PcmEncoding.S16LE, 1)
    with pytest.raises(tritone.InvalidArgumentError):
        await client.classify(pcm, model="tones")
    await assert_still_serving(client)


async def test_stream_to_unknown_model_is_not_found(client: tritone.AsyncClient) -> None:
    pcm = to_s16le(tone(FREQS[0], 0.5, 16000))
    with pytest.raises(tritone.ModelNotFoundError):
        async for _ in client.stream_classify([pcm], sample_rate=16000, model="no-such"):
            pass
    await assert_still_serving(client)


async def test_stream_with_an_impossible_rate_is_invalid_argument(
    client: tritone.AsyncClient,
) -> None:
    with pytest.raises(tritone.InvalidArgumentError) as caught:
        async for _ in client.stream_classify(
            [b"\x00\x00" * 100], sample_rate=10**9, model="tones"
        ):
            pass
    assert caught.value.code is StatusCode.INVALID_ARGUMENT
    await assert_still_serving(client)


async def test_embed_on_a_labelling_model_is_invalid_argument(client: tritone.AsyncClient) -> None:
    with pytest.raises(tritone.InvalidArgumentError) as caught:
        await client.embed(tone(FREQS[0], 0.5, 16000), sample_rate=16000, model="tones")
    assert "Classify" in caught.value.details
    await assert_still_serving(client)


def _nan_midway_stream() -> list[pb.StreamClassifyRequest]:
    """0.7 s of 44.1 kHz stereo f32le in 310 tiny chunks, a NaN in the middle one: the
    stream fails while its caller still has half of it to write (fuzz input #391)."""
    fmt = pb.PcmFormat(encoding=pb.PCM_F32LE, sample_rate=44100, channels=2)
    config = pb.StreamConfig(model="voice-activity", format=fmt, top_k=2)
    audio = (0.1 * np.random.default_rng(391).standard_normal(2 * 30870)).astype("<f4")
    audio[len(audio) // 2] = np.nan
    raw = audio.tobytes()
    chunks = [raw[i : i + 800] for i in range(0, len(raw), 800)]
    return [
        pb.StreamClassifyRequest(config=config),
        *(pb.StreamClassifyRequest(audio=c) for c in chunks),
    ]


def test_a_stream_failing_while_its_caller_writes_ends_at_once(gateway: RunningGateway) -> None:
    """The failure reaches the caller as INVALID_ARGUMENT, every time: the stream's reader,
    blocked on a full queue when the classifier fails, must not outlive the handler (a
    cancellation swallowed by asyncio.wait_for once left half of these hanging until the
    caller's deadline)."""
    messages = _nan_midway_stream()
    with grpc.insecure_channel(gateway.target) as channel:
        stub = pb_grpc.AudioClassificationStub(channel)  # type: ignore[no-untyped-call]
        outcomes = []
        for _ in range(12):
            try:
                for _ in stub.StreamClassify(iter(messages), timeout=20):
                    pass
                outcomes.append(("OK", ""))
            except grpc.RpcError as exc:
                outcomes.append((exc.code().name, exc.details() or ""))
    assert all(code == "INVALID_ARGUMENT" for code, _ in outcomes), outcomes
    assert all("NaN or infinite" in details for _, details in outcomes), outcomes
