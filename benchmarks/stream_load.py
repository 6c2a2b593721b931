"""Live-stream load on a real gateway and a real local Triton: CPU per chunk and latency.

Starts a local Triton (``LocalTriton``) and ``python -m tritone_server --triton-url`` on it,
then opens S streams (all of them before the clock starts), and has each send 100 ms chunks
of 16 kHz s16le at real-time pace for D seconds. This process is the load generator; the
gateway and Triton are processes of their own. It measures:
- gateway CPU (user+sys of its process tree, from /proc) per audio chunk;
- load-generator CPU (this process: the SDK's streams) per chunk sent;
- latency from sending the chunk that completes a window to receiving its WindowResult;
- Triton's average batch (inference_count / execution_count from its statistics);
- frames sent against the frames the summaries say were received (nothing dropped).
Appends a table to benchmarks/results.md with the command that produced it.

    .venv/bin/python benchmarks/stream_load.py --streams 100 500 --batch-delay-ms 2
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tritonclient.grpc.aio as triton_aio

import tritone

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _load_common import (  # type: ignore[import-not-found]
    ROOT,
    cpu_tree_seconds,
    publish_section,
    start_gateway,
)

from tritone_server.triton.local import LocalTriton

RATE = 16000
CHUNK_MS = 100


@dataclass
class StreamStats:
    latencies: list[float]
    chunks: int
    frames_sent: int
    frames_summarised: int
    windows: int


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def one_stream(
    client: tritone.AsyncClient,
    n: int,
    seconds: float,
    model: str,
    opened: asyncio.Barrier,
    clock: list[float],
) -> StreamStats:
    chunk = RATE * CHUNK_MS // 1000
    t = np.arange(int(seconds * RATE)) / RATE
    audio = (0.5 * np.sin(2 * np.pi * (250 + 40 * (n % 50)) * t) * 32767).astype("<i2")
    chunks = [audio[i : i + chunk].tobytes() for i in range(0, len(audio), chunk)]
    sent_at: list[float] = []
    latencies: list[float] = []
    windows = 0
    summarised = 0
    async with client.stream_classify(
        sample_rate=RATE, model=model, top_k=1, timeout=seconds + 120
    ) as stream:

        async def reader() -> None:
            nonlocal windows, summarised
            async for event in stream:
                if isinstance(event, tritone.WindowResult) and not event.interim:
                    windows += 1
                    last_chunk = math.ceil(event.end_s * RATE / chunk) - 1
                    if 0 <= last_chunk < len(sent_at):
                        latencies.append(time.perf_counter() - sent_at[last_chunk])
                elif isinstance(event, tritone.StreamSummary):
                    summarised = event.frames_received

        task = asyncio.create_task(reader())
        await opened.wait()  # every stream is open before the clock starts
        start = clock[0] + (n % 100) * CHUNK_MS / 100_000  # spread the streams over a chunk
        for i, data in enumerate(chunks):
            await asyncio.sleep(max(0.0, start + i * CHUNK_MS / 1000 - time.perf_counter()))
            sent_at.append(time.perf_counter())
            await stream.send(data)
        await stream.end()
        await task
    return StreamStats(latencies, len(chunks), len(audio), summarised, windows)


async def run(
    streams: int,
    seconds: float,
    target: str,
    pid: int,
    triton_pid: int,
    model: str,
    stats: triton_aio.InferenceServerClient,
) -> dict[str, float]:
    async with tritone.AsyncClient(target) as client:
        clock = [0.0]
        opened = asyncio.Barrier(streams + 1)
        tasks = [
            asyncio.create_task(one_stream(client, n, seconds, model, opened, clock))
            for n in range(streams)
        ]
        entry0 = (await stats.get_inference_statistics(model, as_json=True))["model_stats"][0]
        clock[0] = time.perf_counter() + 0.05
        cpu0, me0, wall0 = cpu_tree_seconds(pid), own_cpu(), time.perf_counter()
        triton0 = cpu_tree_seconds(triton_pid)
        await opened.wait()
        results = await asyncio.gather(*tasks)
        cpu1, me1, wall1 = cpu_tree_seconds(pid), own_cpu(), time.perf_counter()
        triton1 = cpu_tree_seconds(triton_pid)
        entry1 = (await stats.get_inference_statistics(model, as_json=True))["model_stats"][0]
    chunks = sum(s.chunks for s in results)
    lat = sorted(x for s in results for x in s.latencies)
    inferences = int(entry1.get("inference_count", 0)) - int(entry0.get("inference_count", 0))
    executions = int(entry1.get("execution_count", 0)) - int(entry0.get("execution_count", 0))
    return {
        "streams": streams,
        "chunks": chunks,
        "windows": sum(s.windows for s in results),
        "frames_sent": sum(s.frames_sent for s in results),
        "frames_summarised": sum(s.frames_summarised for s in results),
        "wall_s": wall1 - wall0,
        "cpu_us_per_chunk": (cpu1 - cpu0) / chunks * 1e6,
        "client_us_per_chunk": (me1 - me0) / chunks * 1e6,
        "gateway_cores": (cpu1 - cpu0) / (wall1 - wall0),
        "triton_us_per_chunk": (triton1 - triton0) / chunks * 1e6,
        "busy_cores": (cpu1 - cpu0 + me1 - me0 + triton1 - triton0) / (wall1 - wall0),
        "p50_ms": statistics.median(lat) * 1000,
        "p95_ms": lat[int(0.95 * (len(lat) - 1))] * 1000,
        "p99_ms": lat[int(0.99 * (len(lat) - 1))] * 1000,
        "avg_batch": inferences / max(1, executions),
    }


async def measure(args: argparse.Namespace, batch_delay_ms: float) -> list[dict[str, float]]:
    rows = []
    triton = LocalTriton(ROOT / "model_repository", startup_timeout_s=240)
    async with triton as endpoints:
        assert triton.pid is not None
        # the gateway's default max_streams (256) would refuse the rest of a larger run
        extra = ["--batch-delay-ms", str(batch_delay_ms)]
        extra += ["--max-streams", str(max(256, *args.streams))]
        async with start_gateway(endpoints.grpc_url, extra) as (target, pid):
            stats = triton_aio.InferenceServerClient(endpoints.grpc_url)
            try:
                for streams in args.streams:
                    row = await run(
                        streams, args.seconds, target, pid, triton.pid, args.model, stats
                    )
                    row["batch_delay_ms"] = batch_delay_ms
                    rows.append(row)
                    print(row, flush=True)
            finally:
                await stats.close()
    return rows


def table(rows: list[dict[str, float]]) -> tuple[list[str], list[str]]:
    lines = [
        "| batch delay ms | streams | chunks | windows | frames sent / in summaries "
        "| gateway CPU µs/chunk | client CPU µs/chunk | Triton CPU µs/chunk | gateway cores "
        "| cores busy (all three) | p50 ms | p95 ms | p99 ms | Triton avg batch |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: |",
    ]
    missed = []
    for r in rows:
        lines.append(
            f"| {r['batch_delay_ms']:g} | {r['streams']} | {r['chunks']} | {r['windows']} "
            f"| {r['frames_sent']} / {r['frames_summarised']} "
            f"| {r['cpu_us_per_chunk']:.0f} | {r['client_us_per_chunk']:.0f} "
            f"| {r['triton_us_per_chunk']:.0f} | {r['gateway_cores']:.2f} "
            f"| {r['busy_cores']:.2f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} "
            f"| {r['p99_ms']:.1f} | {r['avg_batch']:.1f} |"
        )
        where = f"{r['streams']} streams, delay {r['batch_delay_ms']:g} ms"
        if r["cpu_us_per_chunk"] > 100:
            missed.append(f"gateway {r['cpu_us_per_chunk']:.0f} µs/chunk > 100 ({where})")
        if r["client_us_per_chunk"] > 60:
            missed.append(f"client {r['client_us_per_chunk']:.0f} µs/chunk > 60 ({where})")
        if r["streams"] >= 500 and r["p99_ms"] >= 100:
            missed.append(f"p99 {r['p99_ms']:.0f} ms >= 100 ({where})")
        if r["frames_sent"] != r["frames_summarised"]:
            missed.append(f"frames sent != frames in summaries ({where})")
    return lines, missed


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--model", default="tones")
    parser.add_argument(
        "--batch-delay-ms",
        type=float,
        nargs="+",
        default=[2.0],
        help="gateway settings to compare (0: no cross-stream batching)",
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    rows = [row for delay in args.batch_delay_ms for row in await measure(args, delay)]
    lines, missed = table(rows)
    publish_section(
        "stream_load",
        f"{CHUNK_MS} ms chunks of 16 kHz s16le at real-time pace, {args.seconds:g} s per "
        "stream, every stream opened before the clock starts; the load generator (client "
        "CPU), the gateway (its process tree, started with "
        f"`--max-streams {max(256, *args.streams)}`) and Triton are separate processes on the "
        "same shared machine, with other work running. Latency: chunk that completes a window "
        "sent → its WindowResult received.",
        lines,
        missed=missed,
        write=not args.no_write,
        heading=f", model `{args.model}`",
    )


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    asyncio.run(main())
