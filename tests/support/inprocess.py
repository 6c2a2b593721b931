"""The gateway's middle layer in-process over a fake Triton, for unit tests.

`in_process_gateway` runs `app.Gateway` itself — the same servicer, the same interceptors in
the same order, health, reflection and decode workers — with only `TritonBackend` swapped for
`FakeTriton`. The tests therefore exercise the wiring `tritone serve` uses, not a copy of it
that could drift. `dataplane` builds a bare DataPlane over the same fake for tests of the core.

The fake serves the models below; their names say how they behave (LevelsBackend's rule: the
label is the window's mean level times ten, so a clip at 0.2 is "two").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from support.fake_backend import LevelsBackend, config
from tritone_protos import audio_classification_pb2 as pb
from tritone_protos import audio_classification_pb2_grpc as pb_grpc
from tritone_server import app
from tritone_server.audio.formats import AudioLimits
from tritone_server.core.dataplane import DataPlane
from tritone_server.core.inference import Inference
from tritone_server.core.models import Catalogue
from tritone_server.errors import BackendFailed, BackendUnavailable
from tritone_server.metrics import Metrics
from tritone_server.settings import Settings

FloatArray = npt.NDArray[np.float32]

RATE = 1000
"""Every fake model's rate; windows of 100 samples, hop 50."""
DEFAULT_MODEL = "levels"
GATED_WINDOW = 16_384
"""Window and hop of the model "gated": one 64 KiB chunk of f32 at RATE is one window."""
SECRET = "secret-db-password-9f3a"
"""Put in the message of the unexpected exception "crashing" raises: it must not leak."""

LIMITS = AudioLimits(
    max_duration_s=5.0,
    max_channels=2,
    min_sample_rate=1000,
    max_sample_rate=48_000,
    max_encoded_bytes=400_000,
)
"""Small enough that each limit can be crossed with a small request."""


def _embedding_config(name: str) -> dict[str, Any]:
    c = config(name)
    c["output"] = [{"name": "embedding", "data_type": "TYPE_FP32", "dims": ["2"]}]
    params = c["parameters"]
    params["task"] = {"string_value": "embedding"}
    del params["labels"]
    return c


def model_configs() -> list[dict[str, Any]]:
    """Triton configs of the fake's models, one per behaviour a test needs."""
    return [
        config(DEFAULT_MODEL),  # activation "none": scores are the logits (10 for the label)
        config("levels-softmax", activation="softmax"),
        config("whole", window=0, hop=0),  # classifies whole clips
        config("unready"),  # listed, but not ready in Triton
        config("broken"),  # Triton answers with an error
        config("down"),  # Triton cannot be reached
        config("crashing"),  # a bug in the gateway: an exception it does not know
        config("gated", window=GATED_WINDOW, hop=GATED_WINDOW),  # infer waits for a gate
        _embedding_config("embedder"),
        {"name": "foreign", "max_batch_size": 1, "input": [], "output": [], "parameters": {}},
    ]


class FakeTriton(LevelsBackend):
    """LevelsBackend with the parts `app.Gateway` uses of a TritonBackend, and faults.

    ``gate`` holds every ``infer`` for the model "gated" until it is set; ``gated_calls``
    counts the calls that reached it, and each sets ``gate_reached``.
    """

    def __init__(self, configs: Sequence[dict[str, Any]] | None = None) -> None:
        super().__init__(model_configs() if configs is None else configs)
        self.unready = {"unready"}
        self.failures: dict[str, Callable[[], Exception]] = {
            "broken": lambda: BackendFailed("Triton refused the request: model 'broken' failed"),
            "down": lambda: BackendUnavailable("Triton at fake-triton:8001 is unreachable"),
            "crashing": lambda: RuntimeError(f"connection string {SECRET} was rejected"),
        }
        self.gate = asyncio.Event()
        self.gated_calls = 0
        self.gate_reached = asyncio.Event()

    async def __aenter__(self) -> FakeTriton:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def endpoint_health(self, timeout_s: float = 2.0) -> dict[str, bool]:
        return {"fake-triton:8001": True}

    async def model_configs(self) -> list[tuple[dict[str, Any], str, bool]]:
        return [(c, "1", c["name"] not in self.unready) for c in self.configs]

    async def infer(
        self,
        model: str,
        inputs: Mapping[str, FloatArray],
        outputs: Sequence[str],
        *,
        timeout_s: float | None = None,
    ) -> dict[str, FloatArray]:
        if model in self.failures:
            raise self.failures[model]()
        if model == "gated":
            self.gated_calls += 1
            self.gate_reached.set()
            await self.gate.wait()
        if outputs == ["embedding"]:
            windows = inputs["waveform"]
            self.calls.append((model, windows.shape[0]))
            vectors = np.stack([windows.mean(axis=1), windows.max(axis=1)], axis=1)
            return {"embedding": vectors.astype(np.float32)}
        return await super().infer(model, inputs, outputs, timeout_s=timeout_s)


