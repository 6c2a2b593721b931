"""Where the gateway's CPU goes: py-spy samples of the real gateway, grouped by layer.

The gateway runs in front of gateway_overhead.py's stand-in Triton (answers at once), so
every sample is the gateway's own work. Two loads, one after the other: unary
``classify()`` of a 1 s WAV at concurrency 16, and live streams at real-time pace. Each
sample's innermost frame is assigned to a layer:

- gRPC core: Cython callbacks of grpc.aio (they run inside asyncio's ``Handle._run``) and
  its poller thread; the Cython unary call (``UnaryUnaryCall._invoke``, the Triton hop);
- gRPC Python, asyncio (the event loop and selector), tritonclient, numpy, prometheus;
- the gateway: frames in ``tritone_server``.

A sample is a point in time, so this is a share of the gateway's busy time, not an exact
cost per call. It answers one question for issue 15: how much of the gateway's CPU per
request and per chunk is its own code, and so how far optimising that code could go.

Needs py-spy (the project's dev extra installs it); reading another process's stack needs
ptrace rights (same user, and ``kernel.yama.ptrace_scope`` 0 or 1 with py-spy as parent).

    .venv/bin/python benchmarks/gateway_profile.py --seconds 20 --streams 200
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import tritone

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _load_common import publish_section, tone_wav  # type: ignore[import-not-found]
from gateway_overhead import paced_streams, stub_gateway  # type: ignore[import-not-found]

LAYERS = (
    "gRPC core (Cython, C)",
    "gRPC Python",
    "asyncio",
    "tritonclient",
    "numpy",
    "prometheus",
    "gateway (tritone_server)",
    "other",
)
_FRAME = re.compile(r"\((?P<path>[^()]*):\d+\)$")


def layer(frame: str) -> str:
    """The layer of a sample's innermost frame (py-spy's raw format: ``name (path:line)``)."""
    match = _FRAME.search(frame)
    # py-spy writes library paths relative to site-packages ("numpy/core/_methods.py")
    path = "/" + match.group("path") if match else ""
    if frame.startswith(("Handle._run ", "Thread.run ", "UnaryUnaryCall._invoke ")):
        return LAYERS[0]
    for needle, name in (
        ("/grpc/", LAYERS[1]),
        ("/asyncio/", LAYERS[2]),
        ("selectors.py", LAYERS[2]),
        ("/tritonclient/", LAYERS[3]),
        ("/numpy/", LAYERS[4]),
        ("/prometheus_client/", LAYERS[5]),
        ("tritone_server", LAYERS[6]),
    ):
        if needle in path:
            return name
    return LAYERS[7]


def shares(raw: Path) -> dict[str, float]:
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if stack and n.isdigit():
            counts[layer(stack.split(";")[-1])] += int(n)
    total = sum(counts.values()) or 1
    return {name: counts[name] / total for name in LAYERS}


async def unary_load(target: str, seconds: float, concurrency: int) -> int:
    wav = tone_wav(1.0, 16_000)
    done = [0]
    async with tritone.AsyncClient(target) as client:
        end = time.monotonic() + seconds

        async def loop() -> None:
            while time.monotonic() < end:
                await client.classify(wav, model="tones")
                done[0] += 1

        await asyncio.gather(*(loop() for _ in range(concurrency)))
    return done[0]


async def sampled(pid: int, seconds: float, out: Path, spy: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *(spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "100"),
        *("-f", "raw", "-o", str(out), "--nonblocking"),
        stdout=asyncio.subprocess.DEVNULL,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy is not installed: `make install` (the dev extra) brings it")
    rows = []
    async with stub_gateway("--max-streams", str(max(256, args.streams))) as (target, pid):
        await unary_load(target, 2.0, 16)  # warm up
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "unary.txt"
            spy_run = await sampled(pid, args.seconds, raw, spy)
            requests = await unary_load(target, args.seconds, 16)
            await spy_run.wait()
            rows.append(("unary `classify()` of a 1 s WAV, concurrency 16", requests, shares(raw)))
            raw = Path(tmp) / "streams.txt"
            spy_run = await sampled(pid, args.seconds, raw, spy)
            run = await paced_streams(target, pid, args.streams, args.seconds)
            await spy_run.wait()
            what = f"{args.streams} streams, 100 ms chunks at real-time pace"
            rows.append((what, run.chunks, shares(raw)))
    header = "| load | calls | " + " | ".join(LAYERS) + " |"
    table = [header, "| --- | ---: |" + " ---: |" * len(LAYERS)]
    for what, count, share in rows:
        cells = " | ".join(f"{share[name] * 100:.0f} %" for name in LAYERS)
        table.append(f"| {what} | {count} | {cells} |")
    publish_section(
        "gateway_profile",
        "py-spy samples (100 per second) of the real gateway in front of a stand-in Triton "
        "that answers at once; each sample counted for the layer of its innermost frame. "
        "The load generator runs in this process.",
        table,
        missed=None,
        write=not args.no_write,
    )


if __name__ == "__main__":
    asyncio.run(main())
