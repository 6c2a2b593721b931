"""Sends fuzz cases to a real gateway (gRPC stubs and its HTTP route) and judges outcomes.

Acceptable outcomes: OK, INVALID_ARGUMENT or RESOURCE_EXHAUSTED (and NOT_FOUND for a case
that names a model that does not exist). Anything else is a finding: INTERNAL, UNKNOWN, any
other status, no answer within the deadline (a hang), the gateway process gone (a crash), or
UNAVAILABLE while Triton is alive.

A stream is hung when it makes no progress for the deadline: neither a message of the
caller's read by the gateway nor an answer received. A long stream sent as fast as possible
can take longer than the deadline on a loaded machine while answering all along; it gets up
to `STREAM_DEADLINE_FACTOR` deadlines in all, and is counted among the slow, not the hung.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

import aiohttp
import grpc

from support.fuzzing.cases import Case, HttpRequest
from support.fuzzing.memory import triton_pid
from tritone_protos import audio_classification_pb2 as pb
from tritone_protos import audio_classification_pb2_grpc as pb_grpc

ALLOWED: Final = frozenset({"OK", "INVALID_ARGUMENT", "RESOURCE_EXHAUSTED"})
HANG: Final = "HANG"
CRASH: Final = "CRASH"

_HTTP_CODES: Final = {
    200: "OK",
    400: "INVALID_ARGUMENT",
    404: "NOT_FOUND",
    413: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_CHANNEL_OPTIONS: Final = [
    ("grpc.max_send_message_length", 256 * 1024 * 1024),
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),
]


@dataclass(frozen=True, slots=True)
class Result:
    case: Case
    status: str  # a gRPC status name, HANG or CRASH
    message: str
    seconds: float
    finding: str | None  # why this outcome is not acceptable; None when it is


SLOW_KEPT: Final = 8
STREAM_DEADLINE_FACTOR: Final = 4


@dataclass(slots=True)
class Tally:
    """Counts per kind and status, the findings, and the run's pace."""

    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # kind, route, status
    findings: list[Result] = field(default_factory=list)
    done: int = 0
    started: float = field(default_factory=time.monotonic)
    slowest: float = 0.0
    deadline_s: float = 30.0
    over_deadline: int = 0
    """Inputs that took longer than the deadline but were not hung (long streams)."""
    slow: list[tuple[float, int, str, str]] = field(default_factory=list)
    """The slowest inputs: (seconds, index, detail, status), at most `SLOW_KEPT`."""

    def add(self, result: Result) -> None:
        self.counts[(result.case.kind, result.case.route, result.status)] += 1
        self.done += 1
        self.slowest = max(self.slowest, result.seconds)
        if result.seconds > self.deadline_s and result.status != HANG:
            self.over_deadline += 1
        case = result.case
        self.slow.append((round(result.seconds, 2), case.index, case.detail[:120], result.status))
        self.slow = sorted(self.slow, reverse=True)[:SLOW_KEPT]
        if result.finding is not None:
            self.findings.append(result)

    def by_status(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        for (_, _, status), n in self.counts.items():
            out[status] += n
        return dict(out.most_common())

    def by_kind(self) -> dict[str, dict[str, int]]:
        out: dict[str, Counter[str]] = {}
        for (kind, _, status), n in self.counts.items():
            out.setdefault(kind, Counter())[status] += n
        return {k: dict(v.most_common()) for k, v in sorted(out.items())}


class Gateway:
    """What the runner needs of the gateway under test: where it listens and its process."""

    def __init__(self, target: str, http_url: str, pid: int, alive: Callable[[], bool]) -> None:
        self.target = target
        self.http_url = http_url
        self.pid = pid
        self.alive = alive

    def triton_alive(self) -> bool:
        return triton_pid(self.pid) is not None


class _Room:
    """Cases share the room; a heavy case waits until it is alone in it."""

    def __init__(self) -> None:
        self._cond = asyncio.Condition()
        self._active = 0
        self._alone = False

    @contextlib.asynccontextmanager
    async def enter(self, alone: bool) -> AsyncIterator[None]:
        async with self._cond:
            await self._cond.wait_for(lambda: not self._alone)
            if alone:
                self._alone = True
                await self._cond.wait_for(lambda: self._active == 0)
            self._active += 1
        try:
            yield
        finally:
            async with self._cond:
                self._active -= 1
                if alone:
                    self._alone = False
                self._cond.notify_all()


class Runner:
    """Holds one gRPC channel and one HTTP session to the gateway; ``async with`` it."""

    def __init__(self, gateway: Gateway, *, deadline_s: float = 30.0) -> None:
        self.gateway = gateway
        self.deadline_s = deadline_s
        self._stack = contextlib.AsyncExitStack()
        self._room = _Room()

    async def __aenter__(self) -> Runner:
        channel = await self._stack.enter_async_context(
            grpc.aio.insecure_channel(self.gateway.target, options=_CHANNEL_OPTIONS)
        )
        self.stub = pb_grpc.AudioClassificationStub(channel)  # type: ignore[no-untyped-call]
        # Streams go through the blocking client, in threads: grpc.aio's client reports
        # INTERNAL "Internal error from Core" instead of the server's status when the server
        # ends a stream while the client is still writing (grpc/grpc#36066), which would
        # make every correctly refused stream look like a gateway failure.
        sync_channel = self._stack.enter_context(
            grpc.insecure_channel(self.gateway.target, options=_CHANNEL_OPTIONS)
        )
        self.sync_stub = pb_grpc.AudioClassificationStub(sync_channel)  # type: ignore[no-untyped-call]
        self.http = await self._stack.enter_async_context(aiohttp.ClientSession())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def _grpc(self, case: Case) -> tuple[str, str]:
        p = case.payload
        try:
            if case.route == "grpc_stream":
                assert isinstance(p, tuple)
                return await asyncio.to_thread(self._stream, p)
            if case.route == "grpc_embed":
                assert isinstance(p, pb.EmbedRequest)
                await self.stub.Embed(p, timeout=self.deadline_s)
            else:
                assert isinstance(p, pb.ClassifyRequest)
                await self.stub.Classify(p, timeout=self.deadline_s)
        except grpc.aio.AioRpcError as exc:
            return exc.code().name, exc.details() or ""
        return "OK", ""

    def _stream(self, messages: tuple[pb.StreamClassifyRequest, ...]) -> tuple[str, str]:
        last = [time.monotonic()]  # the latest progress either way
        stalled = threading.Event()
        done = threading.Event()

        def sent() -> Iterator[pb.StreamClassifyRequest]:
            for message in messages:
                last[0] = time.monotonic()
                yield message

        call = self.sync_stub.StreamClassify(
            sent(), timeout=self.deadline_s * STREAM_DEADLINE_FACTOR
        )

        def watch() -> None:
            while not done.wait(0.25):
                if time.monotonic() - last[0] > self.deadline_s:
                    stalled.set()
                    call.cancel()
                    return

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            for _ in call:
                last[0] = time.monotonic()
        except grpc.RpcError as exc:
            if stalled.is_set():
                return HANG, f"no progress for {self.deadline_s:g} s (nothing read or answered)"
            return exc.code().name, exc.details() or ""
        finally:
            done.set()
            watcher.join()
        return "OK", ""

    async def _http(self, request: HttpRequest) -> tuple[str, str]:
        url = f"{self.gateway.http_url}/models/{urllib.parse.quote(request.model, safe='')}"
        timeout = aiohttp.ClientTimeout(total=self.deadline_s)
        try:
            async with self.http.post(
                url,
                data=request.body,
                params=request.query,
                headers={"Content-Type": request.content_type},
                timeout=timeout,
            ) as reply:
                text = await reply.text(errors="replace")
                return _HTTP_CODES.get(reply.status, f"HTTP_{reply.status}"), text[:300]
        except TimeoutError:
            return "DEADLINE_EXCEEDED", "no HTTP answer within the deadline"
        except aiohttp.ClientError as exc:
            return "UNAVAILABLE", f"HTTP connection failed: {exc!r}"

    async def run(self, case: Case) -> Result:
        async with self._room.enter(case.heavy):
            started = time.monotonic()
            try:
                limit = self.deadline_s * (
                    STREAM_DEADLINE_FACTOR if case.route == "grpc_stream" else 1
                )
                status, message = await asyncio.wait_for(self._send(case), timeout=limit + 10)
            except TimeoutError:
                status, message = HANG, "the client's own deadline did not end the call"
            seconds = time.monotonic() - started
        status, message, finding = self._judge(case, status, message)
        return Result(case, status, message, seconds, finding)

    async def _send(self, case: Case) -> tuple[str, str]:
        if isinstance(case.payload, HttpRequest):
            return await self._http(case.payload)
        return await self._grpc(case)

    def _judge(self, case: Case, status: str, message: str) -> tuple[str, str, str | None]:
        if not self.gateway.alive():
            return CRASH, message, "the gateway process exited"
        if status == "DEADLINE_EXCEEDED":
            return HANG, message, "no answer within its deadline"
        if status == HANG:
            return HANG, message, message
        if status in ALLOWED or (status == "NOT_FOUND" and case.unknown_model):
            return status, message, None
        if status == "UNAVAILABLE":
            triton = "alive" if self.gateway.triton_alive() else "gone"
            return status, message, f"UNAVAILABLE while Triton is {triton}"
        return status, message, f"status {status} is not an acceptable answer"

    async def run_all(
        self,
        cases: Iterable[Case],
        *,
        concurrency: int,
        on_result: Callable[[Result], None],
        stop_on_crash: bool = True,
    ) -> None:
        """Run every case with `concurrency` in flight; generation is lazy, so a run of
        10,000 cases holds only the cases in flight."""
        it = iter(cases)
        stop = asyncio.Event()

        async def worker() -> None:
            while not stop.is_set():
                case = next(it, None)
                if case is None:
                    return
                result = await self.run(case)
                on_result(result)
                if result.status == CRASH and stop_on_crash:
                    stop.set()

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    async def healthy_request(self, wav: bytes) -> str:
        """A normal Classify of a valid WAV: OK when the gateway still serves."""
        req = pb.ClassifyRequest(model="tones", audio=pb.Audio(encoded=wav), top_k=1)
        status, message = await self._grpc(Case(-1, "encoded", "grpc_classify", "healthy", req))
        return status if status == "OK" else f"{status}: {message}"
