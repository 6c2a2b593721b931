"""Helpers for the reliability tests: live paced streams, health, metrics, child processes."""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

import tritone
from support.tones import FREQS, to_s16le, tone
from support.waiting import wait_for

RATE = 16000
SERVING = health_pb2.HealthCheckResponse.SERVING


@dataclass
class Outcome:
    """How one live stream ended."""

    summary: tritone.StreamSummary | None
    error: tritone.TritoneError | None
    ended_at: float
    windows: int
    frames_sent: int
    """Frames of every chunk the server took (a chunk it refused is not counted)."""


async def paced_stream(
    client: tritone.AsyncClient,
    stop: asyncio.Event,
    opened: asyncio.Semaphore | None = None,
    *,
    answered: asyncio.Semaphore | None = None,
    chunk_s: float = 0.1,
    pause_s: float = 0.1,
) -> Outcome:
    """Send a tone in ``chunk_s`` pieces every ``pause_s`` until ``stop`` (then end the
    stream) or until the server ends it; collect what came back. ``opened`` is released
    once the first chunk is taken, ``answered`` once the first window result arrives."""
    audio = to_s16le(tone(FREQS[2], chunk_s, RATE))
    stream = client.stream_classify(sample_rate=RATE, model="tones", timeout=300)
    summary: tritone.StreamSummary | None = None
    error: tritone.TritoneError | None = None
    windows = 0
    frames = len(audio) // 2
    frames_sent = 0
    async with stream:

        async def send() -> None:
            nonlocal frames_sent
            try:
                await stream.send(audio)
                frames_sent += frames
                if opened is not None:
                    opened.release()
                while not stop.is_set():
                    await asyncio.sleep(pause_s)  # live audio, paced as it is spoken
                    await stream.send(audio)
                    frames_sent += frames
                await stream.end()
            except (tritone.TritoneError, tritone.UsageError):
                return  # the server ended the stream: the reader says how

        sender = asyncio.create_task(send())
        try:
            async for event in stream:
                if isinstance(event, tritone.StreamSummary):
                    summary = event
                elif isinstance(event, tritone.WindowResult):
                    windows += 1
                    if windows == 1 and answered is not None:
                        answered.release()
        except tritone.TritoneError as exc:
            error = exc
        ended_at = time.monotonic()
        sender.cancel()
        await asyncio.wait({sender})
    return Outcome(summary, error, ended_at, windows, frames_sent)


async def health(target: str, wait_s: float = 2.0) -> int | None:
    """gRPC health status of ``target`` (overall service), None if it did not answer."""
    async with grpc.aio.insecure_channel(target) as channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=wait_s
            )
        except grpc.aio.AioRpcError:
            return None
        return int(reply.status)


async def wait_health(target: str, serving: bool, limit_s: float, poll_s: float = 0.05) -> float:
    """Seconds until health reads SERVING (or not); AssertionError past ``limit_s``."""

    async def reached() -> bool:
        return bool((await health(target, wait_s=1.0) == SERVING) == serving)

    what = "health SERVING" if serving else "health not SERVING"
    return await wait_for(reached, limit_s, poll_s=poll_s, what=what)


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return int(reply.status), reply.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()


def metric(text: str, name: str) -> float:
    """The value of an unlabelled metric in a Prometheus exposition."""
    match = re.search(rf"^{re.escape(name)} ([0-9.eE+-]+)$", text, re.MULTILINE)
    assert match is not None, f"{name} is not in /metrics"
    return float(match.group(1))


def _children(pid: int) -> Iterator[tuple[int, str, Path]]:
    """(pid, command name, /proc entry) of each direct child process of ``pid``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
            yield int(entry.name), stat[stat.index("(") + 1 : stat.rindex(")")], entry


def children(pid: int, name: str) -> list[int]:
    """Direct child processes of ``pid`` whose command name is ``name`` (from /proc)."""
    return [child for child, command, _ in _children(pid) if command == name]


def descendants_with_cmdline(pid: int, needle: str) -> list[int]:
    """Child processes of ``pid`` whose command line contains ``needle``."""
    found = []
    for child, _, entry in _children(pid):
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if needle in cmdline:
            found.append(child)
    return found


def triton_grpc_port(pid: int) -> int:
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    for arg in cmdline:
        if arg.startswith(b"--grpc-port="):
            return int(arg.split(b"=", 1)[1])
    raise AssertionError(f"process {pid} has no --grpc-port")


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs: a zombie (dead, not yet reaped by its parent) does not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"
