"""The gRPC front end in-process: app.Gateway over the fake Triton (no Triton, no subprocess
but the decode worker), called with the real SDK and with raw stubs.

Each error class reaches the caller as its status code and sentence; an exception the gateway
does not know becomes INTERNAL with an error id and nothing else; the metrics and the access
log record the mapped code (the error interceptor runs inside them); a stalled stream stops
reading from its caller once its bounded queue is full.
"""

from __future__ import annotations

import io
import itertools
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import grpc
import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf
from grpc_health.v1 import health_pb2, health_pb2_grpc

import tritone
from support.fake_backend import LABELS
from support.inprocess import (
    DEFAULT_MODEL,
    GATED_WINDOW,
    LIMITS,
    RATE,
    SECRET,
    FakeTriton,
    counter,
    levels,
    stalled_stream,
)
from support.waiting import wait_for
from tritone_protos import audio_classification_pb2 as pb
from tritone_protos import audio_classification_pb2_grpc as pb_grpc
from tritone_server.app import SERVICE_NAME, Gateway
from tritone_server.metrics import Metrics

Code = grpc.StatusCode
Stub = pb_grpc.AudioClassificationStub
FloatArray = npt.NDArray[np.float32]

ERROR_ID = re.compile(r"^internal error in the gateway \(error id ([0-9a-f]{12})\)$")
SERVED = [
    "broken",
    "crashing",
    "down",
    "embedder",
    "gated",
    "levels",
    "levels-softmax",
    "unready",
    "whole",
]


def f32(samples: FloatArray) -> bytes:
    return samples.astype("<f4").tobytes()


def raw_audio(
    data: bytes,
    *,
    rate: int = RATE,
    channels: int = 1,
    encoding: int = pb.PCM_F32LE,
) -> pb.Audio:
    fmt = pb.PcmFormat(encoding=encoding, sample_rate=rate, channels=channels)  # type: ignore[arg-type]
    return pb.Audio(raw=pb.RawAudio(data=data, format=fmt))


def wav_bytes(samples: FloatArray, rate: int) -> bytes:
    out = io.BytesIO()
    sf.write(out, samples, rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


GOOD = raw_audio(f32(levels((0.2, 0.3))))


def requests_counted(metrics: Metrics, rpc: str, model: str, code: str) -> float:
    return counter(metrics, "tritone_requests_total", {"rpc": rpc, "model": model, "code": code})


def open_streams(metrics: Metrics) -> float:
    return counter(metrics, "tritone_open_streams", {})


def access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "tritone_server.access"]


_request_ids = itertools.count()


def request_id() -> tuple[str, tuple[tuple[str, str], ...]]:
    """A fresh x-request-id and the metadata that sends it, to find the call's log line."""
    rid = f"test-{next(_request_ids)}"
    return rid, (("x-request-id", rid),)


async def logged_call(caplog: pytest.LogCaptureFixture, rid: str) -> str:
    """The access-log line of the call sent with request id ``rid``.

    A refused call's status is sent by ``context.abort`` before the interceptors around the
    error interceptor unwind, so the caller can hold its error a moment before the line is
    written (and the metrics, recorded in the same step, are counted): wait for it.
    """

    def lines() -> list[str]:
        return [line for line in access_lines(caplog) if line.endswith(f"request_id={rid}")]

    assert await eventually(lambda: bool(lines())), f"no access-log line for {rid}"
    found = lines()
    assert len(found) == 1, found
    return found[0]


def unknown_codes(metrics: Metrics) -> float:
    """Requests counted with the code UNKNOWN: what an unmapped error would be counted as."""
    return sum(
        sample.value
        for metric in metrics.requests.collect()
        for sample in metric.samples
        if sample.name == "tritone_requests_total" and sample.labels["code"] == "UNKNOWN"
    )


@pytest.fixture(autouse=True)
def _access_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tritone_server.access")


