"""The gateway's own CPU per request and per stream chunk, with Triton taken out of the way.

A stand-in for Triton (a grpc.aio server speaking Triton's GRPCInferenceService, answering
every ModelInfer at once with zero logits of the right shape, and serving the committed
configs of `tones` and `speech-commands`) runs in a process of its own; the real gateway
(``python -m tritone_server --triton-url``) talks to it through its real tritonclient pool.
So the figures are the gateway's CPU (its process tree, from /proc) per unary ``classify()``
of a 1 s 16 kHz WAV and per 100 ms stream chunk, unaffected by how busy Triton is. Also
reported: a bare grpc.aio unary echo server's CPU per call on the same machine (the floor
for one gRPC hop in Python). Not a test: nothing here checks scores.

    .venv/bin/python benchmarks/gateway_overhead.py --requests 2000 --streams 100
    .venv/bin/python benchmarks/gateway_overhead.py --serve-stub PORT   # (internal)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2, service_pb2, service_pb2_grpc

import tritone
from tritone_protos import audio_classification_pb2 as pb
from tritone_protos import audio_classification_pb2_grpc as pb_grpc

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _load_common import (  # type: ignore[import-not-found]
    ROOT,
    cpu_tree_seconds,
    free_port,
    publish_section,
    tone_wav,
    wait_serving,
)

MODELS = ("tones", "speech-commands")
RATE = 16_000


class StubTriton(service_pb2_grpc.GRPCInferenceServiceServicer):  # type: ignore[misc]
    """Triton's gRPC API, answering at once (zeros) for the committed configs."""

    def __init__(self, repository: Path) -> None:
        self.configs: dict[str, Any] = {}
        for name in MODELS:
            config = model_config_pb2.ModelConfig()
            text_format.Parse((repository / name / "config.pbtxt").read_text(), config)
            self.configs[name] = config

    async def ServerReady(self, request: Any, context: Any) -> Any:
        return service_pb2.ServerReadyResponse(ready=True)

    async def RepositoryIndex(self, request: Any, context: Any) -> Any:
        entry = service_pb2.RepositoryIndexResponse.ModelIndex
        return service_pb2.RepositoryIndexResponse(
            models=[entry(name=n, version="1", state="READY") for n in self.configs]
        )

    async def ModelConfig(self, request: Any, context: Any) -> Any:
        return service_pb2.ModelConfigResponse(config=self.configs[request.name])

    async def ModelInfer(self, request: Any, context: Any) -> Any:
        rows = int(request.inputs[0].shape[0])
        labels = int(self.configs[request.model_name].output[0].dims[-1])
        reply = service_pb2.ModelInferResponse(model_name=request.model_name, id=request.id)
        tensor = reply.outputs.add()
        tensor.name = request.outputs[0].name
        tensor.datatype = "FP32"
        tensor.shape.extend([rows, labels])
        reply.raw_output_contents.append(bytes(4 * rows * labels))
        return reply


class Echo(pb_grpc.AudioClassificationServicer):
    async def Classify(self, request: Any, context: Any) -> Any:
        return pb.ClassifyResponse(model=request.model)


async def serve(port: int, echo: bool) -> None:
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 256 << 20)])
    if echo:
        pb_grpc.add_AudioClassificationServicer_to_server(Echo(), server)  # type: ignore[no-untyped-call]
    else:
        stub = StubTriton(ROOT / "model_repository")
        service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(stub, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


@contextlib.asynccontextmanager
async def stub_gateway(*gateway_args: str) -> AsyncIterator[tuple[str, int]]:
    """The real gateway (with ``gateway_args``) in front of the stand-in Triton, both in
    processes of their own: (the gateway's target, its pid)."""
    stub_port, port = free_port(), free_port()
    stub = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve-stub", str(stub_port)
    )
    try:
        gateway = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "tritone_server", "--port", str(port), "--http-port", "0"),
            *("--log-level", "WARNING", "--triton-url", f"127.0.0.1:{stub_port}"),
            *gateway_args,
            cwd=ROOT,
        )
        target = f"127.0.0.1:{port}"
        try:
            await wait_serving(target, 120)
            yield target, gateway.pid
        finally:
            gateway.send_signal(signal.SIGTERM)
            await asyncio.wait_for(gateway.wait(), 30)
    finally:
        stub.kill()
        await stub.wait()


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def unary(target: str, pid: int, requests: int, concurrency: int) -> list[str]:
    wav = tone_wav(1.0, RATE)
    rows = []
    async with tritone.AsyncClient(target) as client:
        for model in MODELS:
            for _ in range(50):
                await client.classify(wav, model=model)
            left = [requests]

            async def loop(m: str = model, left: list[int] = left) -> None:
                while left[0] > 0:
                    left[0] -= 1
                    await client.classify(wav, model=m)

            cpu0, me0 = cpu_tree_seconds(pid), own_cpu()
            await asyncio.gather(*(loop() for _ in range(concurrency)))
            cpu1, me1 = cpu_tree_seconds(pid), own_cpu()
            rows.append(
                f"| unary `classify()` of a 1 s WAV, `{model}`, concurrency {concurrency} "
                f"| {requests} requests | {(cpu1 - cpu0) / requests * 1e6:.0f} µs "
                f"| {(me1 - me0) / requests * 1e6:.0f} µs |"
            )
    return rows


