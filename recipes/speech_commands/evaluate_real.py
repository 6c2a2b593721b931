"""False alarms on real speech and recall on unseen voices, streamed as a caller would.

Every clip is sent with the SDK's ``stream_classify`` in 100 ms chunks of s16le (not paced
to real time), watching the ten command labels, through a real gateway and Triton (started
here unless ``--target`` names one), in two channel conditions:
- ``wideband``: the recording at 16 kHz;
- ``telephone``: resampled to 8 kHz (band-limited under 4 kHz), mu-law coded and decoded,
  and SENT AT 8 kHz: the gateway resamples it to the model's 16 kHz.

Clips (real_speech.py and recall_set.py fix the splits by speaker / voice):
- ``negative``: real lines without a command word (fillets-ng Czech and Dutch actors,
  pocketsphinx English). Every detection in them is a false alarm.
- ``isolated`` / ``phrase``: synthetic voices never trained on saying one command word,
  alone or inside a phrase. A hit is a detection of that word; detections of other words
  count as confusions.
- ``real-command``: real lines whose transcript holds a command word (pocketsphinx
  "go forward ten meters"), reported one by one.

``--offline`` runs the same windows through the TorchScript file in this process instead
(tritone_server.audio.resample is what the gateway's stream resampler outputs, sample for
sample); it is for choosing thresholds on the validation split, never for the final figures.

Detections are at the model's own operating point (its ``detection_thresholds``) unless
``--threshold`` gives one threshold for every command label.

Usage:
  python -m recipes.speech_commands.evaluate_real --split evaluation \
      --out recipes/speech_commands/results/real_speech_evaluation.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recipes.speech_commands import real_speech, recall_set
from recipes.speech_commands.detection import (
    FloatArray,
    OperatingPoint,
    binomial_interval,
    detections,
    poisson_interval,
    stream_windows,
)
from recipes.speech_commands.synthesize import COMMANDS, LABELS, SAMPLE_RATE

ROOT = Path(__file__).resolve().parents[2]
MODEL = "speech-commands"
CHUNK_MS = 100
CONDITIONS = ("wideband", "telephone")
Found = list[tuple[str, float, float, float]]  # label, start_s, end_s, peak


@dataclass(frozen=True, slots=True)
class Clip:
    key: str
    source: str
    speaker: str
    kind: str  # negative | isolated | phrase | real-command
    words: tuple[str, ...]
    audio: FloatArray = field(repr=False)  # 16 kHz

    @property
    def seconds(self) -> float:
        return self.audio.shape[0] / SAMPLE_RATE


def build_clips(split: str, per_speaker: int, per_word: int) -> list[Clip]:
    lines = [x for x in real_speech.all_lines() if x.split == split]
    clips: list[Clip] = []
    for line in real_speech.sample(lines, per_speaker):
        kind = "real-command" if line.commands else "negative"
        if kind == "real-command" and line.source != "pocketsphinx":
            continue  # Czech "no" is not the English word; such lines are left out
        audio = real_speech.load(line)
        if audio.size < SAMPLE_RATE // 10:
            continue  # a few files hold (next to) nothing
        clips.append(Clip(line.key, line.source, line.speaker, kind, line.commands, audio))
    if per_word > 0:
        for i, u in enumerate(recall_set.utterances(split, per_word)):
            speaker = f"{u.voice.engine}:{u.voice.name}"
            key = f"synthetic-p{per_word}/{u.kind}/{i}"  # the set depends on per_word
            clips.append(Clip(key, "synthetic", speaker, u.kind, (u.word,), u.audio))
    return clips


def channel(audio: FloatArray, condition: str) -> tuple[FloatArray, int]:
    """The audio as the caller sends it, and its rate."""
    if condition == "wideband":
        return audio, SAMPLE_RATE
    if condition == "telephone":
        return real_speech.telephone(audio), 8_000
    raise ValueError(condition)


def s16_chunks(audio: FloatArray, rate: int) -> list[bytes]:
    pcm = real_speech.to_s16(audio)
    step = 2 * rate * CHUNK_MS // 1000
    return [pcm[i : i + step] for i in range(0, len(pcm), step)]


# ---------------------------------------------------------------- through the gateway


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def gateway(target: str | None) -> AsyncIterator[str]:
    """An address to talk to: ``target``, or a gateway (and Triton) started for this run."""
    if target:
        yield target
        return
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "tritone_server", "--port", str(port)),
        *("--http-port", "0", "--log-level", "WARNING"),
        # this checkout's models: the installed package's default is ITS repository's
        *("--model-repository", str(ROOT / "model_repository")),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=asyncio.subprocess.DEVNULL,
    )
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        async with grpc.aio.insecure_channel(address) as channel_:
            stub = health_pb2_grpc.HealthStub(channel_)
            while True:
                if process.returncode is not None or time.monotonic() > deadline:
                    raise SystemExit("the gateway did not become ready")
                with contextlib.suppress(grpc.aio.AioRpcError):
                    reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        break
                await asyncio.sleep(1.0)
        yield address
    finally:
        if process.returncode is None:
            process.terminate()
            await asyncio.wait_for(process.wait(), 60)


async def run_gateway(
    clips: Sequence[Clip], conditions: Sequence[str], target: str | None, threshold: float | None
) -> dict[str, list[Found]]:
    import tritone

    found: dict[str, list[Found]] = {c: [[] for _ in clips] for c in conditions}
    limit = asyncio.Semaphore(4)
    async with gateway(target) as address, tritone.AsyncClient(address) as client:

        async def one(condition: str, i: int) -> None:
            audio, rate = channel(clips[i].audio, condition)
            async with limit:
                stream = client.stream_classify(
                    s16_chunks(audio, rate),
                    sample_rate=rate,
                    model=MODEL,
                    detection_threshold="model" if threshold is None else threshold,
                    detection_labels=COMMANDS,
                    suppress_windows=True,
                )
                async for event in stream:
                    if isinstance(event, tritone.Detection):
                        found[condition][i].append(
                            (event.label, event.start_s, event.end_s, event.peak_score)
                        )

        began = time.monotonic()
        for condition in conditions:
            await asyncio.gather(*(one(condition, i) for i in range(len(clips))))
            print(f"{condition}: {len(clips)} streams in {time.monotonic() - began:.0f} s")
    return found


# ---------------------------------------------------------------- offline (calibration)


def window_scores(
    clips: Sequence[Clip],
    condition: str,
    model_path: Path,
    cache: Path | None,
    head_state: Path | None = None,
) -> list[FloatArray]:
    """Softmax scores [windows, 12] per clip, as the gateway computes them; the backbone
    embeddings are cached (they do not depend on the head). ``head_state``: score with a
    head trained by retrain.py (a train.Head state dict) instead of the model's own head."""
    import torch

    scripted = torch.jit.load(str(model_path), map_location="cpu")  # type: ignore[no-untyped-call]
    scripted.eval()
    head: Any = scripted.head
    if head_state is not None:
        from recipes.speech_commands.train import Head

        head = Head()
        head.load_state_dict(torch.load(head_state, weights_only=True))
        head.eval()
    embeddings = clip_embeddings(clips, condition, scripted.backbone, cache)
    out: list[FloatArray] = []
    with torch.no_grad():
        for emb in embeddings:
            logits = head(torch.from_numpy(emb.astype(np.float32)))
            out.append(torch.softmax(logits, dim=1).numpy())
    return out


