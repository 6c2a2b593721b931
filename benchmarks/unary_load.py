"""Unary load: direct Triton (tritonclient.grpc.aio) against the gateway (SDK ``classify()``).

Starts one local Triton (``tritone_server.triton.local.LocalTriton``) and a gateway process
pointed at it with ``--triton-url``, so both paths hit the very same Triton. For each model
and concurrency it runs three phases back to back: direct, gateway, direct. The mean of the
two direct phases is the baseline (the machine is shared: interleaving cancels some drift).

- direct: C concurrent loops of ``InferenceServerClient.infer`` with the windows the gateway
  would send for the clip (computed once beforehand, as a caller holding tensors would);
- gateway: C concurrent loops of ``AsyncClient.classify(wav_bytes, model=...)`` of the same
  1 s 16 kHz 16-bit WAV (the gateway decodes, windows, calls Triton, ranks).

Per phase: requests/s, p50/p99 latency, CPU seconds per request of the caller (this
process), of the gateway (its process tree, decode workers included) and of Triton (its
process tree, python-backend stubs included), all read from /proc, so the figures hold
when other work shares the machine. Triton's average batch size for the phase comes from
its statistics API (inference_count / execution_count deltas).

    .venv/bin/python benchmarks/unary_load.py --models tones speech-commands \
        --concurrency 1 16 64 --seconds 4
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import resource
import statistics
import sys
import time
import wave
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import tritonclient.grpc.aio as triton_aio
from tritonclient.grpc import InferInput, InferRequestedOutput

import tritone

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from _load_common import (  # type: ignore[import-not-found]  # noqa: E402
    cpu_tree_seconds,
    publish_section,
    start_gateway,
    tone_wav,
)

from tritone_server.audio.dsp import frame_windows  # noqa: E402
from tritone_server.triton.local import LocalTriton  # noqa: E402

RATE = 16_000
# Model -> (window, hop, output): read from the committed configs by the catalogue at run
# time in the gateway; here the direct caller needs the same framing.
MODEL_SHAPES = {"tones": (8000, 4000, "logits"), "speech-commands": (16000, 4000, "logits")}


@dataclass
class Phase:
    kind: str
    model: str
    concurrency: int
    requests: int
    wall_s: float
    p50_ms: float
    p99_ms: float
    caller_cpu_ms: float
    gateway_cpu_ms: float
    triton_cpu_ms: float
    avg_batch: float
    rows_per_request: float = 1.0
    """Rows per request Triton received: above 1 where the gateway merged callers'."""

    @property
    def rps(self) -> float:
        return self.requests / self.wall_s


def wav_windows(wav: bytes, window: int, hop: int) -> npt.NDArray[np.float32]:
    with wave.open(io.BytesIO(wav), "rb") as f:
        pcm = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")
    windows, _ = frame_windows((pcm / 32768.0).astype(np.float32), window, hop)
    return np.ascontiguousarray(windows)


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def batch_counts(
    clients: Sequence[triton_aio.InferenceServerClient], model: str
) -> tuple[int, int, int]:
    """Inferences (rows), executions (batches) and requests of `model`, summed over every
    Triton."""
    inferences = executions = requests = 0
    for client in clients:
        stats = await client.get_inference_statistics(model, as_json=True)
        entry = stats["model_stats"][0]
        inferences += int(entry.get("inference_count", 0))
        executions += int(entry.get("execution_count", 0))
        requests += int(entry.get("inference_stats", {}).get("success", {}).get("count", 0))
    return inferences, executions, requests


async def drive(
    call: Callable[[], Awaitable[object]], concurrency: int, seconds: float
) -> tuple[list[float], float]:
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds

    async def loop() -> None:
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - t0)

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started


async def phase(
    kind: str,
    model: str,
    concurrency: int,
    seconds: float,
    call: Callable[[], Awaitable[object]],
    stats_clients: Sequence[triton_aio.InferenceServerClient],
    gateway_pid: int,
    triton_pids: Sequence[int],
) -> Phase:
    """One timed phase; batch and Triton CPU are summed over every Triton given."""

    def triton_cpu() -> float:
        return float(sum(cpu_tree_seconds(pid) for pid in triton_pids))

    await drive(call, concurrency, min(0.5, seconds / 4))  # warm up channels and caches
    inf0, exe0, req0 = await batch_counts(stats_clients, model)
    me0, gw0, tr0 = own_cpu(), cpu_tree_seconds(gateway_pid), triton_cpu()
    lat, wall = await drive(call, concurrency, seconds)
    me1, gw1, tr1 = own_cpu(), cpu_tree_seconds(gateway_pid), triton_cpu()
    inf1, exe1, req1 = await batch_counts(stats_clients, model)
    n = len(lat)
    lat.sort()
    return Phase(
        kind=kind,
        model=model,
        concurrency=concurrency,
        requests=n,
        wall_s=wall,
        p50_ms=statistics.median(lat) * 1000,
        p99_ms=lat[min(n - 1, int(0.99 * n))] * 1000,
        caller_cpu_ms=(me1 - me0) / n * 1000,
        gateway_cpu_ms=(gw1 - gw0) / n * 1000,
        triton_cpu_ms=(tr1 - tr0) / n * 1000,
        avg_batch=(inf1 - inf0) / max(1, exe1 - exe0),
        rows_per_request=(inf1 - inf0) / max(1, req1 - req0),
    )