def gateway_settings(**overrides: Any) -> Settings:
    """Settings of an in-process gateway: free loopback port, the fake Triton, small limits."""
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "http_port": None,  # the HTTP side is tested with aiohttp's test server
        "triton_urls": ("fake-triton:8001",),
        "default_model": DEFAULT_MODEL,
        "decode_workers": 1,
        "stream_queue_chunks": 4,
        "grace_s": 1.0,
        "audio_limits": LIMITS,
    }
    values.update(overrides)
    return Settings(**values)


@contextlib.asynccontextmanager
async def in_process_gateway(backend: FakeTriton, settings: Settings) -> AsyncIterator[app.Gateway]:
    """`app.Gateway` serving, with `backend` where it would connect to Triton."""
    built: list[tuple[str, ...]] = []

    def fake_triton_backend(urls: Iterable[str], **_: object) -> FakeTriton:
        built.append(tuple(urls))
        return backend

    patch = pytest.MonkeyPatch()
    patch.setattr(app, "TritonBackend", fake_triton_backend)
    try:
        async with app.Gateway(settings) as gateway:
            try:
                async with asyncio.timeout(60):
                    await gateway.wait_ready()
            except TimeoutError:
                pytest.fail(
                    "the in-process gateway did not become ready in 60 s; does app.Gateway "
                    "still build its backend with app.TritonBackend(urls, ...)?"
                )
            finally:
                patch.undo()  # only bring-up needs it; other gateways may start later
            assert built == [settings.triton_urls], "the gateway did not use the fake Triton"
            yield gateway
    finally:
        patch.undo()


async def dataplane(
    backend: FakeTriton | None = None, *, limits: AudioLimits = LIMITS
) -> tuple[DataPlane, FakeTriton]:
    """A DataPlane over the fake as app.Gateway builds it, but decoding in threads."""
    backend = backend or FakeTriton()
    catalogue = Catalogue(DEFAULT_MODEL)
    await catalogue.reload(backend)
    metrics = Metrics()
    plane = DataPlane(catalogue, Inference(backend, metrics=metrics), limits=limits)
    return plane, backend


def levels(*parts: tuple[float, float], rate: int = RATE) -> FloatArray:
    """Mono float32 made of (level, seconds) pieces of constant signal."""
    return np.concatenate(
        [np.full(round(seconds * rate), level, dtype=np.float32) for level, seconds in parts]
    )


def counter(metrics: Metrics, name: str, labels: Mapping[str, str]) -> float:
    """A sample's value in a gateway's registry, 0 when it was never recorded."""
    value = metrics.registry.get_sample_value(name, dict(labels))
    return 0.0 if value is None else float(value)


@dataclass
class StalledStream:
    """What `stalled_stream` saw: chunks the caller got through while the classifier was
    stalled, and (after the stall is lifted) the stream's summary."""

    sent: int = 0
    finished_while_stalled: bool = False
    gated_calls: int = 0
    """Backend calls that reached the gate while it was closed."""
    summary: pb.StreamSummary | None = None


@contextlib.asynccontextmanager
async def stalled_stream(
    stub: pb_grpc.AudioClassificationStub,
    backend: FakeTriton,
    *,
    chunks: int,
    settle_s: float = 1.0,
) -> AsyncIterator[StalledStream]:
    """Stream ``chunks`` windows of the model "gated" while its backend is held.

    Yields once the caller has made no progress for ``settle_s`` (or has sent everything);
    on exit the gate opens, the rest is sent and the summary read.
    """
    chunk = np.full(GATED_WINDOW, 0.2, dtype="<f4").tobytes()
    fmt = pb.PcmFormat(encoding=pb.PCM_F32LE, sample_rate=RATE, channels=1)
    config = pb.StreamConfig(model="gated", format=fmt, suppress_windows=True)
    seen = StalledStream()
    backend.gate.clear()
    backend.gate_reached.clear()
    calls_before = backend.gated_calls
    call = stub.StreamClassify()

    async def writer() -> None:
        await call.write(pb.StreamClassifyRequest(config=config))
        for _ in range(chunks):
            await call.write(pb.StreamClassifyRequest(audio=chunk))
            seen.sent += 1
        await call.done_writing()

    task = asyncio.create_task(writer())
    try:
        async with asyncio.timeout(60):
            await backend.gate_reached.wait()
        last, still = -1, 0.0
        while still < settle_s and not task.done():
            await asyncio.sleep(0.05)  # the behaviour: no progress for settle_s is the stall
            still = still + 0.05 if seen.sent == last else 0.0
            last = seen.sent
        seen.finished_while_stalled = task.done()
        seen.gated_calls = backend.gated_calls - calls_before
        yield seen
    finally:
        backend.gate.set()
        try:
            await task
            replies = [reply async for reply in call]
        finally:
            call.cancel()
        seen.summary = replies[-1].summary
