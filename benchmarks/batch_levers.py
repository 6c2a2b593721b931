"""Triton's batch through the gateway against direct, with the two batching levers.

Issue 15 found Triton's average batch on ``speech-commands`` lower through the gateway than
when the same closed-loop load goes to Triton directly. Two levers could close the gap:

- Triton's ``max_queue_delay_microseconds`` (how long its dynamic batcher waits for more
  requests; the shipped config says 1000);
- the gateway holding a batch while every Triton already runs one of that model
  (``--batch-busy-hold-ms``), sending it when one returns.

For each queue delay the script starts ``--tritons`` local Tritons on a copy of the
``speech-commands`` model with that delay, and for each hold a gateway pointed at all of
them; then, per concurrency, phases direct / gateway / direct as in ``unary_load.py``
(direct callers take the Tritons in turn). Batch = inferences / executions summed over
every Triton.

    .venv/bin/python benchmarks/batch_levers.py --tritons 1 2 --queue-delay-us 1000 4000 \\
        --busy-hold-ms 0 20 --concurrency 16 64 --seconds 4
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import re
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import tritonclient.grpc.aio as triton_aio
from tritonclient.grpc import InferInput, InferRequestedOutput

import tritone

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from _load_common import publish_section, start_gateway, tone_wav  # type: ignore[import-not-found]  # noqa: E402
from unary_load import RATE, Phase, phase, wav_windows  # type: ignore[import-not-found]  # noqa: E402

from tritone_server.triton.local import LocalTriton  # noqa: E402

MODEL = "speech-commands"


def repository_with_delay(target: Path, delay_us: int) -> Path:
    """A model repository holding only MODEL, its queue delay set to `delay_us`."""
    shutil.copytree(ROOT / "model_repository" / MODEL, target / MODEL)
    config = target / MODEL / "config.pbtxt"
    text, n = re.subn(
        r"max_queue_delay_microseconds: \d+",
        f"max_queue_delay_microseconds: {delay_us}",
        config.read_text(),
    )
    if n != 1:
        raise SystemExit(f"{config} has no max_queue_delay_microseconds to set")
    config.write_text(text)
    return target


@contextlib.asynccontextmanager
async def tritons(repository: Path, count: int) -> AsyncIterator[list[tuple[str, int]]]:
    """`count` local Tritons on one repository; yields (grpc url, pid) of each."""
    async with contextlib.AsyncExitStack() as stack:
        found = []
        for _ in range(count):
            triton = LocalTriton(repository, startup_timeout_s=240)
            endpoints = await stack.enter_async_context(triton)
            assert triton.pid is not None
            found.append((endpoints.grpc_url, triton.pid))
        yield found


async def levers(
    args: argparse.Namespace, count: int, delay_us: int, work: Path
) -> list[tuple[int, int, float, Phase, Phase, Phase]]:
    wav = tone_wav(1.0, RATE)
    windows: npt.NDArray[np.float32] = wav_windows(wav, 16000, 4000)
    repository = repository_with_delay(work / f"repo-{count}-{delay_us}", delay_us)
    rows = []
    async with tritons(repository, count) as running:
        urls = [url for url, _ in running]
        pids = [pid for _, pid in running]
        direct_clients = [triton_aio.InferenceServerClient(u) for u in urls]
        stats_clients = [triton_aio.InferenceServerClient(u) for u in urls]
        turn = itertools.cycle(direct_clients)
        requested = [InferRequestedOutput("logits")]

        async def direct() -> object:
            tensor = InferInput("waveform", list(windows.shape), "FP32")
            tensor.set_data_from_numpy(windows)
            result = await next(turn).infer(MODEL, [tensor], outputs=requested)
            return result.as_numpy("logits")

        for hold in args.busy_hold_ms:
            extra = ["--batch-delay-ms", str(args.batch_delay_ms)]
            extra += ["--batch-busy-hold-ms", str(hold)]
            for url in urls[1:]:
                extra += ["--triton-url", url]
            async with (
                start_gateway(urls[0], extra) as (target, gateway_pid),
                tritone.AsyncClient(target) as sdk,
            ):

                async def gateway() -> object:
                    return await sdk.classify(wav, model=MODEL, top_k=3)

                for c in args.concurrency:
                    done = []
                    for kind, call in (
                        ("direct", direct),
                        ("gateway", gateway),
                        ("direct", direct),
                    ):
                        p = await phase(
                            kind, MODEL, c, args.seconds, call, stats_clients, gateway_pid, pids
                        )
                        done.append(p)
                        print(
                            f"tritons={count} delay={delay_us}us hold={hold}ms c={c} {kind:8s} "
                            f"{p.rps:7.1f} req/s p50 {p.p50_ms:7.2f} ms p99 {p.p99_ms:7.2f} ms "
                            f"batch {p.avg_batch:.2f} rows/request {p.rows_per_request:.2f}",
                            flush=True,
                        )
                    rows.append((delay_us, c, hold, done[0], done[1], done[2]))
        for client in [*direct_clients, *stats_clients]:
            await client.close()
    return rows


def table(
    results: list[tuple[int, list[tuple[int, int, float, Phase, Phase, Phase]]]],
) -> list[str]:
    lines = [
        "| Tritons | queue delay µs | busy hold ms | conc. | direct req/s | gateway req/s "
        "| ratio | direct p50 ms | gateway p50 ms | gateway p99 ms | Triton avg batch "
        "(direct / gw) | rows per request via gw |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for count, rows in results:
        for delay_us, c, hold, d1, g, d2 in rows:
            base = (d1.rps + d2.rps) / 2
            lines.append(
                f"| {count} | {delay_us} | {hold:g} | {c} | {base:.0f} | {g.rps:.0f} "
                f"| {g.rps / base:.2f} | {(d1.p50_ms + d2.p50_ms) / 2:.1f} | {g.p50_ms:.1f} "
                f"| {g.p99_ms:.1f} | {(d1.avg_batch + d2.avg_batch) / 2:.2f} / "
                f"{g.avg_batch:.2f} | {g.rows_per_request:.2f} |"
            )
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tritons", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--queue-delay-us", type=int, nargs="+", default=[1000, 4000])
    parser.add_argument("--busy-hold-ms", type=float, nargs="+", default=[0.0, 20.0])
    parser.add_argument("--batch-delay-ms", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="batch-levers-") as work:
        for count in args.tritons:
            for delay_us in args.queue_delay_us:
                results.append((count, await levers(args, count, delay_us, Path(work))))
    publish_section(
        "batch_levers",
        f"{MODEL}, 1 s 16 kHz WAV (one window per request); phases direct, gateway, direct "
        f"of {args.seconds:g} s each, direct callers rotating over the Tritons; ratio = gateway "
        "/ mean of the two direct runs; batch = inferences / executions over all Tritons. "
        "Every Triton and the gateway share the machine's cores.",
        table(results),
        missed=None,
        write=not args.no_write,
    )


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    asyncio.run(main())