def clip_embeddings(
    clips: Sequence[Clip], condition: str, backbone: Any, cache: Path | None
) -> list[FloatArray]:
    """Backbone embeddings [windows, 6, 96] of each clip's stream windows (float16 on disk)."""
    import torch

    from tritone_server.audio.dsp import resample

    stored: dict[str, FloatArray] = {}
    path = cache / f"embeddings_{condition}.npz" if cache else None
    if path is not None and path.exists():
        with np.load(path) as f:
            stored = {k: f[k] for k in f.files}
    missing = [c for c in clips if c.key not in stored]
    with torch.no_grad():
        for n, clip in enumerate(missing):
            audio, rate = channel(clip.audio, condition)
            x = resample(audio, rate, SAMPLE_RATE) if rate != SAMPLE_RATE else audio
            windows = stream_windows(x)
            parts = [
                backbone(torch.from_numpy(windows[k : k + 32])) for k in range(0, len(windows), 32)
            ]
            emb = torch.cat(parts).numpy() if parts else np.zeros((0, 6, 96), np.float32)
            stored[clip.key] = emb.astype(np.float16)
            if n % 50 == 49:
                print(f"{condition}: embedded {n + 1} of {len(missing)} clips", flush=True)
                if path is not None:  # a long run interrupted keeps what it did
                    path.parent.mkdir(parents=True, exist_ok=True)
                    np.savez(path, **stored)
    if path is not None and missing:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **stored)
    return [stored[c.key].astype(np.float32) for c in clips]