@dataclass(frozen=True)
class StreamRun:
    """Live streams at real-time pace: chunks sent, CPU of the gateway tree and of this process
    while they ran (from the moment every stream was open)."""

    chunks: int
    gateway_cpu_s: float
    own_cpu_s: float


async def paced_streams(target: str, pid: int, count: int, seconds: float) -> StreamRun:
    chunk = RATE // 10
    t = np.arange(int(seconds * RATE)) / RATE
    opened = asyncio.Barrier(count + 1)
    clock = [0.0]

    async def one(client: tritone.AsyncClient, n: int) -> int:
        audio = (0.5 * np.sin(2 * np.pi * (250 + 40 * (n % 50)) * t) * 32767).astype("<i2")
        chunks = [audio[i : i + chunk].tobytes() for i in range(0, len(audio), chunk)]
        async with client.stream_classify(sample_rate=RATE, model="tones", top_k=1) as stream:

            async def reader() -> None:
                async for _ in stream:
                    pass

            task = asyncio.create_task(reader())
            await opened.wait()
            for i, data in enumerate(chunks):
                due = clock[0] + (n % 100) / 1000 + i * 0.1
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                await stream.send(data)
            await stream.end()
            await task
        return len(chunks)

    async with tritone.AsyncClient(target) as client:
        tasks = [asyncio.create_task(one(client, n)) for n in range(count)]
        clock[0] = time.perf_counter() + 0.05
        await opened.wait()
        cpu0, me0 = cpu_tree_seconds(pid), own_cpu()
        chunks = sum(await asyncio.gather(*tasks))
        cpu1, me1 = cpu_tree_seconds(pid), own_cpu()
    return StreamRun(chunks, cpu1 - cpu0, me1 - me0)


async def streams(target: str, pid: int, count: int, seconds: float) -> list[str]:
    run = await paced_streams(target, pid, count, seconds)
    return [
        f"| {count} streams on `tones`, 100 ms chunks at real-time pace for {seconds:g} s "
        f"| {run.chunks} chunks | {run.gateway_cpu_s / run.chunks * 1e6:.0f} µs "
        f"| {run.own_cpu_s / run.chunks * 1e6:.0f} µs |"
    ]


async def echo_floor(requests: int, concurrency: int) -> list[str]:
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve-echo", str(port)
    )
    try:
        await asyncio.sleep(2)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary(
                "/tritone.v1.AudioClassification/Classify",
                request_serializer=pb.ClassifyRequest.SerializeToString,
                response_deserializer=pb.ClassifyResponse.FromString,
            )
            request = pb.ClassifyRequest(model="tones", audio=pb.Audio(encoded=tone_wav(1.0, RATE)))
            for _ in range(100):
                await call(request)
            left = [requests]

            async def loop() -> None:
                while left[0] > 0:
                    left[0] -= 1
                    await call(request)

            cpu0 = cpu_tree_seconds(server.pid)
            await asyncio.gather(*(loop() for _ in range(concurrency)))
            cpu1 = cpu_tree_seconds(server.pid)
    finally:
        server.kill()
        await server.wait()
    return [
        f"| bare grpc.aio unary echo server (same 32 kB request), concurrency {concurrency} "
        f"| {requests} requests | {(cpu1 - cpu0) / requests * 1e6:.0f} µs | |"
    ]


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--serve-stub", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-echo", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    if args.serve_stub or args.serve_echo:
        await serve(args.serve_stub or args.serve_echo, echo=bool(args.serve_echo))
        return
    async with stub_gateway() as (target, pid):
        rows = await unary(target, pid, args.requests, args.concurrency)
        rows += await streams(target, pid, args.streams, args.seconds)
    rows += await echo_floor(args.requests, args.concurrency)
    publish_section(
        "gateway_overhead",
        "the real gateway in front of a stand-in Triton that answers at once, so the CPU is "
        "the gateway's own (its process tree, from /proc); the load generator is this process. "
        "The machine was shared with other work while this ran.",
        [
            "| what | count | gateway CPU each | load generator CPU each |",
            "| --- | ---: | ---: | ---: |",
            *rows,
        ],
        missed=None,
        write=not args.no_write,
    )


if __name__ == "__main__":
    asyncio.run(main())
