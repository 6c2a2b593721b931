"""Live-stream load on a real gateway and a real local Triton: CPU per chunk and latency.

Starts ``python -m tritone_server`` (which starts Triton), then runs S concurrent streams
that each send 100 ms chunks of 16 kHz s16le at real-time pace for D seconds, and measures:
- gateway CPU time (user+sys of the gateway process only, not Triton) per audio chunk;
- latency from sending the chunk that completes a window to receiving its WindowResult.
Appends a row to benchmarks/results.md with the command that produced it.

    .venv/bin/python benchmarks/stream_load.py --streams 50 200 500 --batch-delay-ms 0 2
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

import tritone

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results.md"
RATE = 16000
CHUNK_MS = 100


@dataclass
class StreamStats:
    latencies: list[float]
    chunks: int
    windows: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def wait_serving(target: str, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    async with grpc.aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.5)
    raise SystemExit("the gateway did not become ready")


async def one_stream(
    client: tritone.AsyncClient, n: int, seconds: float, model: str
) -> StreamStats:
    chunk = RATE * CHUNK_MS // 1000
    t = np.arange(int(seconds * RATE)) / RATE
    audio = (0.5 * np.sin(2 * np.pi * (250 + 40 * n) * t) * 32767).astype("<i2")
    sent_at: list[float] = []
    latencies: list[float] = []
    windows = 0
    async with client.stream_classify(sample_rate=RATE, model=model, top_k=1) as stream:

        async def reader() -> None:
            nonlocal windows
            async for event in stream:
                if isinstance(event, tritone.WindowResult) and not event.interim:
                    windows += 1
                    last_chunk = int(np.ceil(event.end_s * RATE / chunk)) - 1
                    if 0 <= last_chunk < len(sent_at):
                        latencies.append(time.perf_counter() - sent_at[last_chunk])

        task = asyncio.create_task(reader())
        start = time.perf_counter() + (n % 10) * CHUNK_MS / 10000  # spread the streams
        for i in range(0, len(audio), chunk):
            await asyncio.sleep(
                max(0.0, start + (i // chunk) * CHUNK_MS / 1000 - time.perf_counter())
            )
            sent_at.append(time.perf_counter())
            await stream.send(audio[i : i + chunk].tobytes())
        await stream.end()
        await task
    return StreamStats(latencies, len(sent_at), windows)


async def run(streams: int, seconds: float, target: str, pid: int, model: str) -> dict[str, float]:
    async with tritone.AsyncClient(target) as client:
        cpu0, wall0 = cpu_seconds(pid), time.perf_counter()
        stats = await asyncio.gather(
            *(one_stream(client, n, seconds, model) for n in range(streams))
        )
        cpu1, wall1 = cpu_seconds(pid), time.perf_counter()
    chunks = sum(s.chunks for s in stats)
    lat = sorted(x for s in stats for x in s.latencies)
    return {
        "streams": streams,
        "chunks": chunks,
        "windows": sum(s.windows for s in stats),
        "wall_s": wall1 - wall0,
        "cpu_us_per_chunk": (cpu1 - cpu0) / chunks * 1e6,
        "gateway_cores": (cpu1 - cpu0) / (wall1 - wall0),
        "p50_ms": statistics.median(lat) * 1000,
        "p95_ms": lat[int(0.95 * (len(lat) - 1))] * 1000,
    }


async def measure(args: argparse.Namespace, batch_delay_ms: float) -> list[dict[str, float]]:
    port = free_port()
    gateway = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "tritone_server", "--port", str(port)),
        *("--http-port", "0", "--log-level", "WARNING"),
        *("--batch-delay-ms", str(batch_delay_ms)),
        cwd=ROOT,
    )
    target = f"127.0.0.1:{port}"
    rows = []
    try:
        await wait_serving(target, 240)
        for streams in args.streams:
            row = await run(streams, args.seconds, target, gateway.pid, args.model)
            row["batch_delay_ms"] = batch_delay_ms
            rows.append(row)
            print(row, flush=True)
    finally:
        gateway.terminate()
        await asyncio.wait_for(gateway.wait(), 30)
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[50, 200, 500])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--model", default="tones")
    parser.add_argument(
        "--batch-delay-ms",
        type=float,
        nargs="+",
        default=[0.0, 2.0],
        help="gateway settings to compare (0: no cross-stream batching)",
    )
    args = parser.parse_args()
    rows = [row for delay in args.batch_delay_ms for row in await measure(args, delay)]
    command = "python benchmarks/stream_load.py " + " ".join(sys.argv[1:])
    lines = [
        f"\n### stream_load — {time.strftime('%Y-%m-%d')} — {platform.machine()}, "
        f"{os.cpu_count()} cores, CPU Triton (python backend), model `{args.model}`\n",
        f"`{command}` — {CHUNK_MS} ms chunks of 16 kHz s16le at real-time pace, "
        f"{args.seconds:g} s per stream; client, gateway and Triton share the machine. "
        "Latency: chunk that completes a window sent → its WindowResult received.\n",
        "| batch delay ms | streams | chunks | windows | gateway CPU µs/chunk | gateway cores "
        "| p50 ms | p95 ms |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['batch_delay_ms']:g} | {r['streams']} | {r['chunks']} | {r['windows']} "
            f"| {r['cpu_us_per_chunk']:.0f} | {r['gateway_cores']:.2f} | {r['p50_ms']:.1f} "
            f"| {r['p95_ms']:.1f} |"
        )
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmark results\n\nEach section names the command that wrote it.\n")
    with RESULTS.open("a") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