def offline_found(
    scores: Sequence[FloatArray], point: OperatingPoint, hop_s: float = 0.25
) -> list[Found]:
    out: list[Found] = []
    for s in scores:
        out.append(
            [
                (label, a * hop_s, b * hop_s + 1.0, p)
                for label, a, b, p in detections(s, LABELS, point)
            ]
        )
    return out


def model_operating_point(config: Path) -> OperatingPoint:
    """The detection_thresholds / detection_min_windows parameters of a config.pbtxt."""
    text = config.read_text()
    thresholds: dict[str, float] = {}
    min_windows = 1
    for line in text.splitlines():
        if '"detection_thresholds"' in line:
            raw = line.split("string_value:", 1)[1].strip().rstrip("} ").strip()
            thresholds = json.loads(json.loads(raw))
        if '"detection_min_windows"' in line:
            raw = line.split("string_value:", 1)[1].strip().rstrip("} ").strip()
            min_windows = int(json.loads(raw))
    if not thresholds:
        raise SystemExit(f"{config} has no detection_thresholds; give --threshold")
    return OperatingPoint(thresholds, min_windows)


# ---------------------------------------------------------------- figures


def summarise(clips: Sequence[Clip], found: dict[str, list[Found]]) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for condition, per_clip in found.items():
        negatives: dict[str, Any] = {}
        groups: dict[str, list[int]] = {"all": []}
        for i, c in enumerate(clips):
            if c.kind == "negative":
                groups["all"].append(i)
                groups.setdefault(c.source, []).append(i)
                groups.setdefault(c.speaker, []).append(i)
        for name, idx in groups.items():
            hours = sum(clips[i].seconds for i in idx) / 3600
            labels = Counter(d[0] for i in idx for d in per_clip[i])
            count = sum(labels.values())
            low, high = poisson_interval(count, hours) if hours else (0.0, 0.0)
            negatives[name] = {
                "clips": len(idx),
                "speakers": len({clips[i].speaker for i in idx}),
                "hours": round(hours, 4),
                "false_alarms": count,
                "per_hour": round(count / hours, 2) if hours else None,
                "per_hour_95ci": [round(low, 2), round(high, 2)],
                "clips_with_a_false_alarm": sum(1 for i in idx if per_clip[i]),
                "per_label": dict(sorted(labels.items())),
            }
        recall: dict[str, Any] = {}
        for kind in ("isolated", "phrase"):
            idx = [i for i, c in enumerate(clips) if c.kind == kind]
            if not idx:
                continue
            hits = [any(d[0] == clips[i].words[0] for d in per_clip[i]) for i in idx]
            confusions = Counter(
                f"{clips[i].words[0]}->{d[0]}"
                for i in idx
                for d in per_clip[i]
                if d[0] != clips[i].words[0]
            )
            per_label: dict[str, Any] = {}
            for word in COMMANDS:
                mine = [h for h, i in zip(hits, idx, strict=True) if clips[i].words[0] == word]
                per_label[word] = f"{sum(mine)}/{len(mine)}"
            k, n = sum(hits), len(hits)
            low, high = binomial_interval(k, n)
            recall[kind] = {
                "clips": n,
                "voices": len({clips[i].speaker for i in idx}),
                "hits": k,
                "recall": round(k / n, 4),
                "recall_95ci": [round(low, 4), round(high, 4)],
                "per_label": per_label,
                "other_command_detections": sum(confusions.values()),
                "confusions": dict(confusions.most_common(12)),
            }
        real = {
            clips[i].key: {"words": list(clips[i].words), "detected": [d[0] for d in per_clip[i]]}
            for i, c in enumerate(clips)
            if c.kind == "real-command"
        }
        report[condition] = {"negatives": negatives, "recall": recall, "real_commands": real}
    return report


