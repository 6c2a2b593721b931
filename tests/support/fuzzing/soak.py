"""A mix of streams, unary calls, HTTP calls, cancels and timeouts, run against a real
gateway while its RSS is sampled; the growth over the run's second half is the figure.

Each worker loops over the mix until the run's time or request budget is spent:
- stream (35 %): a whole stream of 1-2 s of 16 kHz s16le in 100 ms chunks, read to its summary;
- cancel (20 %): a stream whose caller cancels it after its first window result;
- classify (25 %): gRPC Classify of a valid file of a random container;
- http (12 %): the same over the HTTP route;
- timeout (8 %): Classify with a 5 ms deadline, which the caller gives up on.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import aiohttp
import grpc
import numpy as np

from support.fuzzing.memory import Growth, RssSampler, second_half_growth
from support.fuzzing.seeds import Seed
from tritone_protos import audio_classification_pb2 as pb
from tritone_protos import audio_classification_pb2_grpc as pb_grpc

RATE: Final = 16000
_MIX: Final = (("stream", 35), ("cancel", 20), ("classify", 25), ("http", 12), ("timeout", 8))


@dataclass(slots=True)
class SoakReport:
    ops: Counter[tuple[str, str]] = field(default_factory=Counter)  # (operation, outcome)
    details: dict[str, str] = field(default_factory=dict)
    """The first message seen for each "operation:outcome", so an odd outcome has a cause."""
    done: int = 0
    seconds: float = 0.0
    sampler: RssSampler | None = None

    def growth(self, by: str = "time") -> Growth:
        assert self.sampler is not None
        return second_half_growth(self.sampler.gateway_series(by))

    def unexpected(self) -> dict[str, int]:
        """Outcomes other than the one each operation should have."""
        expected = {"stream": "OK", "cancel": "CANCELLED", "classify": "OK", "http": "OK"}
        out: dict[str, int] = {}
        for (op, outcome), n in self.ops.items():
            if op == "timeout":
                ok = outcome in ("DEADLINE_EXCEEDED", "OK")  # a fast machine may beat 5 ms
            else:
                ok = outcome == expected[op]
            if not ok:
                out[f"{op}:{outcome}"] = n
        return out


def _tone_chunks(rng: random.Random, seconds: float) -> list[bytes]:
    t = np.arange(int(RATE * seconds)) / RATE
    audio = (0.4 * np.sin(2 * np.pi * rng.choice((250, 1000, 2000)) * t) * 32767).astype("<i2")
    raw = audio.tobytes()
    step = RATE // 10 * 2
    return [raw[i : i + step] for i in range(0, len(raw), step)]


def _config() -> pb.StreamClassifyRequest:
    fmt = pb.PcmFormat(encoding=pb.PCM_S16LE, sample_rate=RATE, channels=1)
    return pb.StreamClassifyRequest(config=pb.StreamConfig(model="tones", format=fmt, top_k=2))


class Soak:
    def __init__(
        self,
        target: str,
        http_url: str,
        seeds: Sequence[Seed],
        *,
        seed: int = 0,
    ) -> None:
        self.target = target
        self.http_url = http_url
        self.files = [s.data for s in seeds if s.container in ("wav", "flac", "ogg_vorbis")]
        self.rng = random.Random(seed)
        self.report = SoakReport()

    async def _stream(self, stub: pb_grpc.AudioClassificationStub, rng: random.Random) -> str:
        chunks = _tone_chunks(rng, rng.choice((1.0, 1.5, 2.0)))
        messages = [_config(), *(pb.StreamClassifyRequest(audio=c) for c in chunks)]
        call = stub.StreamClassify(iter(messages), timeout=60)
        async for _ in call:
            pass
        return "OK"

    async def _cancel(self, stub: pb_grpc.AudioClassificationStub, rng: random.Random) -> str:
        # Written by hand, not from a request iterator: the caller stays mid-stream (no
        # half-close) until it cancels, and no iterator task is left behind by the cancel.
        call = stub.StreamClassify(timeout=60)
        await call.write(_config())
        for c in _tone_chunks(rng, 0.8):  # enough for a first window
            await call.write(pb.StreamClassifyRequest(audio=c))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(call.read(), timeout=10)
        call.cancel()
        return str((await call.code()).name)

    async def _classify(self, stub: pb_grpc.AudioClassificationStub, deadline_s: float) -> str:
        audio = pb.Audio(encoded=self.rng.choice(self.files))
        request = pb.ClassifyRequest(model="tones", audio=audio, top_k=2)
        await stub.Classify(request, timeout=deadline_s)
        return "OK"

    async def _http(self, session: aiohttp.ClientSession) -> tuple[str, str]:
        url = f"{self.http_url}/models/tones"
        async with session.post(url, data=self.rng.choice(self.files)) as reply:
            body = await reply.text(errors="replace")
            return ("OK", "") if reply.status == 200 else (f"HTTP_{reply.status}", body[:300])

    async def _one(
        self, op: str, stub: pb_grpc.AudioClassificationStub, session: aiohttp.ClientSession
    ) -> tuple[str, str]:
        """(outcome, what the gateway said about it)."""
        try:
            if op == "stream":
                return await self._stream(stub, self.rng), ""
            if op == "cancel":
                return await self._cancel(stub, self.rng), ""
            if op == "classify":
                return await self._classify(stub, 60), ""
            if op == "timeout":
                return await self._classify(stub, 0.005), ""
            return await self._http(session)
        except grpc.aio.AioRpcError as exc:
            return str(exc.code().name), exc.details() or ""
        except aiohttp.ClientError as exc:
            return type(exc).__name__, str(exc)

    async def run(
        self,
        pid: int,
        *,
        duration_s: float | None = None,
        max_ops: int | None = None,
        concurrency: int = 4,
        interval_s: float = 0.5,
    ) -> SoakReport:
        """Run the mix until `duration_s` passes or `max_ops` operations are done."""
        if duration_s is None and max_ops is None:
            raise ValueError("give a duration or a number of operations")
        report = self.report
        ops = [op for op, _ in _MIX]
        weights = [w for _, w in _MIX]
        started = time.monotonic()
        claimed = 0

        def more() -> bool:
            nonlocal claimed
            if duration_s is not None and time.monotonic() - started >= duration_s:
                return False
            if max_ops is not None and claimed >= max_ops:
                return False
            claimed += 1
            return True

        async def worker(
            stub: pb_grpc.AudioClassificationStub, session: aiohttp.ClientSession
        ) -> None:
            while more():
                op = self.rng.choices(ops, weights=weights)[0]
                outcome, detail = await self._one(op, stub, session)
                report.ops[(op, outcome)] += 1
                if detail:
                    report.details.setdefault(f"{op}:{outcome}", detail[:300])
                report.done += 1

        sampler = RssSampler(pid, interval_s, progress=lambda: report.done)
        async with (
            grpc.aio.insecure_channel(self.target) as channel,
            aiohttp.ClientSession() as session,
            sampler,
        ):
            stub = pb_grpc.AudioClassificationStub(channel)  # type: ignore[no-untyped-call]
            await asyncio.gather(*(worker(stub, session) for _ in range(concurrency)))
        report.seconds = time.monotonic() - started
        report.sampler = sampler
        return report
