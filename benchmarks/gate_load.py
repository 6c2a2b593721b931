"""speech-commands gated by voice-activity against ungated, on audio that is half pause.

Starts a local Triton and ``python -m tritone_server`` on it. The audio: the five read
sentences of pocketsphinx-testdata's librivox set joined by pauses of low Gaussian room
noise, as long in all as the sentences (so half of it is pause). S streams at once send it as
fast as the gateway takes it, in 100 ms chunks of 16 kHz s16le, once per mode:
- ``ungated``: model speech-commands;
- ``gated``: models [speech-commands], gate voice-activity (default threshold, 200 ms padding,
  or ``--padding-ms``);
It measures, per mode: speech-commands windows sent to Triton (from the summaries), Triton's
compute time per model (its statistics: compute_infer), Triton's and the gateway's CPU (their
process trees, from /proc), and frames sent against frames in the summaries. Appends a table
to benchmarks/results.md with the command that produced it, and the gated/ungated ratios
against the target of issue 24 (at most 55 %).

    .venv/bin/python benchmarks/gate_load.py --streams 4 --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import wave
from pathlib import Path
from typing import Any

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
CHUNK_BYTES = 3200  # 100 ms
MODEL = "speech-commands"
GATE = "voice-activity"
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
SENTENCES = ["0870", "0880", "0890", "0920", "0930"]
TARGET = 0.55


def half_pause_audio(seed: int = 0) -> tuple[bytes, float]:
    """The sentences with pauses before, between and after them as long as all of them
    together; and the share of the audio that is sentences."""
    rng = np.random.default_rng(seed)
    speech = []
    for name in SENTENCES:
        with wave.open(str(LIBRIVOX / f"sense_and_sensibility_01_austen_64kb-{name}.wav")) as f:
            assert (f.getframerate(), f.getnchannels(), f.getsampwidth()) == (RATE, 1, 2)
            speech.append(np.frombuffer(f.readframes(f.getnframes()), dtype="<i2"))
    total = sum(s.shape[0] for s in speech)
    pause = total // (len(speech) + 1)
    parts = []
    for s in [*speech, None]:
        noise = rng.normal(0.0, 0.002 * 32767, pause)
        parts.append(np.clip(np.rint(noise), -32768, 32767).astype("<i2"))
        if s is not None:
            parts.append(s)
    audio = np.concatenate(parts).astype("<i2")
    return audio.tobytes(), total / audio.shape[0]


PADDING_MS = 200
"""The gate's padding (--padding-ms); the gateway's default."""


MODES = ("ungated", "gated")


async def one_stream(client: tritone.AsyncClient, pcm: bytes, mode: str) -> tuple[int, int]:
    """(speech-commands windows sent to Triton, frames in the summary)."""
    chunks = [pcm[i : i + CHUNK_BYTES] for i in range(0, len(pcm), CHUNK_BYTES)]
    by_mode: dict[str, dict[str, Any]] = {
        "ungated": {"model": MODEL},
        "gated": {"models": [MODEL], "gate": GATE, "gate_padding_ms": PADDING_MS},
    }
    options = by_mode[mode]
    summary = None
    async for event in client.stream_classify(
        chunks, sample_rate=RATE, suppress_windows=True, **options
    ):
        if isinstance(event, tritone.StreamSummary):
            summary = event
    assert summary is not None
    windows = summary.windows
    if mode == "gated":
        windows = next(m.windows for m in summary.models if m.model == MODEL)
    return windows, summary.frames_received


async def compute_ns(stats: triton_aio.InferenceServerClient, model: str) -> int:
    reply = await stats.get_inference_statistics(model, as_json=True)
    entry = reply["model_stats"][0]["inference_stats"]
    return int(entry.get("compute_infer", {}).get("ns", 0))


async def run_mode(
    mode: str,
    streams: int,
    pcm: bytes,
    target: str,
    pid: int,
    triton_pid: int,
    stats: triton_aio.InferenceServerClient,
) -> dict[str, Any]:
    async with tritone.AsyncClient(target) as client:
        await one_stream(client, pcm[: CHUNK_BYTES * 20], mode)  # warm the models
        ns0 = {m: await compute_ns(stats, m) for m in (MODEL, GATE)}
        cpu0, triton0, wall0 = cpu_tree_seconds(pid), cpu_tree_seconds(triton_pid), time.time()
        results = await asyncio.gather(*(one_stream(client, pcm, mode) for _ in range(streams)))
        cpu1, triton1, wall1 = cpu_tree_seconds(pid), cpu_tree_seconds(triton_pid), time.time()
        ns1 = {m: await compute_ns(stats, m) for m in (MODEL, GATE)}
    audio_s = streams * len(pcm) / 2 / RATE
    return {
        "mode": mode,
        "streams": streams,
        "audio_s": audio_s,
        "windows": sum(w for w, _ in results),
        "frames_sent": streams * len(pcm) // 2,
        "frames_summarised": sum(f for _, f in results),
        "commands_compute_ms": (ns1[MODEL] - ns0[MODEL]) / 1e6,
        "gate_compute_ms": (ns1[GATE] - ns0[GATE]) / 1e6,
        "triton_cpu_s": triton1 - triton0,
        "gateway_cpu_s": cpu1 - cpu0,
        "wall_s": wall1 - wall0,
    }


async def measure(args: argparse.Namespace, pcm: bytes) -> list[dict[str, Any]]:
    rows = []
    triton = LocalTriton(ROOT / "model_repository", startup_timeout_s=240)
    async with triton as endpoints:
        assert triton.pid is not None
        async with start_gateway(endpoints.grpc_url) as (target, pid):
            stats = triton_aio.InferenceServerClient(endpoints.grpc_url)
            try:
                for _ in range(args.rounds):
                    for mode in MODES:
                        row = await run_mode(
                            mode, args.streams, pcm, target, pid, triton.pid, stats
                        )
                        rows.append(row)
                        print(row, flush=True)
            finally:
                await stats.close()
    return rows


def _sum(rows: list[dict[str, Any]], mode: str, key: str) -> float:
    return float(sum(r[key] for r in rows if r["mode"] == mode))


def _compute(rows: list[dict[str, Any]], mode: str) -> float:
    return _sum(rows, mode, "commands_compute_ms") + _sum(rows, mode, "gate_compute_ms")


def table(rows: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    lines = [
        "| mode | streams | audio s | speech-commands windows to Triton "
        "| frames sent / in summaries | speech-commands compute ms | voice-activity compute ms "
        "| Triton CPU s | gateway CPU s | wall s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['mode']} | {r['streams']:g} | {r['audio_s']:.1f} "
            f"| {r['windows']:.0f} | {r['frames_sent']:.0f} / {r['frames_summarised']:.0f} "
            f"| {r['commands_compute_ms']:.0f} | {r['gate_compute_ms']:.0f} "
            f"| {r['triton_cpu_s']:.2f} | {r['gateway_cpu_s']:.2f} | {r['wall_s']:.2f} |"
        )

    def ratio(mode: str, key: str) -> float:
        return _sum(rows, mode, key) / _sum(rows, "ungated", key)

    ratios = {
        "speech-commands windows": ratio("gated", "windows"),
        "Triton compute (both models)": _compute(rows, "gated") / _compute(rows, "ungated"),
        "speech-commands compute": ratio("gated", "commands_compute_ms"),
        "Triton CPU": ratio("gated", "triton_cpu_s"),
        "gateway CPU": ratio("gated", "gateway_cpu_s"),
    }
    lines += ["", "Gated / ungated, all rounds together:", ""]
    lines += [f"- {name}: {value:.0%}" for name, value in ratios.items()]
    missed = [
        f"{name} {value:.0%} > {TARGET:.0%}"
        for name, value in ratios.items()
        if name in ("Triton compute (both models)", "Triton CPU", "gateway CPU") and value > TARGET
    ]
    missed += [
        "frames sent != frames in summaries"
        for r in rows
        if r["frames_sent"] != r["frames_summarised"]
    ][:1]
    return lines, missed


async def main() -> None:
    global PADDING_MS
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2, help="ungated then gated, repeated")
    parser.add_argument("--padding-ms", type=int, default=PADDING_MS, help="the gate's padding")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    PADDING_MS = args.padding_ms
    pcm, speech_share = half_pause_audio()
    rows = await measure(args, pcm)
    lines, missed = table(rows)
    publish_section(
        "gate_load",
        f"{len(pcm) / 2 / RATE:.1f} s of audio, {speech_share:.0%} of it read sentences "
        "(pocketsphinx-testdata librivox 0870-0930) and the rest pauses of low room noise; "
        f"{args.streams} streams at once send it in 100 ms chunks as fast as the gateway "
        "takes them, windows suppressed; ungated: model speech-commands; gated: models "
        f"[speech-commands], gate voice-activity (threshold 0.5, padding {PADDING_MS} ms). Triton "
        "compute: its statistics' compute_infer per model; CPU: process trees from /proc; "
        "client, gateway and Triton share the machine.",
        lines,
        missed=missed,
        write=not args.no_write,
        heading=f", model `{MODEL}` gated by `{GATE}`",
    )


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    asyncio.run(main())
