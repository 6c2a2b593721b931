"""The gateway's resident memory, sampled from /proc, and the growth measurement.

Growth is measured as Triton's L0_memory_growth test does it: ignore the first half of the
run (start-up, caches, pools filling), take the memory at the middle as the baseline and
report how much it grew by the end. A leak grows linearly with the work done, so it shows as
growth over the second half; warm-up does not. Medians over a few samples at the middle and
at the end keep one sample's noise out of the figure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

MB = 1024 * 1024


def rss_bytes(pid: int) -> int:
    """Resident set size of one process (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0
    return 0


def children(pid: int) -> list[int]:
    """Direct child processes of `pid`."""
    found: list[int] = []
    with contextlib.suppress(FileNotFoundError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):
                found += [int(c) for c in (task / "children").read_text().split()]
    return found


def command_line(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def triton_pid(gateway_pid: int) -> int | None:
    """The local tritonserver the gateway started, if it has one."""
    for child in children(gateway_pid):
        cmd = command_line(child)
        if cmd and os.path.basename(cmd[0]) == "tritonserver":
            return child
    return None


def triton_grpc_url(gateway_pid: int) -> str:
    """The gRPC address of the gateway's local Triton, from that process's command line."""
    pid = triton_pid(gateway_pid)
    if pid is None:
        raise RuntimeError(f"gateway pid {gateway_pid} has no tritonserver child")
    for arg in command_line(pid):
        if arg.startswith("--grpc-port="):
            return "127.0.0.1:" + arg.split("=", 1)[1]
    raise RuntimeError(f"tritonserver pid {pid} has no --grpc-port argument")


def decode_worker_pids(gateway_pid: int) -> list[int]:
    """The gateway's children other than Triton: its decode workers."""
    triton = triton_pid(gateway_pid)
    return [c for c in children(gateway_pid) if c != triton]


@dataclass(frozen=True, slots=True)
class Sample:
    t: float  # seconds since sampling began
    progress: int  # work done by then (requests completed), when the sampler is told it
    gateway: int  # bytes resident in the gateway process
    workers: int  # bytes resident in its decode workers, together


@dataclass(slots=True)
class RssSampler:
    """Samples the gateway's RSS every `interval_s` while entered (``async with``)."""

    pid: int
    interval_s: float = 0.5
    progress: Callable[[], int] = lambda: 0
    samples: list[Sample] = field(default_factory=list)
    _started: float = 0.0
    _task: asyncio.Task[None] | None = None

    def sample_now(self) -> Sample:
        workers = sum(rss_bytes(w) for w in decode_worker_pids(self.pid))
        s = Sample(time.monotonic() - self._started, self.progress(), rss_bytes(self.pid), workers)
        self.samples.append(s)
        return s

    async def _run(self) -> None:
        while True:
            self.sample_now()
            await asyncio.sleep(self.interval_s)  # a sampler: RSS read at a fixed interval

    async def __aenter__(self) -> RssSampler:
        self._started = time.monotonic()
        self._task = asyncio.create_task(self._run())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.sample_now()

    def gateway_series(self, by: str = "time") -> list[tuple[float, int]]:
        """(time or work done, gateway RSS) pairs: a leak per request shows best against
        the requests done, which does not depend on how fast a loaded machine ran them."""
        if by == "time":
            return [(s.t, s.gateway) for s in self.samples]
        return [(float(s.progress), s.gateway) for s in self.samples]


@dataclass(frozen=True, slots=True)
class Growth:
    """RSS over a run, and its growth over the second half (the L0_memory_growth figure)."""

    start_bytes: int
    middle_bytes: int
    end_bytes: int
    peak_bytes: int
    growth_bytes: int  # end minus middle
    samples: int

    def leaks(self, threshold_bytes: int) -> bool:
        return self.growth_bytes > threshold_bytes

    def as_mb(self) -> dict[str, float]:
        return {
            "start_mb": round(self.start_bytes / MB, 1),
            "middle_mb": round(self.middle_bytes / MB, 1),
            "end_mb": round(self.end_bytes / MB, 1),
            "peak_mb": round(self.peak_bytes / MB, 1),
            "second_half_growth_mb": round(self.growth_bytes / MB, 1),
        }


def second_half_growth(series: Sequence[tuple[float, int]], window: float = 0.05) -> Growth:
    """Growth from the middle of the run to its end, each the median of the samples within
    `window` (a fraction of the run) of that point. The first element of each pair is the
    run's clock: seconds, or requests done."""
    if len(series) < 4:
        raise ValueError(f"need at least 4 RSS samples to measure growth, got {len(series)}")
    t0, t1 = series[0][0], series[-1][0]
    span = max(t1 - t0, 1e-9)
    middle_t = t0 + span / 2

    def around(centre: float, lo: float, hi: float) -> int:
        near = [v for t, v in series if lo <= t <= hi]
        if not near:  # sparse sampling: the nearest sample
            near = [min(series, key=lambda s: abs(s[0] - centre))[1]]
        return int(statistics.median(near))

    middle = around(middle_t, middle_t - window * span, middle_t + window * span)
    end = around(t1, t1 - 2 * window * span, t1)
    start = around(t0, t0, t0 + 2 * window * span)
    return Growth(
        start_bytes=start,
        middle_bytes=middle,
        end_bytes=end,
        peak_bytes=max(v for _, v in series),
        growth_bytes=end - middle,
        samples=len(series),
    )
