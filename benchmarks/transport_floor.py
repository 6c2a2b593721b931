"""What Python gRPC itself costs per stream message, with no gateway and no SDK on top.

Issue 15 asks for the gateway at <= 100 µs of CPU per 100 ms chunk and the SDK at <= 60 µs
per chunk sent. This measures the floor under both: a bare bidirectional stream with the
gateway's message types, the server reading every 100 ms chunk (3,200 bytes of s16le) and
answering every fifth (a window per 0.5 s hop), the client writing at real-time pace with a
reader task per stream. Server and client are separate processes; CPU from /proc (server:
its process tree) and getrusage (client: this process). Each stack is measured both ways:
grpc.aio (what the gateway and SDK use) and the synchronous grpc API (a thread per stream).
Not a test: nothing here checks results.

    .venv/bin/python benchmarks/transport_floor.py --streams 100 500 --seconds 8
"""

from __future__ import annotations

import argparse
import asyncio
import queue
import resource
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import grpc.aio

from tritone_protos import audio_classification_pb2 as pb
from tritone_protos import audio_classification_pb2_grpc as pb_grpc

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _load_common import cpu_tree_seconds, free_port, publish_section  # type: ignore[import-not-found]

CHUNK = b"\x01\x00" * 1600  # 100 ms of 16 kHz s16le
PACE_S = 0.1
REPLY_EVERY = 5
METHOD = "/tritone.v1.AudioClassification/StreamClassify"
_WINDOW = pb.StreamClassifyResponse(
    window=pb.WindowResult(index=1, labels=[pb.LabelScore(label="tone_700", score=0.9)])
)


def _summary(messages: int) -> pb.StreamClassifyResponse:
    return pb.StreamClassifyResponse(summary=pb.StreamSummary(frames_received=messages * 1600))


class AioEcho(pb_grpc.AudioClassificationServicer):
    async def StreamClassify(
        self, request_iterator: AsyncIterator[pb.StreamClassifyRequest], context: Any
    ) -> AsyncIterator[pb.StreamClassifyResponse]:
        messages = 0
        async for _ in request_iterator:
            messages += 1
            if messages % REPLY_EVERY == 0:
                yield _WINDOW
        yield _summary(messages)


class SyncEcho(pb_grpc.AudioClassificationServicer):
    def StreamClassify(
        self, request_iterator: Iterator[pb.StreamClassifyRequest], context: Any
    ) -> Iterator[pb.StreamClassifyResponse]:
        messages = 0
        for _ in request_iterator:
            messages += 1
            if messages % REPLY_EVERY == 0:
                yield _WINDOW
        yield _summary(messages)


async def serve_aio(port: int) -> None:
    server = grpc.aio.server()
    pb_grpc.add_AudioClassificationServicer_to_server(AioEcho(), server)  # type: ignore[no-untyped-call]
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def serve_sync(port: int, streams: int) -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=streams + 8))
    pb_grpc.add_AudioClassificationServicer_to_server(SyncEcho(), server)  # type: ignore[no-untyped-call]
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _config() -> pb.StreamClassifyRequest:
    fmt = pb.PcmFormat(encoding=pb.PCM_S16LE, sample_rate=16000, channels=1)
    return pb.StreamClassifyRequest(config=pb.StreamConfig(model="tones", format=fmt))


async def aio_clients(target: str, streams: int, chunks: int, start: float) -> int:
    async with grpc.aio.insecure_channel(target) as channel:
        call_factory = channel.stream_stream(
            METHOD,
            request_serializer=pb.StreamClassifyRequest.SerializeToString,
            response_deserializer=pb.StreamClassifyResponse.FromString,
        )

        async def one(n: int) -> int:
            call = call_factory()
            await call.write(_config())

            async def reader() -> int:
                return len([reply async for reply in call])

            task = asyncio.create_task(reader())
            for i in range(chunks):
                due = start + (n % 100) / 1000 + i * PACE_S
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                await call.write(pb.StreamClassifyRequest(audio=CHUNK))
            await call.done_writing()
            await task
            return chunks

        return sum(await asyncio.gather(*(one(n) for n in range(streams))))


def sync_clients(target: str, streams: int, chunks: int, start: float) -> int:
    channel = grpc.insecure_channel(target)
    call_factory = channel.stream_stream(
        METHOD,
        request_serializer=pb.StreamClassifyRequest.SerializeToString,
        response_deserializer=pb.StreamClassifyResponse.FromString,
    )
    done: queue.Queue[int] = queue.Queue()

    def requests(n: int) -> Iterator[pb.StreamClassifyRequest]:
        yield _config()
        for i in range(chunks):
            due = start + (n % 100) / 1000 + i * PACE_S
            time.sleep(max(0.0, due - time.perf_counter()))
            yield pb.StreamClassifyRequest(audio=CHUNK)

    def one(n: int) -> None:
        for _ in call_factory(requests(n)):
            pass
        done.put(chunks)

    threads = [threading.Thread(target=one, args=(n,), daemon=True) for n in range(streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    channel.close()
    return sum(done.get() for _ in threads)


async def measure(server_kind: str, client_kind: str, streams: int, seconds: float) -> str:
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve", server_kind, str(port), "--streams", str(streams)
    )
    target = f"127.0.0.1:{port}"
    chunks = int(seconds / PACE_S)
    try:
        await asyncio.sleep(2)  # the server is up; a refused first call would show below
        start = time.perf_counter() + 0.2
        cpu0, me0 = cpu_tree_seconds(server.pid), own_cpu()
        if client_kind == "aio":
            sent = await aio_clients(target, streams, chunks, start)
        else:
            sent = await asyncio.to_thread(sync_clients, target, streams, chunks, start)
        cpu1, me1 = cpu_tree_seconds(server.pid), own_cpu()
    finally:
        server.kill()
        await server.wait()
    return (
        f"| {server_kind} | {client_kind} | {streams} | {sent} "
        f"| {(cpu1 - cpu0) / sent * 1e6:.0f} | {(me1 - me0) / sent * 1e6:.0f} |"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    if args.serve:
        kind, port = args.serve[0], int(args.serve[1])
        if kind == "aio":
            await serve_aio(port)
        else:
            await asyncio.to_thread(serve_sync, port, max(args.streams))
        return
    rows = [
        await measure(server, client, streams, args.seconds)
        for streams in args.streams
        for server, client in (("aio", "aio"), ("sync", "aio"), ("aio", "sync"))
    ]
    publish_section(
        "transport_floor",
        "bare gRPC bidirectional streams, no gateway and no SDK: the floor under issue 15's "
        "per-chunk targets (gateway <= 100 µs, SDK <= 60 µs). Server and client are separate "
        "processes on the same machine.",
        [
            "| server API | client API | streams | chunks | server CPU µs/chunk "
            "| client CPU µs/chunk |",
            "| --- | --- | ---: | ---: | ---: | ---: |",
            *rows,
        ],
        missed=None,
        write=not args.no_write,
    )


if __name__ == "__main__":
    asyncio.run(main())
