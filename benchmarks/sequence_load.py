"""A long file on a stateful model: one ``classify()`` of 10 minutes of 16 kHz speech on
``voice-activity`` through a real gateway and a real local Triton.

The audio is a real recording from Debian's pocketsphinx-testdata, repeated to the length
asked. Reports the wall time, the number of Triton executions it took (from Triton's
statistics), and the CPU of the gateway and Triton process trees (from /proc).

    .venv/bin/python benchmarks/sequence_load.py --minutes 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import wave
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
    wav_bytes,
)

from tritone_server.triton.local import LocalTriton

RATE = 16_000
RECORDING = Path(
    "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav"
)
TARGET_S = 10.0


def long_wav(minutes: float) -> bytes:
    if not RECORDING.is_file():
        raise SystemExit(f"{RECORDING} is missing: apt-get install pocketsphinx-testdata")
    with wave.open(str(RECORDING), "rb") as f:
        if (f.getframerate(), f.getnchannels(), f.getsampwidth()) != (RATE, 1, 2):
            raise SystemExit(f"{RECORDING} is not 16 kHz mono 16-bit")
        speech = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")
    total = int(minutes * 60 * RATE)
    wav: bytes = wav_bytes(np.resize(speech, total), RATE)
    return wav


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--model", default="voice-activity")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    wav = long_wav(args.minutes)
    triton = LocalTriton(ROOT / "model_repository", startup_timeout_s=240)
    async with triton as endpoints:
        assert triton.pid is not None
        async with start_gateway(endpoints.grpc_url) as (target, pid):
            stats = triton_aio.InferenceServerClient(endpoints.grpc_url)
            async with tritone.AsyncClient(target, timeout=600) as client:
                await client.classify(long_wav(0.1), model=args.model)  # warm up
                entry0 = (await stats.get_inference_statistics(args.model, as_json=True))[
                    "model_stats"
                ][0]
                gw0, tr0, t0 = cpu_tree_seconds(pid), cpu_tree_seconds(triton.pid), time.time()
                result = await client.classify(wav, model=args.model, segments=True)
                wall = time.time() - t0
                gw1, tr1 = cpu_tree_seconds(pid), cpu_tree_seconds(triton.pid)
                entry1 = (await stats.get_inference_statistics(args.model, as_json=True))[
                    "model_stats"
                ][0]
            await stats.close()
    executions = int(entry1["execution_count"]) - int(entry0["execution_count"])
    requests = int(entry1["inference_count"]) - int(entry0["inference_count"])
    windows = len(result.segments)
    publish_section(
        "sequence_load",
        f"one `classify(segments=True)` of a {args.minutes:g}-minute 16 kHz WAV (a "
        f"pocketsphinx-testdata recording repeated) on `{args.model}`; the machine was shared "
        "with other work.",
        [
            "| model | audio s | windows | wall s | Triton requests | Triton executions "
            "| gateway CPU s | Triton CPU s |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            f"| {args.model} | {result.duration_s:.0f} | {windows} | {wall:.2f} | {requests} "
            f"| {executions} | {gw1 - gw0:.2f} | {tr1 - tr0:.2f} |",
        ],
        missed=[f"{args.minutes:g} min took {wall:.1f} s >= {TARGET_S:g} s"]
        if wall >= TARGET_S
        else [],
        write=not args.no_write,
    )


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    asyncio.run(main())
