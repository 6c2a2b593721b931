"""Every gateway limit, against a real gateway (started with small limits) and real Triton.

Each refusal must be RESOURCE_EXHAUSTED or INVALID_ARGUMENT with a sentence that names the
limit's setting, and the gateway must keep serving afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
import pytest_asyncio

import tritone
from support.faults import RATE, descendants_with_cmdline, paced_stream
from support.gateway import GatewayStartError, RunningGateway, start_gateway, tones_repository
from support.tones import FREQS, LABELS, encode, to_s16le, tone
from tritone_protos import audio_classification_pb2 as pb
from tritone_protos import audio_classification_pb2_grpc as pb_grpc

pytestmark = pytest.mark.integration

LIMITS = {
    "--max-streams": "3",
    "--max-unary-calls": "4",
    "--max-stream-s": "6",
    "--stream-idle-s": "1",
    "--config-timeout-s": "1",
    "--max-chunk-bytes": "65536",
    "--max-queued-bytes": "262144",
    "--decode-workers": "1",
    "--decode-queue": "1",
    "--decode-worker-memory-mb": "1536",
}


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    """A gateway under `LIMITS`, its Triton serving ``tones`` only (the model used here)."""
    args = [item for pair in LIMITS.items() for item in pair]
    args += ["--model-repository", str(tones_repository(tmp_path_factory.mktemp("models")))]
    args += ["--default-model", "tones"]
    try:
        with start_gateway(*args) as running:
            yield running
    except GatewayStartError as exc:
        pytest.fail(str(exc))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def client(limited: RunningGateway) -> AsyncIterator[tritone.AsyncClient]:
    async with tritone.AsyncClient(limited.target, timeout=60.0, retries=0) as c:
        yield c


def pcm(seconds: float, band: int = 2) -> bytes:
    return to_s16le(tone(FREQS[band], seconds, RATE))


async def still_serving(client: tritone.AsyncClient) -> None:
    result = await client.classify(tone(FREQS[5], 0.5, RATE), sample_rate=RATE, model="tones")
    assert result.labels[0].label == LABELS[5]


async def test_one_stream_over_max_streams_is_refused(client: tritone.AsyncClient) -> None:
    stop = asyncio.Event()
    answered = asyncio.Semaphore(0)
    holders = [asyncio.create_task(paced_stream(client, stop, answered=answered)) for _ in range(3)]
    try:
        for _ in holders:  # a window answered: each stream holds its place in the handler
            await asyncio.wait_for(answered.acquire(), 60)
        with pytest.raises(tritone.ResourceExhaustedError, match="--max-streams") as caught:
            async for _ in client.stream_classify([pcm(0.5)], sample_rate=RATE, model="tones"):
                pass
        assert caught.value.frames_received == 0  # counts come with every failed stream
    finally:
        stop.set()  # a failure above must not leave the three streams holding the limit
    outcomes = await asyncio.gather(*holders)
    assert all(o.summary is not None and o.error is None for o in outcomes)
    events = [e async for e in client.stream_classify([pcm(0.5)], sample_rate=RATE, model="tones")]
    assert isinstance(events[-1], tritone.StreamSummary)  # room again


async def test_unary_calls_over_max_unary_calls_are_refused(client: tritone.AsyncClient) -> None:
    # 40 clips of 20 s at once against a limit of 4: the handlers start as the requests
    # arrive, long before the first has its Triton answers, so most are refused.
    audio = tone(FREQS[1], 20.0, RATE)
    outcomes = await asyncio.gather(
        *(client.classify(audio, sample_rate=RATE, model="tones") for _ in range(40)),
        return_exceptions=True,
    )
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    served = [o for o in outcomes if not isinstance(o, BaseException)]
    assert refused and served
    assert all(isinstance(o, tritone.ResourceExhaustedError) for o in refused), refused[:3]
    assert all("--max-unary-calls" in str(o) for o in refused)
    assert all(r.labels[0].label == LABELS[1] for r in served)
    await still_serving(client)


async def test_http_classify_shares_max_unary_calls_and_is_refused_with_429(
    limited: RunningGateway, client: tritone.AsyncClient
) -> None:
    # The HTTP route counts against the same max_unary_calls as gRPC's unary calls: 40
    # posts of a 20 s WAV at once against a limit of 4.
    wav = encode(tone(FREQS[3], 20.0, RATE), RATE, "wav")
    url = f"{limited.http_url}/models/tones"
    async with aiohttp.ClientSession() as session:

        async def post() -> tuple[int, Any]:
            async with session.post(url, data=wav, headers={"Content-Type": "audio/wav"}) as r:
                return r.status, await r.json()

        outcomes = await asyncio.gather(*(post() for _ in range(40)))
    statuses = sorted({status for status, _ in outcomes})
    assert statuses == [200, 429], statuses
    for status, body in outcomes:
        if status == 429:
            assert isinstance(body, dict) and "--max-unary-calls" in str(body["error"]), body
        else:
            assert body[0]["label"] == LABELS[3], body
    await still_serving(client)


async def test_decode_requests_over_decode_queue_are_refused(
    client: tritone.AsyncClient,
) -> None:
    # One decode worker, one request may wait: of 4 admitted calls (max_unary_calls) at
    # once, one decodes, one waits, and the others are refused by the decode queue. Ogg
    # Vorbis: a small file (they all arrive at once) that is slow to decode.
    ogg = encode(tone(FREQS[4], 120.0, RATE), RATE, "ogg")
    outcomes = await asyncio.gather(
        *(client.classify(ogg, model="tones") for _ in range(12)), return_exceptions=True
    )
    messages = [o.details for o in outcomes if isinstance(o, tritone.ResourceExhaustedError)]
    assert any("--decode-queue" in m for m in messages), messages
    assert not [
        o
        for o in outcomes
        if isinstance(o, BaseException) and not isinstance(o, tritone.ResourceExhaustedError)
    ]
    await still_serving(client)


def test_decode_workers_run_under_the_address_space_limit(limited: RunningGateway) -> None:
    workers = descendants_with_cmdline(limited.process.pid, "_decode_worker")
    assert workers, "no decode worker found under the gateway"
    for pid in workers:
        limits = Path(f"/proc/{pid}/limits").read_text()
        line = next(x for x in limits.splitlines() if x.startswith("Max address space"))
        assert line.split()[3] == str(1536 * 1024 * 1024), line


async def test_a_chunk_over_max_chunk_bytes_is_refused(client: tritone.AsyncClient) -> None:
    with pytest.raises(tritone.ResourceExhaustedError, match="--max-chunk-bytes") as caught:
        async for _ in client.stream_classify(
            [pcm(1.0), b"\0" * 65538], sample_rate=RATE, model="tones"
        ):
            pass
    assert caught.value.frames_received is not None and caught.value.frames_received >= RATE
    await still_serving(client)


async def test_a_big_chunk_at_a_low_declared_rate_still_gets_its_summary(
    client: tritone.AsyncClient,
) -> None:
    # The largest chunk allowed, declared at the lowest rate: 32,768 frames at 1 kHz, which
    # resampled become 524,288 samples at 16 kHz (the work per message is bounded by the
    # chunk cap and sliced off the event loop); meanwhile another caller is served.
    low = to_s16le(tone(200.0, 32.768, 1000))
    assert len(low) == 65536
    stream = client.stream_classify([low], sample_rate=1000, model="tones", suppress_windows=True)
    events, _ = await asyncio.gather(asyncio.wait_for(_collect(stream), 120), still_serving(client))
    summary = events[-1]
    assert isinstance(summary, tritone.StreamSummary)
    assert summary.frames_received == 32768
    assert summary.model_samples == 32768 * 16


async def _collect(stream: tritone.AudioStream) -> list[tritone.StreamEvent]:
    return [e async for e in stream]


async def test_a_stream_without_its_config_is_ended(limited: RunningGateway) -> None:
    async with grpc.aio.insecure_channel(limited.target) as channel:
        stub = pb_grpc.AudioClassificationStub(channel)  # type: ignore[no-untyped-call]
        never = asyncio.Event()

        async def nothing() -> AsyncIterator[pb.StreamClassifyRequest]:
            await never.wait()
            yield pb.StreamClassifyRequest()  # pragma: no cover

        call = stub.StreamClassify(nothing(), timeout=30)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in call:
                pass
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "--config-timeout-s" in (caught.value.details() or "")


async def test_an_idle_stream_is_ended_with_its_counts(client: tritone.AsyncClient) -> None:
    async with client.stream_classify(sample_rate=RATE, model="tones") as stream:
        await stream.send(pcm(1.0))
        with pytest.raises(tritone.ResourceExhaustedError, match="--stream-idle-s") as caught:
            async for _ in stream:
                pass
    assert caught.value.frames_received == RATE
    assert caught.value.frames_consumed == RATE  # windows up to 1 s were answered


async def test_a_stream_past_max_stream_s_is_ended(client: tritone.AsyncClient) -> None:
    stop = asyncio.Event()
    outcome = await asyncio.wait_for(paced_stream(client, stop, pause_s=0.2), 60)
    assert isinstance(outcome.error, tritone.ResourceExhaustedError), outcome
    assert "--max-stream-s" in outcome.error.details
    assert outcome.error.frames_received is not None and outcome.error.frames_received > 0
    consumed = outcome.error.frames_consumed
    assert consumed is not None and 0 < consumed <= outcome.error.frames_received


@pytest.mark.parametrize("hop_ms", [1, 9, 501, 1000])
async def test_a_hop_outside_10_ms_to_the_window_is_refused(
    client: tritone.AsyncClient, hop_ms: int
) -> None:
    with pytest.raises(tritone.InvalidArgumentError, match="between 10 ms and the window"):
        async for _ in client.stream_classify(
            [pcm(1.0)], sample_rate=RATE, model="tones", hop_ms=hop_ms
        ):
            pass


async def test_a_hop_of_the_whole_window_leaves_no_audio_unclassified(
    client: tritone.AsyncClient,
) -> None:
    events = [
        e
        async for e in client.stream_classify(
            [pcm(2.0)], sample_rate=RATE, model="tones", hop_ms=500
        )
    ]
    windows = [e for e in events if isinstance(e, tritone.WindowResult)]
    summary = events[-1]
    assert isinstance(summary, tritone.StreamSummary)
    assert [(w.start_s, w.end_s) for w in windows] == [
        pytest.approx((i * 0.5, i * 0.5 + 0.5)) for i in range(4)
    ]
    assert summary.windows == 4 and summary.model_samples == 2 * RATE


async def test_interim_results_are_not_sent_with_suppress_windows(
    client: tritone.AsyncClient,
) -> None:
    audio = pcm(0.3)  # shorter than the 0.5 s window: only interim results could come
    pieces = [audio[i : i + 1600] for i in range(0, len(audio), 1600)]
    suppressed = [
        e
        async for e in client.stream_classify(
            pieces, sample_rate=RATE, model="tones", interim_results=True, suppress_windows=True
        )
    ]
    assert not [e for e in suppressed if isinstance(e, tritone.WindowResult)]
    assert isinstance(suppressed[-1], tritone.StreamSummary)
    shown = [
        e
        async for e in client.stream_classify(
            pieces, sample_rate=RATE, model="tones", interim_results=True
        )
    ]
    assert [e for e in shown if isinstance(e, tritone.WindowResult) and e.interim]