async def stream_call(
    stub: Stub,
    requests: Iterable[pb.StreamClassifyRequest],
    metadata: tuple[tuple[str, str], ...] = (),
) -> tuple[list[pb.StreamClassifyResponse], grpc.aio.AioRpcError | None]:
    """Every reply of a stream and the error it ended with, if any."""
    replies: list[pb.StreamClassifyResponse] = []
    call = stub.StreamClassify(iter(list(requests)), metadata=metadata)
    try:
        async for reply in call:
            replies.append(reply)
    except grpc.aio.AioRpcError as exc:
        return replies, exc
    return replies, None


def config_message(model: str = DEFAULT_MODEL, **fields: object) -> pb.StreamClassifyRequest:
    fmt = fields.pop("format", pb.PcmFormat(encoding=pb.PCM_F32LE, sample_rate=RATE, channels=1))
    return pb.StreamClassifyRequest(config=pb.StreamConfig(model=model, format=fmt, **fields))  # type: ignore[arg-type]


def audio_messages(data: bytes, size: int) -> list[pb.StreamClassifyRequest]:
    return [pb.StreamClassifyRequest(audio=data[i : i + size]) for i in range(0, len(data), size)]


async def eventually(predicate: Callable[[], bool], limit_s: float = 20.0) -> bool:
    """Poll until ``predicate()`` holds (effects on the server side land after the call)."""
    await wait_for(predicate, limit_s)
    return True


# ---------------------------------------------------------------------------------------------
# Classify, Embed
# ---------------------------------------------------------------------------------------------


async def test_classify_with_the_sdk_ranks_the_clips_labels(client: tritone.AsyncClient) -> None:
    # 0.2 s at 0.1 then 0.4 s at 0.3: eleven windows, seven "three", three "one", one "two".
    samples = levels((0.1, 0.2), (0.3, 0.4))
    result = await client.classify(samples, sample_rate=RATE, top_k=3)
    assert [s.label for s in result.labels] == ["three", "one", "two"]
    assert [s.score for s in result.labels] == pytest.approx([70 / 11, 30 / 11, 10 / 11])
    assert (result.model, result.model_version) == (DEFAULT_MODEL, "1")
    assert (result.input_frames, result.input_sample_rate) == (600, RATE)
    assert result.duration_s == pytest.approx(0.6)
    assert result.segments == ()


async def test_classify_decodes_a_stereo_file_at_another_rate(
    client: tritone.AsyncClient, gateway: Gateway
) -> None:
    # Decoded in the gateway's decode worker, downmixed and resampled to the model's 1000 Hz.
    stereo = np.stack([levels((0.2, 0.5), rate=8000), levels((0.2, 0.5), rate=8000)], axis=1)
    result = await client.classify(wav_bytes(stereo, 8000), segments=True, top_k=1)
    assert result.labels[0].label == "two"
    assert (result.input_frames, result.input_sample_rate) == (4000, 8000)
    assert [(round(s.start_s, 3), round(s.end_s, 3)) for s in result.segments][:2] == [
        (0.0, 0.1),
        (0.05, 0.15),
    ]
    assert len(result.segments) == 9 and all(len(s.labels) == 1 for s in result.segments)
    assert gateway.dataplane.decode_pool is not None


async def test_classify_with_a_raw_stub_and_s16le(stub: Stub) -> None:
    pcm = np.round(levels((0.3, 0.25)) * 32768).astype("<i2").tobytes()
    request = pb.ClassifyRequest(
        audio=raw_audio(pcm, encoding=pb.PCM_S16LE), top_k=2, activation=pb.ACTIVATION_SOFTMAX
    )
    reply = await stub.Classify(request)
    assert [s.label for s in reply.labels] == ["three", "zero"]
    assert reply.labels[0].score == pytest.approx(np.exp(10) / (np.exp(10) + 3), rel=1e-6)
    assert reply.model == DEFAULT_MODEL and reply.input_frames == 250


