"""A real grpc.aio server on loopback with a fake AudioClassification servicer: the
``fake_server`` and ``client`` fixtures of the SDK and evaluation unit tests (their conftests
import them).

The fake is driven by the model name:

- ``abort:<CODE>``: Classify / StreamClassify (after the config) abort with that status.
- ``slow``: Classify never answers (for deadlines); the stream waits forever after its config.
- ``hold`` and the other names in `CANCELLED_BY_THE_CLIENT`: the stream sends one window per
  chunk but never ends on its own (their tests cancel it).
- ``lost-after-summary``: the stream sends its summary, then fails with UNAVAILABLE (a
  connection that goes right after the last message).
- anything else: canned results; streams emit one window per audio message, a detection
  after the first window when a threshold is set, and a summary after the half-close.

Every request is recorded so tests can check what the SDK sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass, field

import grpc
import grpc.aio
import pytest

import tritone
from support.waiting import wait_for
from tritone_protos import audio_classification_pb2 as pb
from tritone_protos import audio_classification_pb2_grpc as pb_grpc

LABELS = ("dog", "cat", "bird")
CANCELLED_BY_THE_CLIENT = frozenset(
    {"hold", "hold-cancel", "raise-in-block", "endless", "sync-break"}
)
"""Streams whose tests cancel them: the fake never ends them on its own."""
_SAMPLE_BYTES = {pb.PCM_S16LE: 2, pb.PCM_F32LE: 4}


@dataclass
class StreamRecord:
    config: pb.StreamConfig
    metadata: dict[str, str]
    audio: bytearray = field(default_factory=bytearray)
    messages: int = 0
    half_closed: bool = False
    cancelled: bool = False


@dataclass
class FakeServicer(pb_grpc.AudioClassificationServicer):
    classify_requests: list[pb.ClassifyRequest] = field(default_factory=list)
    classify_metadata: list[dict[str, str]] = field(default_factory=list)
    streams: dict[str, StreamRecord] = field(default_factory=dict)

    async def Classify(
        self, request: pb.ClassifyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClassifyResponse:
        self.classify_requests.append(request)
        self.classify_metadata.append(dict(context.invocation_metadata() or ()))
        if request.model.startswith("abort:"):
            code = request.model.split(":", 1)[1]
            await context.abort(grpc.StatusCode[code], f"the fake refused with {code}")
        if request.model == "slow":
            await asyncio.Event().wait()  # never answers: the caller's deadline ends the call
        frames, rate = 0, 0
        if request.audio.WhichOneof("source") == "raw":
            fmt = request.audio.raw.format
            width = _SAMPLE_BYTES[fmt.encoding] * max(fmt.channels, 1)
            frames, rate = len(request.audio.raw.data) // width, fmt.sample_rate
        scores = zip(LABELS, (0.75, 0.125, 0.0625), strict=True)
        labels = [pb.LabelScore(label=name, score=s) for name, s in scores]
        k = request.top_k or 5
        response = pb.ClassifyResponse(
            model=request.model or "default-model",
            model_version="7",
            labels=labels[:k],
            duration_s=frames / rate if rate else 1.5,
            input_frames=frames,
            input_sample_rate=rate,
        )
        if request.segments:
            response.segments.append(pb.Segment(start_s=0.0, end_s=1.0, labels=labels[:1]))
            response.segments.append(pb.Segment(start_s=0.5, end_s=1.5, labels=labels[1:2]))
        return response

    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListModelsResponse:
        return pb.ListModelsResponse(models=[_model("speech"), _model("vad", stateful=True)])

    async def GetModel(
        self, request: pb.GetModelRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInfo:
        if request.name == "missing":
            await context.abort(grpc.StatusCode.NOT_FOUND, "no model named 'missing'")
        return _model(request.name, stateful=request.name == "vad")

    async def StreamClassify(
        self,
        request_iterator: AsyncIterable[pb.StreamClassifyRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.StreamClassifyResponse]:
        requests = aiter(request_iterator)
        first = await anext(requests)
        config = first.config
        record = StreamRecord(config, dict(context.invocation_metadata() or ()))
        self.streams[config.model] = record

        def on_done(ctx: grpc.aio.ServicerContext) -> None:
            record.cancelled = record.cancelled or ctx.cancelled()

        context.add_done_callback(on_done)
        try:
            if config.model.startswith("abort:"):
                code = config.model.split(":", 1)[1]
                await context.abort(grpc.StatusCode[code], f"the fake refused with {code}")
            if config.model == "slow":
                await asyncio.Event().wait()
            fmt = config.format
            frame_bytes = _SAMPLE_BYTES[fmt.encoding] * max(fmt.channels, 1)
            index = 0
            async for request in requests:
                record.audio += request.audio
                record.messages += 1
                frames = len(record.audio) // frame_bytes
                consumed_s = frames / fmt.sample_rate
                if not config.suppress_windows:
                    window = pb.WindowResult(
                        index=index,
                        start_s=index * 0.5,
                        end_s=index * 0.5 + 1.0,
                        labels=[pb.LabelScore(label="dog", score=0.5)],
                        interim=config.interim_results and index == 0,
                    )
                    yield pb.StreamClassifyResponse(
                        window=window, frames_received=frames, consumed_s=consumed_s
                    )
                if config.detection_threshold > 0 and index == 0:
                    detection = pb.Detection(label="dog", start_s=0.0, end_s=0.5, peak_score=0.9)
                    yield pb.StreamClassifyResponse(
                        detection=detection, frames_received=frames, consumed_s=consumed_s
                    )
                index += 1
            # A client's cancellation also ends the request iterator, and gRPC cancels this
            # task only after: the streams that tests cancel never end on their own, so for
            # them the end is always the cancellation and for every other one a half-close.
            if config.model in CANCELLED_BY_THE_CLIENT:
                await asyncio.Event().wait()
            record.half_closed = True
            frames = len(record.audio) // frame_bytes
            summary = pb.StreamSummary(
                bytes_received=len(record.audio),
                frames_received=frames,
                model_samples=frames,
                padding_samples=3,
                windows=index,
                detections=1 if config.detection_threshold > 0 else 0,
                duration_s=frames / fmt.sample_rate,
                labels=[pb.LabelScore(label="dog", score=0.5)],
                model=config.model or "default-model",
                model_version="7",
            )
            yield pb.StreamClassifyResponse(
                summary=summary, frames_received=frames, consumed_s=frames / fmt.sample_rate
            )
            if config.model == "lost-after-summary":
                await context.abort(grpc.StatusCode.UNAVAILABLE, "Stream removed")
        except asyncio.CancelledError:
            record.cancelled = True
            raise


def _model(name: str, *, stateful: bool = False) -> pb.ModelInfo:
    return pb.ModelInfo(
        name=name,
        version="7",
        task="audio-classification",
        labels=list(LABELS),
        sample_rate=16000,
        window_samples=16000,
        hop_samples=8000,
        activation=pb.ACTIVATION_SIGMOID if stateful else pb.ACTIVATION_SOFTMAX,
        stateful=stateful,
        state=pb.MODEL_STATE_READY,
        description=f"the {name} model",
    )


@dataclass
class FakeServer:
    target: str
    servicer: FakeServicer

    async def wait_for(self, predicate: Callable[[], bool], limit_s: float = 30.0) -> bool:
        """Poll until `predicate()` is true (for effects on the server side)."""
        await wait_for(predicate, limit_s)
        return True


@pytest.fixture(scope="session")
async def fake_server() -> AsyncIterator[FakeServer]:
    server = grpc.aio.server()
    servicer = FakeServicer()
    pb_grpc.add_AudioClassificationServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield FakeServer(f"127.0.0.1:{port}", servicer)
    finally:
        await server.stop(None)


@pytest.fixture
async def client(fake_server: FakeServer) -> AsyncIterator[tritone.AsyncClient]:
    async with tritone.AsyncClient(fake_server.target, timeout=10.0) as c:
        yield c
