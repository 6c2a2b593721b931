"""stream_classify(): send / end / iterate, the chunks form, cancellation, concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import numpy as np
import pytest

import tritone
from tritone_protos import audio_classification_pb2 as pb

if TYPE_CHECKING:
    from support.fake_gateway import FakeServer


async def test_send_end_iterate(client: tritone.AsyncClient, fake_server: FakeServer) -> None:
    async with client.stream_classify(
        sample_rate=16000,
        model="form-a",
        top_k=3,
        hop_ms=250,
        interim_results=True,
        detection_threshold=0.6,
        detection_labels=["dog"],
        activation="sigmoid",
    ) as stream:
        await stream.send(b"\x01\x00\x02\x00")
        await stream.send(b"\x03\x00")
        await stream.end()
        await stream.end()
        events = [event async for event in stream]
    record = fake_server.servicer.streams["form-a"]
    assert bytes(record.audio) == b"\x01\x00\x02\x00\x03\x00"
    assert record.half_closed and not record.cancelled
    config = record.config
    assert config.format == pb.PcmFormat(encoding=pb.PCM_S16LE, sample_rate=16000, channels=1)
    assert (config.top_k, config.hop_ms, config.interim_results) == (3, 250, True)
    assert config.detection_threshold == pytest.approx(0.6)
    assert list(config.detection_labels) == ["dog"]
    assert config.activation == pb.ACTIVATION_SIGMOID

    first, detection, second, summary = events
    assert first == tritone.WindowResult(
        index=0,
        start_s=0.0,
        end_s=1.0,
        labels=(tritone.LabelScore("dog", 0.5),),
        interim=True,
        frames_received=2,
        consumed_s=2 / 16000,
    )
    assert isinstance(detection, tritone.Detection)
    assert detection.label == "dog"
    assert detection.peak_score == pytest.approx(0.9)
    assert isinstance(second, tritone.WindowResult) and not second.interim
    assert isinstance(summary, tritone.StreamSummary)
    assert (summary.bytes_received, summary.frames_received, summary.windows) == (6, 3, 2)
    assert (summary.padding_samples, summary.detections, summary.model) == (3, 1, "form-a")


async def test_numpy_chunks_are_converted_to_the_declared_encoding(
    client: tritone.AsyncClient, fake_server: FakeServer
) -> None:
    floats = np.array([0.0, 0.5, -1.0, 2.0], dtype=np.float32)
    ints = np.array([100, -100], dtype=np.int16)
    async with client.stream_classify(sample_rate=8000, model="np-s16") as stream:
        await stream.send(floats)
        await stream.send(ints)
        await stream.end()
        [event async for event in stream]
    got = np.frombuffer(bytes(fake_server.servicer.streams["np-s16"].audio), dtype="<i2")
    assert got.tolist() == [0, 16384, -32767, 32767, 100, -100]

    stereo = np.array([[0.25, -0.25], [0.5, -0.5]], dtype=np.float64)
    async with client.stream_classify(
        sample_rate=8000, model="np-f32", encoding=tritone.PcmEncoding.F32LE, channels=2
    ) as stream:
        await stream.send(stereo)
        await stream.send(np.array([[16384, -16384]], dtype=np.int16))
        with pytest.raises(tritone.InvalidArgumentError, match="channel"):
            await stream.send(np.zeros(4, dtype=np.float32))
        await stream.end()
        [event async for event in stream]
    record = fake_server.servicer.streams["np-f32"]
    assert record.config.format.encoding == pb.PCM_F32LE and record.config.format.channels == 2
    got_f = np.frombuffer(bytes(record.audio), dtype="<f4")
    assert got_f.tolist() == [0.25, -0.25, 0.5, -0.5, 0.5, -0.5]


async def test_chunks_form_with_a_sync_iterable(
    client: tritone.AsyncClient, fake_server: FakeServer
) -> None:
    chunks: list[tritone.AudioChunk] = [b"\x00\x00" * 10, np.zeros(5, dtype=np.float32), b""]
    events = [e async for e in client.stream_classify(chunks, sample_rate=16000, model="sync-it")]
    assert isinstance(events[-1], tritone.StreamSummary)
    assert events[-1].frames_received == 15
    assert sum(isinstance(e, tritone.WindowResult) for e in events) == 2
    assert fake_server.servicer.streams["sync-it"].half_closed


async def test_chunks_form_with_an_async_iterable_inside_async_with(
    client: tritone.AsyncClient, fake_server: FakeServer
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            await asyncio.sleep(0)
            yield b"\x00\x00\x00\x00"

    async with client.stream_classify(chunks(), sample_rate=16000, model="async-it") as stream:
        with pytest.raises(tritone.StreamStateError):
            await stream.send(b"\x00\x00")
        with pytest.raises(tritone.StreamStateError):
            await stream.end()
        events = [e async for e in stream.events()]
    assert len(events) == 4 and isinstance(events[-1], tritone.StreamSummary)
    assert events[-1].bytes_received == 12


async def test_a_connection_lost_after_the_summary_ends_the_stream_normally(
    client: tritone.AsyncClient,
) -> None:
    """The summary accounts for every frame; a gateway that closes its connections once its
    streams have ended (shutdown) must not turn a complete stream into an error."""
    async with client.stream_classify(sample_rate=16000, model="lost-after-summary") as stream:
        await stream.send(b"\x01\x00\x02\x00")
        await stream.end()
        events = [event async for event in stream]
    assert isinstance(events[-1], tritone.StreamSummary)
    assert events[-1].frames_received == 2


async def test_a_failure_before_the_summary_is_still_an_error(
    client: tritone.AsyncClient,
) -> None:
    # the error reaches send() or the iterator, whichever meets it first
    with pytest.raises(tritone.UnavailableError):
        async with client.stream_classify(sample_rate=16000, model="abort:UNAVAILABLE") as s:
            await s.send(b"\x01\x00")
            await s.end()
            _ = [event async for event in s]


async def test_send_after_end_is_refused(client: tritone.AsyncClient) -> None:
    async with client.stream_classify(sample_rate=16000, model="after-end") as stream:
        await stream.send(b"\x00\x00")
        await stream.end()
        with pytest.raises(tritone.StreamStateError, match="end"):
            await stream.send(b"\x00\x00")
        [e async for e in stream]


async def test_leaving_the_block_early_cancels_the_call(
    client: tritone.AsyncClient, fake_server: FakeServer
) -> None:
    async with client.stream_classify(sample_rate=16000, model="hold") as stream:
        await stream.send(b"\x00\x00")
        event = await anext(aiter(stream))
        assert isinstance(event, tritone.WindowResult)
    record = fake_server.servicer.streams["hold"]
    assert await fake_server.wait_for(lambda: record.cancelled)
    with pytest.raises(tritone.StreamStateError):
        await stream.send(b"\x00\x00")


async def test_an_exception_in_the_block_cancels_the_call(
    client: tritone.AsyncClient, fake_server: FakeServer
) -> None:
    with pytest.raises(KeyError):
        async with client.stream_classify(sample_rate=16000, model="raise-in-block") as stream:
            await stream.send(b"\x00\x00")
            await anext(aiter(stream))
            raise KeyError("boom")
    record = fake_server.servicer.streams["raise-in-block"]
    assert await fake_server.wait_for(lambda: record.cancelled)


async def test_cancel_ends_iteration_with_call_cancelled(
    client: tritone.AsyncClient, fake_server: FakeServer
) -> None:
    async with client.stream_classify(sample_rate=16000, model="hold-cancel") as stream:
        await stream.send(b"\x00\x00")
        assert isinstance(await anext(aiter(stream)), tritone.WindowResult)
        assert stream.cancel()
        with pytest.raises(tritone.CallCancelledError) as caught:
            await anext(aiter(stream))
        assert caught.value.code is tritone.StatusCode.CANCELLED
    assert await fake_server.wait_for(lambda: fake_server.servicer.streams["hold-cancel"].cancelled)


async def test_breaking_out_of_the_chunks_form_in_async_with_cancels(
    client: tritone.AsyncClient, fake_server: FakeServer
) -> None:
    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"\x00\x00"
            await asyncio.sleep(0.01)  # a live source, paced as a microphone is

    async with client.stream_classify(endless(), sample_rate=16000, model="endless") as stream:
        async for _ in stream:
            break
    assert await fake_server.wait_for(lambda: fake_server.servicer.streams["endless"].cancelled)


async def test_a_failing_chunk_source_raises_from_the_iterator(
    client: tritone.AsyncClient, fake_server: FakeServer
) -> None:
    def broken() -> Iterator[bytes]:
        yield b"\x00\x00"
        raise OSError("microphone unplugged")

    with pytest.raises(OSError, match="microphone unplugged"):
        async for _ in client.stream_classify(broken(), sample_rate=16000, model="broken"):
            pass
    with pytest.raises(tritone.InvalidArgumentError, match="chunk"):
        async for _ in client.stream_classify([b"", "text"], sample_rate=16000, model="bad-chunk"):  # type: ignore[list-item]
            pass


async def test_options_are_checked_when_the_stream_is_made(client: tritone.AsyncClient) -> None:
    with pytest.raises(tritone.InvalidArgumentError, match="sample_rate"):
        client.stream_classify(sample_rate=0)
    with pytest.raises(tritone.InvalidArgumentError, match="hop_ms"):
        client.stream_classify(sample_rate=16000, hop_ms=-5)
    with pytest.raises(tritone.InvalidArgumentError, match="detection_threshold"):
        client.stream_classify(sample_rate=16000, detection_threshold=0)
    with pytest.raises(tritone.InvalidArgumentError, match="detection_labels"):
        client.stream_classify(sample_rate=16000, detection_labels="dog")
    with pytest.raises(tritone.InvalidArgumentError, match="channels"):
        client.stream_classify(sample_rate=16000, channels=0)
    with pytest.raises(tritone.InvalidArgumentError, match="one bytes"):
        client.stream_classify(b"\x00\x00", sample_rate=16000)  # type: ignore[arg-type]


async def test_a_stream_is_entered_once(client: tritone.AsyncClient) -> None:
    stream = client.stream_classify(sample_rate=16000, model="once")
    async with stream:
        await stream.end()
        [e async for e in stream]
        assert [e async for e in stream] == []
    with pytest.raises(tritone.StreamStateError):
        async with stream:
            pass


async def test_fifty_concurrent_streams_share_one_client(
    client: tritone.AsyncClient, fake_server: FakeServer
) -> None:
    async def one(n: int) -> tritone.StreamSummary:
        chunks = [np.full(160, n, dtype=np.int16) for _ in range(n % 5 + 1)]
        events = [e async for e in client.stream_classify(chunks, sample_rate=16000, model=f"c{n}")]
        summary = events[-1]
        assert isinstance(summary, tritone.StreamSummary)
        return summary

    summaries = await asyncio.gather(*(one(n) for n in range(50)))
    for n, summary in enumerate(summaries):
        assert summary.model == f"c{n}"
        assert summary.frames_received == 160 * (n % 5 + 1)
        got = np.frombuffer(bytes(fake_server.servicer.streams[f"c{n}"].audio), dtype="<i2")
        assert set(got.tolist()) == {n}