def markdown(report: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [f"# speech-commands on real speech: {meta['split']} split", ""]
    lines.append(f"Command: `{meta['command']}`  ")
    lines.append(f"Operating point: {meta['operating_point']}; mode: {meta['mode']}")
    lines.append("")
    lines.append(
        "| condition | set | clips | speakers | hours | false alarms | per hour (95 % CI) |"
    )
    lines.append("| --- | --- | ---: | ---: | ---: | ---: | --- |")
    for condition, r in report.items():
        for name, n in r["negatives"].items():
            ci = n["per_hour_95ci"]
            lines.append(
                f"| {condition} | {name} | {n['clips']} | {n['speakers']} | {n['hours']:.3f} | "
                f"{n['false_alarms']} | {n['per_hour']} ({ci[0]}-{ci[1]}) |"
            )
    lines.append("")
    lines.append(
        "| condition | words | clips | voices | recall (95 % CI) | other-word detections |"
    )
    lines.append("| --- | --- | ---: | ---: | --- | ---: |")
    for condition, r in report.items():
        for kind, x in r["recall"].items():
            ci = x["recall_95ci"]
            lines.append(
                f"| {condition} | {kind} | {x['clips']} | {x['voices']} | "
                f"{x['recall'] * 100:.1f} % ({ci[0] * 100:.1f}-{ci[1] * 100:.1f}) | "
                f"{x['other_command_detections']} |"
            )
    lines.append("")
    for condition, r in report.items():
        for name, n in r["negatives"].items():
            if name == "all":
                lines.append(f"False alarms per label, {condition}: {n['per_label']}  ")
        for kind, x in r["recall"].items():
            lines.append(f"Recall per label, {condition}, {kind}: {x['per_label']}  ")
        for key, x in r["real_commands"].items():
            said, heard = x["words"], x["detected"]
            lines.append(f"Real command line {key}, {condition}: said {said}, detected {heard}  ")
    return "\n".join(lines) + "\n"


def main() -> None:
    import torch

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--split", choices=real_speech.SPLITS[1:], default="evaluation")
    parser.add_argument("--per-speaker", type=int, default=150, help="real lines per speaker")
    parser.add_argument("--per-word", type=int, default=8, help="synthetic clips per word and kind")
    parser.add_argument("--conditions", nargs="+", choices=CONDITIONS, default=list(CONDITIONS))
    parser.add_argument("--threshold", type=float, help="one threshold for every command label")
    parser.add_argument("--target", help="an existing gateway (default: start one)")
    parser.add_argument("--offline", action="store_true", help="no gateway: for calibration")
    parser.add_argument(
        "--model-dir", type=Path, default=ROOT / "model_repository" / MODEL, help="for --offline"
    )
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "speech_commands" / "real")
    parser.add_argument("--out", type=Path, required=True, help="JSON file; a .md goes next to it")
    args = parser.parse_args()
    began = time.monotonic()
    clips = build_clips(args.split, args.per_speaker, args.per_word)
    print(f"{len(clips)} clips, {sum(c.seconds for c in clips) / 60:.1f} min", flush=True)
    if args.offline:
        point = (
            OperatingPoint({w: args.threshold for w in COMMANDS})
            if args.threshold is not None
            else model_operating_point(args.model_dir / "config.pbtxt")
        )
        found = {
            c: offline_found(
                window_scores(clips, c, args.model_dir / "1" / "model.pt", args.cache / args.split),
                point,
            )
            for c in args.conditions
        }
        described = f"thresholds {dict(point.thresholds)}, min_windows {point.min_windows}"
    else:
        found = asyncio.run(run_gateway(clips, args.conditions, args.target, args.threshold))
        described = (
            f"one threshold {args.threshold} for the command labels"
            if args.threshold is not None
            else "the model's detection_thresholds (config.pbtxt)"
        )
    report = summarise(clips, found)
    meta = {
        "split": args.split,
        "mode": "offline" if args.offline else "gateway stream_classify, 100 ms chunks",
        "operating_point": described,
        "command": "python -m recipes.speech_commands.evaluate_real " + " ".join(sys.argv[1:]),
        "seconds": round(time.monotonic() - began, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "report": report}, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(report, meta))
    print(markdown(report, meta))


if __name__ == "__main__":
    main()
