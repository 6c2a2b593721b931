"""Recall of the served speech-commands model on neural voices it never trained on.

The command words alone and inside phrases (recall_set.neural_utterances: the neural voices
of one split of neural_voices.SPLITS, each voice saying each word alone and in a phrase),
scored the way evaluate_real.py scores its recall clips, per label, per voice family
(Kokoro af / am / bf / bm, Piper joe) and per voice, with exact (Clopper-Pearson) 95 %
intervals, in both channel conditions (wideband; 8 kHz mu-law sent at 8 kHz), at two
operating points: the model's own (config.pbtxt detection_thresholds and min_windows) and
one threshold 0.5 for every command label. A hit is a detection of the word said; a
detection of another command word is counted apart.

Modes: ``gateway`` streams every clip with the SDK in 100 ms chunks through a real gateway
and Triton (started here, or ``--target``), as evaluate_real.py does; ``offline`` runs the
same stream windows through the TorchScript file in-process. Both may run in one call.

The synthesized clips are cached (.cache/speech_commands/neural_recall_<split>_p<n>.npz) so
the modes and later heads score the same audio.

Usage:
  python -m recipes.speech_commands.neural_recall --split evaluation --modes offline gateway \\
      --out recipes/speech_commands/results/neural_recall_evaluation.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recipes.speech_commands import evaluate_real as er
from recipes.speech_commands import neural_voices, recall_set
from recipes.speech_commands.detection import OperatingPoint, binomial_interval
from recipes.speech_commands.synthesize import COMMANDS

ROOT = er.ROOT
POINTS = ("model", "0.5")


def clips(split: str, per_word: int | None, cache: Path) -> list[er.Clip]:
    """The recall clips of ``split`` (synthesized once, then read from ``cache``)."""
    n = len(neural_voices.SPLITS[split]) if per_word is None else per_word
    path = cache / f"neural_recall_{split}_p{n}.npz"
    if not path.exists():
        began = time.monotonic()
        utterances = recall_set.neural_utterances(split, n)
        print(f"synthesized {len(utterances)} clips in {time.monotonic() - began:.0f} s")
        meta = [
            {
                "word": u.word,
                "text": u.text,
                "kind": u.kind,
                "voice": f"{u.voice.engine}:{u.voice.name}",
            }
            for u in utterances
        ]
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            path,
            meta=np.array(json.dumps(meta)),
            **{f"a{i}": u.audio for i, u in enumerate(utterances)},
        )
    with np.load(path) as f:
        meta = json.loads(str(f["meta"]))
        return [
            er.Clip(
                f"neural-{split}-p{n}/{m['kind']}/{i}",
                "neural",
                m["voice"],
                m["kind"],
                (m["word"],),
                f[f"a{i}"].astype(np.float32),
            )
            for i, m in enumerate(meta)
        ]


def family(speaker: str) -> str:
    return neural_voices.family(
        speaker.split(":", 1)[1] if speaker.startswith("kokoro:") else speaker
    )


def _rate(hits: Sequence[bool]) -> dict[str, Any]:
    k, n = sum(hits), len(hits)
    low, high = binomial_interval(k, n)
    return {
        "hits": k,
        "clips": n,
        "recall": round(k / n, 4) if n else None,
        "recall_95ci": [round(low, 4), round(high, 4)],
    }


def summarise(items: Sequence[er.Clip], found: Sequence[er.Found]) -> dict[str, Any]:
    """Recall per kind: overall, per label, per family, per voice; other-word detections."""
    out: dict[str, Any] = {}
    for kind in ("isolated", "phrase"):
        idx = [i for i, c in enumerate(items) if c.kind == kind]
        hit = {i: any(d[0] == items[i].words[0] for d in found[i]) for i in idx}
        confusions = Counter(
            f"{items[i].words[0]}->{d[0]}"
            for i in idx
            for d in found[i]
            if d[0] != items[i].words[0]
        )
        groups: dict[str, dict[str, list[int]]] = {"label": {}, "family": {}, "voice": {}}
        for i in idx:
            groups["label"].setdefault(items[i].words[0], []).append(i)
            groups["family"].setdefault(family(items[i].speaker), []).append(i)
            groups["voice"].setdefault(items[i].speaker, []).append(i)
        out[kind] = {
            **_rate([hit[i] for i in idx]),
            "voices": len(groups["voice"]),
            "other_command_detections": sum(confusions.values()),
            "confusions": dict(confusions.most_common(12)),
            **{
                f"per_{name}": {
                    key: {
                        **_rate([hit[i] for i in members]),
                        "voices": len({items[i].speaker for i in members}),
                    }
                    for key, members in sorted(group.items(), key=lambda kv: _order(name, kv[0]))
                }
                for name, group in groups.items()
            },
        }
    return out


def _order(group: str, key: str) -> tuple[int, str]:
    return (COMMANDS.index(key), key) if group == "label" else (0, key)


def offline(
    items: Sequence[er.Clip], conditions: Sequence[str], model_dir: Path, cache: Path
) -> dict[str, dict[str, list[er.Found]]]:
    points = {
        "model": er.model_operating_point(model_dir / "config.pbtxt"),
        "0.5": OperatingPoint({w: 0.5 for w in COMMANDS}),
    }
    found: dict[str, dict[str, list[er.Found]]] = {p: {} for p in POINTS}
    for condition in conditions:
        scores = er.window_scores(items, condition, model_dir / "1" / "model.pt", cache)
        for name, point in points.items():
            found[name][condition] = er.offline_found(scores, point)
    return found


async def through_gateway(
    items: Sequence[er.Clip], conditions: Sequence[str], target: str | None
) -> dict[str, dict[str, list[er.Found]]]:
    """Both operating points through one gateway (started here unless ``target``)."""
    async with er.gateway(target) as address:
        return {
            "model": await er.run_gateway(items, conditions, address, None),
            "0.5": await er.run_gateway(items, conditions, address, 0.5),
        }


def markdown(result: dict[str, Any]) -> str:
    meta = result["meta"]
    lines = [f"# speech-commands recall on neural voices: {meta['split']} split", ""]
    lines.append(f"Command: `{meta['command']}`  ")
    lines.append(f"Voices: {', '.join(meta['voices'])}  ")
    lines.append(f"Model operating point: {meta['model_operating_point']}  ")
    lines.append(
        "A hit is a detection of the word said (any window of the clip); exact binomial 95 % "
        "intervals."
    )
    lines.append("")
    lines.append(
        "| mode | point | condition | words | clips | voices | recall (95 % CI) "
        "| other-word detections |"
    )
    lines.append("| --- | --- | --- | --- | ---: | ---: | --- | ---: |")
    for mode, by_point in result["report"].items():
        for point, by_condition in by_point.items():
            for condition, by_kind in by_condition.items():
                for kind, x in by_kind.items():
                    lines.append(
                        f"| {mode} | {point} | {condition} | {kind} | {x['clips']} "
                        f"| {x['voices']} | "
                        f"{_pct(x)} | {x['other_command_detections']} |"
                    )
    for mode, by_point in result["report"].items():
        for point, by_condition in by_point.items():
            for condition, by_kind in by_condition.items():
                lines.append("")
                lines.append(f"## {mode}, point {point}, {condition}")
                lines.append("")
                lines.append("| group | isolated (95 % CI) | phrase (95 % CI) |")
                lines.append("| --- | --- | --- |")
                for group in ("per_label", "per_family", "per_voice"):
                    for key in by_kind["isolated"][group]:
                        a = by_kind["isolated"][group][key]
                        b = by_kind["phrase"][group].get(key)
                        lines.append(f"| {group[4:]} {key} | {_pct(a)} | {_pct(b) if b else '-'} |")
    return "\n".join(lines) + "\n"


def _pct(x: dict[str, Any]) -> str:
    ci = x["recall_95ci"]
    share = f"{x['hits']}/{x['clips']} = {x['recall'] * 100:.1f} %"
    return f"{share} ({ci[0] * 100:.1f}-{ci[1] * 100:.1f})"


def main() -> None:
    import torch

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--split", choices=("validation", "evaluation"), default="evaluation")
    parser.add_argument(
        "--per-word", type=int, help="clips per word and kind (default: one per voice)"
    )
    parser.add_argument(
        "--modes", nargs="+", choices=("offline", "gateway"), default=["offline", "gateway"]
    )
    parser.add_argument(
        "--conditions", nargs="+", choices=er.CONDITIONS, default=list(er.CONDITIONS)
    )
    parser.add_argument("--target", help="an existing gateway (default: start one)")
    parser.add_argument("--model-dir", type=Path, default=ROOT / "model_repository" / er.MODEL)
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "speech_commands")
    parser.add_argument("--out", type=Path, required=True, help="JSON file; a .md goes next to it")
    args = parser.parse_args()
    began = time.monotonic()
    items = clips(args.split, args.per_word, args.cache)
    print(f"{len(items)} clips, {sum(c.seconds for c in items) / 60:.1f} min", flush=True)
    report: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for mode in args.modes:
        start = time.monotonic()
        if mode == "offline":
            found = offline(
                items, args.conditions, args.model_dir, args.cache / "real" / args.split
            )
        else:
            found = asyncio.run(through_gateway(items, args.conditions, args.target))
        seconds[mode] = round(time.monotonic() - start, 1)
        key = mode if mode == "offline" else "gateway (stream_classify, 100 ms chunks)"
        report[key] = {
            point: {c: summarise(items, per_clip) for c, per_clip in found[point].items()}
            for point in POINTS
        }
    point = er.model_operating_point(args.model_dir / "config.pbtxt")
    result = {
        "meta": {
            "split": args.split,
            "voices": list(neural_voices.SPLITS[args.split]),
            "clips": len(items),
            "audio_minutes": round(sum(c.seconds for c in items) / 60, 2),
            "model_operating_point": (
                f"thresholds {dict(point.thresholds)}, min_windows {point.min_windows}"
            ),
            "points": {
                "model": "the model's detection_thresholds",
                "0.5": "0.5 for every command label",
            },
            "command": "python -m recipes.speech_commands.neural_recall " + " ".join(sys.argv[1:]),
            "seconds": {**seconds, "total": round(time.monotonic() - began, 1)},
        },
        "report": report,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