async def test_embed_returns_the_models_vector(client: tritone.AsyncClient) -> None:
    embedding = await client.embed(levels((0.25, 0.2)), sample_rate=RATE, model="embedder")
    assert embedding.model == "embedder"
    np.testing.assert_allclose(embedding.vector, [0.25, 0.25], rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# The catalogue
# ---------------------------------------------------------------------------------------------


async def test_list_models_shows_the_served_models_and_their_state(
    client: tritone.AsyncClient,
) -> None:
    models = {m.name: m for m in await client.list_models()}
    assert sorted(models) == SERVED  # "foreign" lacks Tritone's parameters: not served
    levels_info = models[DEFAULT_MODEL]
    assert levels_info.labels == LABELS
    assert (levels_info.sample_rate, levels_info.window_samples, levels_info.hop_samples) == (
        RATE,
        100,
        50,
    )
    assert (levels_info.activation, levels_info.version, levels_info.ready) == ("none", "1", True)
    assert models["levels-softmax"].activation == "softmax"
    assert not models["unready"].ready and not models["levels"].stateful


async def test_get_model_describes_one_model_whatever_its_state(
    client: tritone.AsyncClient,
) -> None:
    assert (await client.get_model("whole")).window_samples == 0
    assert not (await client.get_model("unready")).ready
    with pytest.raises(tritone.ModelNotFoundError, match="model 'nope' is not served here"):
        await client.get_model("nope")


async def test_load_model_asks_triton_and_answers_with_the_model(
    client: tritone.AsyncClient, fake_triton: FakeTriton
) -> None:
    info = await client.load_model("whole")
    assert info.name == "whole" and fake_triton.loaded[-1] == "whole"
    with pytest.raises(tritone.InvalidArgumentError, match="must be letters, digits"):
        await client.load_model("../etc/passwd")
    assert fake_triton.loaded[-1] == "whole"


async def test_health_says_serving_once_the_catalogue_is_loaded(
    channel: grpc.aio.Channel,
) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", SERVICE_NAME):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


# ---------------------------------------------------------------------------------------------
# Errors: each domain error class -> its code and sentence, counted and logged as such
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    request: pb.ClassifyRequest
    code: grpc.StatusCode
    sentence: str
    """A regular expression the details must match."""
    model: str
    """The model label the metrics carry (empty when the model was not resolved)."""


NAN = np.array([0.0, np.nan, 0.0], dtype=np.float32)
REFUSALS = {
    # ModelNotFound, BackendUnavailable, BackendFailed
    "unknown model": Refusal(
        pb.ClassifyRequest(model="nope", audio=GOOD),
        Code.NOT_FOUND,
        r"^model 'nope' is not served here \(models: broken, crashing, .*whole\)$",
        "",
    ),
    "model not ready": Refusal(
        pb.ClassifyRequest(model="unready", audio=GOOD),
        Code.UNAVAILABLE,
        r"^model 'unready' is not ready in Triton$",
        "",
    ),
    "triton unreachable": Refusal(
        pb.ClassifyRequest(model="down", audio=GOOD),
        Code.UNAVAILABLE,
        r"^Triton at fake-triton:8001 is unreachable$",
        "down",
    ),
    "triton failed": Refusal(
        pb.ClassifyRequest(model="broken", audio=GOOD),
        Code.INTERNAL,
        r"^Triton refused the request: model 'broken' failed$",
        "broken",
    ),
    # InvalidRequest
    "embedding model": Refusal(
        pb.ClassifyRequest(model="embedder", audio=GOOD),
        Code.INVALID_ARGUMENT,
        r"^model 'embedder' gives embeddings, not labels; use Embed$",
        "embedder",
    ),
    "unknown activation": Refusal(
        pb.ClassifyRequest(audio=GOOD, activation=99),  # type: ignore[arg-type]
        Code.INVALID_ARGUMENT,
        r"^activation 99 is not one of SOFTMAX, SIGMOID, NONE$",
        "",
    ),
    "no audio": Refusal(
        pb.ClassifyRequest(),
        Code.INVALID_ARGUMENT,
        r"^the request carries no audio: set audio.encoded or audio.raw$",
        "",
    ),
    "raw without encoding": Refusal(
        pb.ClassifyRequest(audio=raw_audio(f32(NAN[:1]), encoding=pb.PCM_ENCODING_UNSPECIFIED)),
        Code.INVALID_ARGUMENT,
        r"^raw audio needs an encoding: PCM_S16LE or PCM_F32LE$",
        "",
    ),
    "raw without rate": Refusal(
        pb.ClassifyRequest(audio=raw_audio(f32(NAN[:1]), rate=0)),
        Code.INVALID_ARGUMENT,
        r"^raw audio needs its sample_rate$",
        "",
    ),
    # AudioError
    "raw split frame": Refusal(
        pb.ClassifyRequest(audio=raw_audio(f32(levels((0.2, 0.1))) + b"\x00")),
        Code.INVALID_ARGUMENT,
        r"401 bytes is not a whole number of frames \(1 bytes left over\)$",
        DEFAULT_MODEL,
    ),
    "raw NaN": Refusal(
        pb.ClassifyRequest(audio=raw_audio(f32(NAN))),
        Code.INVALID_ARGUMENT,
        r"^the f32le audio contains NaN or infinite samples \(the first at sample 1\)$",
        DEFAULT_MODEL,
    ),
    "empty file": Refusal(
        pb.ClassifyRequest(audio=pb.Audio(encoded=b"")),
        Code.INVALID_ARGUMENT,
        r"^the audio is empty: the request carried 0 bytes$",
        DEFAULT_MODEL,
    ),
    "not an audio file": Refusal(
        pb.ClassifyRequest(audio=pb.Audio(encoded=b"<html>not audio</html>")),
        Code.INVALID_ARGUMENT,
        r"^the audio is not in a recognised container; send WAV, FLAC, OGG or MP3",
        DEFAULT_MODEL,
    ),
    # AudioLimitError: format limits are INVALID_ARGUMENT, the others RESOURCE_EXHAUSTED
    "rate below the range": Refusal(
        pb.ClassifyRequest(audio=raw_audio(f32(levels((0.2, 0.3), rate=500)), rate=500)),
        Code.INVALID_ARGUMENT,
        r"^the audio's sample rate of 500 Hz is outside the supported range of 1000 to 48000 Hz$",
        DEFAULT_MODEL,
    ),
    "too many channels": Refusal(
        pb.ClassifyRequest(audio=raw_audio(f32(np.zeros(300, np.float32)), channels=3)),
        Code.INVALID_ARGUMENT,
        r"^the audio has 3 channels, more than the limit of 2$",
        DEFAULT_MODEL,
    ),
    "too long": Refusal(
        pb.ClassifyRequest(audio=raw_audio(f32(levels((0.2, LIMITS.max_duration_s + 1))))),
        Code.RESOURCE_EXHAUSTED,
        r"^the audio is longer than the limit of 5 s \(it holds at least 6.0 s\)$",
        DEFAULT_MODEL,
    ),
    "file too long": Refusal(
        pb.ClassifyRequest(
            audio=pb.Audio(encoded=wav_bytes(levels((0.2, LIMITS.max_duration_s + 1)), RATE))
        ),
        Code.RESOURCE_EXHAUSTED,
        r"^the audio is longer than the limit of 5 s \(its header declares 6.0 s\)$",
        DEFAULT_MODEL,
    ),
    "too many bytes": Refusal(
        pb.ClassifyRequest(audio=pb.Audio(encoded=b"RIFF" + bytes(LIMITS.max_encoded_bytes))),
        Code.RESOURCE_EXHAUSTED,
        r"^the audio is 400004 bytes, more than the limit of 400000 bytes$",
        DEFAULT_MODEL,
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_each_error_reaches_the_caller_as_its_code_and_sentence(
    case: str, stub: Stub, gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    refusal = REFUSALS[case]
    labels = ("Classify", refusal.model, refusal.code.name)
    error_labels = dict(zip(("rpc", "model", "code"), labels, strict=True))
    before = requests_counted(gateway.metrics, *labels)
    errors_before = counter(gateway.metrics, "tritone_request_errors_total", error_labels)
    unknown_before = unknown_codes(gateway.metrics)
    rid, metadata = request_id()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Classify(refusal.request, metadata=metadata)
    assert caught.value.code() == refusal.code
    assert re.search(refusal.sentence, caught.value.details() or ""), caught.value.details()
    # The error interceptor runs inside the access-log and metrics ones: they see the code.
    line = await logged_call(caplog, rid)
    assert f"model={refusal.model or '-'} code={refusal.code.name} " in line
    # Other tests' refusals may land late with the same labels, hence ">=" here; the log
    # line above is this call's own.
    assert requests_counted(gateway.metrics, *labels) >= before + 1
    errors_after = counter(gateway.metrics, "tritone_request_errors_total", error_labels)
    assert errors_after >= errors_before + 1
    assert unknown_codes(gateway.metrics) == unknown_before


async def test_errors_are_mapped_before_the_metrics_and_access_log_see_them(
    stub: Stub, gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    """Metrics and access log are the outer interceptors: an error raised in the servicer
    reaches them as the status it was mapped to, for unary calls and streams alike."""
    unary = ("Classify", "", "NOT_FOUND")
    stream = ("StreamClassify", "", "NOT_FOUND")
    before = [requests_counted(gateway.metrics, *labels) for labels in (unary, stream)]
    unknown_before = unknown_codes(gateway.metrics)
    unary_id, unary_metadata = request_id()
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.Classify(pb.ClassifyRequest(model="nope", audio=GOOD), metadata=unary_metadata)
    stream_id, stream_metadata = request_id()
    _, error = await stream_call(stub, [config_message("nope")], stream_metadata)
    assert error is not None and error.code() == Code.NOT_FOUND
    assert " code=NOT_FOUND " in await logged_call(caplog, unary_id)
    assert " code=NOT_FOUND " in await logged_call(caplog, stream_id)
    after = [requests_counted(gateway.metrics, *labels) for labels in (unary, stream)]
    assert after[0] >= before[0] + 1 and after[1] >= before[1] + 1
    assert unknown_codes(gateway.metrics) == unknown_before


async def test_the_access_log_has_one_line_per_call_with_the_callers_request_id(
    stub: Stub, caplog: pytest.LogCaptureFixture
) -> None:
    rid, metadata = request_id()
    await stub.Classify(pb.ClassifyRequest(model="levels-softmax", audio=GOOD), metadata=metadata)
    line = await logged_call(caplog, rid)
    assert line.startswith(
        "event=rpc method=/tritone.v1.AudioClassification/Classify model=levels-softmax code=OK "
    )
    assert "duration_ms=" in line


async def test_the_gateway_keeps_serving_after_every_refusal(stub: Stub) -> None:
    for refusal in REFUSALS.values():
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.Classify(refusal.request)
    reply = await stub.Classify(pb.ClassifyRequest(audio=GOOD))
    assert reply.labels[0].label == "two"


@pytest.mark.parametrize(
    ("model", "error", "code"),
    [
        ("nope", tritone.ModelNotFoundError, tritone.StatusCode.NOT_FOUND),
        ("unready", tritone.UnavailableError, tritone.StatusCode.UNAVAILABLE),
        ("broken", tritone.InternalError, tritone.StatusCode.INTERNAL),
        ("embedder", tritone.InvalidArgumentError, tritone.StatusCode.INVALID_ARGUMENT),
    ],
)
async def test_the_sdk_raises_the_class_of_each_code(
    client: tritone.AsyncClient,
    model: str,
    error: type[tritone.TritoneError],
    code: tritone.StatusCode,
) -> None:
    with pytest.raises(error) as caught:
        await client.classify(levels((0.2, 0.3)), sample_rate=RATE, model=model)
    assert caught.value.code is code and f"'{model}'" in caught.value.details


async def test_a_limit_reaches_the_sdk_as_resource_exhausted(client: tritone.AsyncClient) -> None:
    with pytest.raises(tritone.ResourceExhaustedError, match="longer than the limit of 5 s"):
        await client.classify(levels((0.2, 6.0)), sample_rate=RATE)


async def test_an_unexpected_exception_is_internal_with_an_error_id_and_nothing_leaked(
    stub: Stub, gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    labels = ("Classify", "crashing", "INTERNAL")
    before = requests_counted(gateway.metrics, *labels)
    rid, metadata = request_id()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Classify(pb.ClassifyRequest(model="crashing", audio=GOOD), metadata=metadata)
    error = caught.value
    assert error.code() == Code.INTERNAL
    match = ERROR_ID.match(error.details() or "")
    assert match, error.details()
    said = (
        (error.details() or "") + repr(error.trailing_metadata()) + repr(error.debug_error_string())
    )
    assert SECRET not in said and "RuntimeError" not in said and "Traceback" not in said
    assert " code=INTERNAL " in await logged_call(caplog, rid)
    # The log has what the caller does not: the error id ties them together.
    logged = [line for line in access_lines(caplog) if f"error_id={match.group(1)}" in line]
    assert len(logged) == 1 and logged[0].startswith("event=internal_error")
    assert SECRET in logged[0] and "Traceback" in logged[0]
    assert requests_counted(gateway.metrics, *labels) >= before + 1


async def test_each_unexpected_exception_gets_its_own_error_id(stub: Stub) -> None:
    ids = set()
    for _ in range(3):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Classify(pb.ClassifyRequest(model="crashing", audio=GOOD))
        match = ERROR_ID.match(caught.value.details() or "")
        assert match
        ids.add(match.group(1))
    assert len(ids) == 3


async def test_success_is_counted_as_ok_with_the_model(stub: Stub, gateway: Gateway) -> None:
    labels = ("Classify", "levels-softmax", "OK")
    before = requests_counted(gateway.metrics, *labels)
    await stub.Classify(pb.ClassifyRequest(model="levels-softmax", audio=GOOD))
    assert requests_counted(gateway.metrics, *labels) == before + 1


# ---------------------------------------------------------------------------------------------
# StreamClassify
# ---------------------------------------------------------------------------------------------


async def test_a_stream_with_the_sdk_reports_windows_then_a_summary_of_everything_received(
    client: tritone.AsyncClient, gateway: Gateway
) -> None:
    data = f32(levels((0.1, 0.2), (0.3, 0.4)))  # 600 frames, 2400 bytes
    seconds_before = counter(gateway.metrics, "tritone_audio_seconds_total", {"model": "levels"})
    events = []
    async with client.stream_classify(
        sample_rate=RATE, encoding=tritone.PcmEncoding.F32LE, top_k=2
    ) as stream:
        for i in range(0, len(data), 123):  # chunks that split frames
            await stream.send(data[i : i + 123])
        await stream.end()
        events = [event async for event in stream]
    windows = [e for e in events if isinstance(e, tritone.WindowResult)]
    summary = events[-1]
    assert isinstance(summary, tritone.StreamSummary)
    assert all(isinstance(e, tritone.WindowResult) for e in events[:-1])
    assert [round(w.start_s, 3) for w in windows] == [round(0.05 * i, 3) for i in range(11)]
    assert [w.labels[0].label for w in windows] == ["one"] * 3 + ["two"] + ["three"] * 7
    assert all(len(w.labels) == 2 and not w.interim for w in windows)
    frames = [w.frames_received for w in windows]
    assert frames == sorted(frames) and frames[-1] <= 600
    assert (summary.bytes_received, summary.frames_received) == (2400, 600)
    assert (summary.model_samples, summary.padding_samples, summary.windows) == (600, 0, 11)
    assert summary.duration_s == pytest.approx(0.6) and summary.consumed_s == pytest.approx(0.6)
    assert [s.label for s in summary.labels] == ["three", "one"]
    assert (summary.model, summary.model_version) == (DEFAULT_MODEL, "1")
    seconds = counter(gateway.metrics, "tritone_audio_seconds_total", {"model": "levels"})
    assert seconds - seconds_before == pytest.approx(0.6)


async def test_a_stream_with_a_raw_stub_ends_with_the_summary_after_half_close(
    stub: Stub, gateway: Gateway
) -> None:
    # 0.13 s at 0.3: windows at 0 ("three") and 50 (the tail, zero-padded: mean 0.24, "two").
    data = f32(levels((0.3, 0.13)))
    labels = ("StreamClassify", DEFAULT_MODEL, "OK")
    before = requests_counted(gateway.metrics, *labels)
    replies, error = await stream_call(
        stub,
        [
            config_message(detection_threshold=5.0, detection_labels=["three"]),
            *audio_messages(data, 40),
        ],
    )
    assert error is None
    kinds = [r.WhichOneof("event") for r in replies]
    assert kinds[-1] == "summary" and kinds.count("summary") == 1
    # "three" closes when the tail's window falls below the threshold.
    assert kinds == ["window", "window", "detection", "summary"]
    detection = replies[2].detection
    assert (detection.label, detection.start_s, detection.end_s) == ("three", 0.0, 0.1)
    assert replies[1].window.interim  # the padded tail
    summary = replies[-1].summary
    assert (summary.bytes_received, summary.frames_received, summary.windows) == (520, 130, 2)
    assert summary.padding_samples == 20 and summary.detections == 1
    assert replies[-1].frames_received == 130
    assert requests_counted(gateway.metrics, *labels) == before + 1
    assert await eventually(lambda: open_streams(gateway.metrics) == 0)


async def test_an_empty_stream_gets_only_a_summary(stub: Stub) -> None:
    replies, error = await stream_call(stub, [config_message()])
    assert error is None and len(replies) == 1
    summary = replies[0].summary
    assert (summary.bytes_received, summary.windows, summary.model) == (0, 0, DEFAULT_MODEL)


@dataclass(frozen=True)
class StreamRefusal:
    requests: list[pb.StreamClassifyRequest]
    code: grpc.StatusCode
    sentence: str
    model: str


STREAM_REFUSALS = {
    "audio first": StreamRefusal(
        [pb.StreamClassifyRequest(audio=b"\x00" * 8)],
        Code.INVALID_ARGUMENT,
        r"^the first message of a stream must carry a StreamConfig$",
        "",
    ),
    "nothing at all": StreamRefusal(
        [], Code.INVALID_ARGUMENT, r"^the first message of a stream must carry a StreamConfig$", ""
    ),
    "second config": StreamRefusal(
        [config_message(), *audio_messages(bytes(400), 400), config_message()],
        Code.INVALID_ARGUMENT,
        r"^a stream carries one StreamConfig, in its first message$",
        DEFAULT_MODEL,
    ),
    "split last frame": StreamRefusal(
        [config_message(), pb.StreamClassifyRequest(audio=bytes(402))],
        Code.INVALID_ARGUMENT,
        r"^the raw audio ended with 2 bytes that are not a whole 4-byte frame$",
        DEFAULT_MODEL,
    ),
    "unknown model": StreamRefusal(
        [config_message("nope")], Code.NOT_FOUND, r"^model 'nope' is not served here", ""
    ),
    "whole-clip model": StreamRefusal(
        [config_message("whole")],
        Code.INVALID_ARGUMENT,
        r"^model 'whole' classifies whole clips \(no window_samples\); use Classify$",
        "whole",
    ),
    "unknown detection label": StreamRefusal(
        [config_message(detection_threshold=0.5, detection_labels=["bark"])],
        Code.INVALID_ARGUMENT,
        r"^detection_labels \['bark'\] are not labels of model 'levels'$",
        DEFAULT_MODEL,
    ),
    "rate above the range": StreamRefusal(
        [config_message(format=pb.PcmFormat(encoding=pb.PCM_F32LE, sample_rate=96_000))],
        Code.INVALID_ARGUMENT,
        r"^the audio's sample rate of 96000 Hz is outside the supported range",
        DEFAULT_MODEL,
    ),
    "triton failed": StreamRefusal(
        [config_message("broken"), *audio_messages(bytes(800), 400)],
        Code.INTERNAL,
        r"^Triton refused the request: model 'broken' failed$",
        "broken",
    ),
}


@pytest.mark.parametrize("case", list(STREAM_REFUSALS))
async def test_stream_errors_reach_the_caller_as_their_code_and_sentence(
    case: str, stub: Stub, gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    refusal = STREAM_REFUSALS[case]
    labels = ("StreamClassify", refusal.model, refusal.code.name)
    before = requests_counted(gateway.metrics, *labels)
    rid, metadata = request_id()
    _, error = await stream_call(stub, refusal.requests, metadata)
    assert error is not None and error.code() == refusal.code
    assert re.search(refusal.sentence, error.details() or ""), error.details()
    line = await logged_call(caplog, rid)
    assert f"model={refusal.model or '-'} code={refusal.code.name} " in line
    assert requests_counted(gateway.metrics, *labels) >= before + 1
    assert await eventually(lambda: open_streams(gateway.metrics) == 0)


async def test_an_unexpected_exception_in_a_stream_is_internal_with_an_error_id(
    stub: Stub,
) -> None:
    _, error = await stream_call(
        stub, [config_message("crashing"), *audio_messages(bytes(400), 400)]
    )
    assert error is not None and error.code() == Code.INTERNAL
    assert ERROR_ID.match(error.details() or ""), error.details()
    assert SECRET not in (error.details() or "")


# ---------------------------------------------------------------------------------------------
# Backpressure: a stalled classifier stops the reader, and the reader stops the client
# ---------------------------------------------------------------------------------------------


async def test_a_stalled_stream_stops_reading_from_its_caller(
    stub: Stub, fake_triton: FakeTriton, gateway: Gateway
) -> None:
    """The reader puts chunks in a queue of ``stream_queue_chunks``; when the classifier
    stalls, the queue fills, the reader stops reading and gRPC's flow control stops the
    caller. Chunks in flight are then the queue's plus what gRPC's windows hold (figures:
    benchmarks/stream_inflight.py), far from the 600 chunks the caller tries to send.
    Nothing is lost once the classifier resumes.
    """
    total = 600
    async with stalled_stream(stub, fake_triton, chunks=total) as seen:
        assert not seen.finished_while_stalled, "the server read every chunk while stalled"
        assert seen.sent < total // 2, seen.sent
        assert seen.gated_calls == 1  # one window waits for the backend, no other ran
    assert seen.summary is not None
    assert seen.summary.bytes_received == total * 4 * GATED_WINDOW
    assert seen.summary.windows == total
    assert await eventually(lambda: open_streams(gateway.metrics) == 0)


async def test_a_cancelled_stream_is_counted_as_cancelled_and_closed(
    stub: Stub, fake_triton: FakeTriton, gateway: Gateway
) -> None:
    labels = ("StreamClassify", "gated", "CANCELLED")
    before = requests_counted(gateway.metrics, *labels)
    fake_triton.gate.clear()
    calls_before = fake_triton.gated_calls
    call = stub.StreamClassify()
    try:
        await call.write(config_message("gated"))
        await call.write(pb.StreamClassifyRequest(audio=f32(levels((0.2, GATED_WINDOW / RATE)))))
        assert await eventually(lambda: fake_triton.gated_calls > calls_before)
        assert open_streams(gateway.metrics) >= 1
        call.cancel()
        assert await eventually(lambda: requests_counted(gateway.metrics, *labels) == before + 1)
        assert await eventually(lambda: open_streams(gateway.metrics) == 0)
    finally:
        fake_triton.gate.set()