async def run(args: argparse.Namespace) -> list[Phase]:
    wav = tone_wav(1.0, RATE)
    phases: list[Phase] = []
    triton = LocalTriton(ROOT / "model_repository", startup_timeout_s=240)
    async with triton as endpoints:
        assert triton.pid is not None
        extra = ["--batch-delay-ms", str(args.batch_delay_ms)]
        async with start_gateway(endpoints.grpc_url, extra) as (target, gateway_pid):
            direct_client = triton_aio.InferenceServerClient(endpoints.grpc_url)
            stats_client = triton_aio.InferenceServerClient(endpoints.grpc_url)
            async with tritone.AsyncClient(target) as sdk:
                for model in args.models:
                    window, hop, output = MODEL_SHAPES[model]
                    windows = wav_windows(wav, window, hop)
                    requested = [InferRequestedOutput(output)]

                    async def direct(
                        m: str = model,
                        w: npt.NDArray[np.float32] = windows,
                        req: list[InferRequestedOutput] = requested,
                        out: str = output,
                    ) -> object:
                        tensor = InferInput("waveform", list(w.shape), "FP32")
                        tensor.set_data_from_numpy(w)
                        result = await direct_client.infer(m, [tensor], outputs=req)
                        return result.as_numpy(out)

                    async def gateway(m: str = model) -> object:
                        return await sdk.classify(wav, model=m, top_k=3)

                    for c in args.concurrency:
                        for kind, call in (
                            ("direct", direct),
                            ("gateway", gateway),
                            ("direct", direct),
                        ):
                            p = await phase(
                                kind,
                                model,
                                c,
                                args.seconds,
                                call,
                                [stats_client],
                                gateway_pid,
                                [triton.pid],
                            )
                            phases.append(p)
                            print(
                                f"{p.model:16s} c={c:3d} {p.kind:8s} {p.rps:8.1f} req/s "
                                f"p50 {p.p50_ms:7.2f} ms p99 {p.p99_ms:7.2f} ms "
                                f"caller {p.caller_cpu_ms:.3f} gw {p.gateway_cpu_ms:.3f} "
                                f"triton {p.triton_cpu_ms:.3f} ms/req batch {p.avg_batch:.2f}",
                                flush=True,
                            )
            await direct_client.close()
            await stats_client.close()
    return phases


def report(phases: list[Phase], args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """Markdown lines, and the issue-15 targets missed."""
    missed: list[str] = []
    lines = [
        "| model | conc. | direct req/s (1st / 2nd) | gateway req/s | ratio | direct p50 ms "
        "| gateway p50 ms | gateway p99 ms | caller CPU ms/req (direct / SDK) "
        "| gateway CPU ms/req | Triton CPU ms/req (direct / gw) | Triton avg batch (direct / gw) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for i in range(0, len(phases), 3):
        d1, g, d2 = phases[i : i + 3]
        base = (d1.rps + d2.rps) / 2
        ratio = g.rps / base
        direct_p50 = (d1.p50_ms + d2.p50_ms) / 2
        direct_batch = (d1.avg_batch + d2.avg_batch) / 2
        lines.append(
            f"| {g.model} | {g.concurrency} | {d1.rps:.0f} / {d2.rps:.0f} | {g.rps:.0f} "
            f"| {ratio:.2f} | {direct_p50:.2f} | {g.p50_ms:.2f} | {g.p99_ms:.2f} "
            f"| {(d1.caller_cpu_ms + d2.caller_cpu_ms) / 2:.3f} / {g.caller_cpu_ms:.3f} "
            f"| {g.gateway_cpu_ms:.3f} "
            f"| {(d1.triton_cpu_ms + d2.triton_cpu_ms) / 2:.2f} / {g.triton_cpu_ms:.2f} "
            f"| {direct_batch:.2f} / {g.avg_batch:.2f} |"
        )
        where = f"{g.model} c={g.concurrency}"
        if g.gateway_cpu_ms > 0.5:
            missed.append(f"gateway CPU {g.gateway_cpu_ms:.2f} ms/request > 0.5 ({where})")
        if g.concurrency == 1 and g.p50_ms - direct_p50 > 1.0:
            missed.append(
                f"added p50 {g.p50_ms - direct_p50:.2f} ms > 1 ms at concurrency 1 ({where})"
            )
        if g.model == "speech-commands" and g.concurrency >= 16:
            if ratio < 0.9:
                missed.append(f"gateway/direct {ratio:.2f} < 0.9 ({where})")
            if g.avg_batch < direct_batch:
                missed.append(
                    f"Triton avg batch via gateway {g.avg_batch:.2f} < direct "
                    f"{direct_batch:.2f} ({where})"
                )
    return lines, missed


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tones", "speech-commands"])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--batch-delay-ms", type=float, default=2.0)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    phases = await run(args)
    lines, missed = report(phases, args)
    publish_section(
        "unary_load",
        f"1 s 16 kHz s16 WAV; phases direct, gateway, direct of {args.seconds:g} s each; ratio "
        "= gateway / mean of the two direct runs. CPU from /proc (caller = the load generator, "
        "gateway = its process tree, Triton = its process tree), per request. The machine was "
        "shared with other work while this ran.",
        lines,
        missed=missed,
        write=not args.no_write,
    )


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    asyncio.run(main())
