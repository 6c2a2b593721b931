"""What the load generators share: ports, CPU time from /proc, the gateway process, results."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import platform
import socket
import sys
import time
import wave
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import grpc
import numpy as np
import numpy.typing as npt
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results.md"
_TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stat_fields(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """user + system CPU of one process (its threads included)."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / _TICK


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(c) for c in (task / "children").read_text().split()]
    return found


def cpu_tree_seconds(pid: int) -> float:
    """user + system CPU of a process and all its live descendants, plus what its reaped
    children used (cutime/cstime)."""
    total = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            fields = _stat_fields(p)
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / _TICK
        todo += _children(p)
    return total


def machine_line() -> str:
    load = os.getloadavg()
    return (
        f"{platform.machine()}, {os.cpu_count()} cores (shared), load average "
        f"{load[0]:.1f} at the end, CPU Triton (python backend)"
    )


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
            await asyncio.sleep(0.3)
    raise SystemExit("the gateway did not become ready")


@contextlib.asynccontextmanager
async def start_gateway(
    triton_url: str | None, extra: Sequence[str] = ()
) -> AsyncIterator[tuple[str, int]]:
    """``python -m tritone_server`` on a free port (with its own Triton unless
    ``triton_url``); yields its target and pid."""
    port = free_port()
    args = [sys.executable, "-m", "tritone_server", "--port", str(port)]
    args += ["--http-port", "0", "--log-level", "WARNING", *extra]
    if triton_url:
        args += ["--triton-url", triton_url]
    gateway = await asyncio.create_subprocess_exec(*args, cwd=ROOT)
    target = f"127.0.0.1:{port}"
    try:
        await wait_serving(target, 240)
        yield target, gateway.pid
    finally:
        gateway.terminate()
        await asyncio.wait_for(gateway.wait(), 30)


def append_results(lines: Sequence[str]) -> None:
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmark results\n\nEach section names the command that wrote it.\n")
    with RESULTS.open("a") as f:
        f.write("\n".join(lines) + "\n")


def publish(body: Sequence[str], *, write: bool) -> None:
    """Print a results section and, unless told not to, append it to results.md."""
    print("\n".join(body))
    if write:
        append_results(body)
        print(f"appended to {RESULTS}")


def publish_section(
    name: str,
    description: str,
    lines: Sequence[str],
    *,
    missed: Sequence[str] | None,
    write: bool,
    heading: str = "",
) -> None:
    """One results.md section of benchmark `name`: heading (date, machine, `heading`), the
    command that ran with what it measured, the table, and the targets it missed (None: the
    benchmark has no targets)."""
    command = f"python benchmarks/{name}.py " + " ".join(sys.argv[1:])
    body = [
        f"\n### {name} — {time.strftime('%Y-%m-%d %H:%M')} — {machine_line()}{heading}\n",
        f"`{command}` — {description}\n",
        *lines,
        "",
    ]
    if missed is not None:
        body.append("Targets missed: " + ("; ".join(missed) if missed else "none") + "\n")
    publish(body, write=write)


def wav_bytes(samples: npt.NDArray[np.int16], rate: int) -> bytes:
    """A mono 16-bit WAV file of `samples`, as the benchmarks send it."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(samples.astype("<i2").tobytes())
    return buf.getvalue()


def tone_wav(seconds: float, rate: int) -> bytes:
    """`seconds` of a 700 Hz tone at 0.4 full scale, 16-bit mono WAV."""
    t = np.arange(int(seconds * rate)) / rate
    return wav_bytes((0.4 * np.sin(2 * np.pi * 700 * t) * 32767).astype("<i2"), rate)
