"""Utterance mode against sliding windows: which way should a caller recognise commands?

Two ways to run ``speech-commands`` on a live stream, each clip fed in 100 ms chunks of
16 kHz s16le (wideband only) to the gateway's own stream classes in this process
(``LiveStream``; ``open_fanout`` with the gate and ``per_segment``, core/fanout.py), with
Triton's part done by the model repository's TorchScript files in this process
(`TorchScriptBackend`), not through a gateway: the gRPC path streamed too slowly on this
shared machine for the whole set (41 clips, two streams each, took 502 s); its stream logic is
the same code:

- ``sliding``: the detector at the model's shipped operating point (its config's
  ``detection_thresholds`` / ``detection_min_windows``, core/operating_point.py): every 1 s
  window every hop; a detection is a span of windows at or above a command's threshold.
- ``utterance``: ``voice-activity`` gates the stream and ``speech-commands`` answers once per
  speech segment (``per_segment``): the labels of the segment's most energetic window
  (core/utterance.py), nothing for a segment longer than 1.5 windows (``too_long``). A
  command is the answer's top label when that label is a command word.
- ``utterance+point``: the same answers, a command kept only when its score also reaches the
  label's threshold of the operating point (else the answer counts as ``unknown``).

These modes hear the same audio: each clip with 1 s of low room noise (Gaussian, RMS 0.002)
before and after it, so the gate sees speech start and stop as a caller's pause would give.
``sliding-alone`` is the sliding detector on the clip alone, as evaluate_real.py streams it
(it reproduces results/real_speech_evaluation.md's wideband figures): with the pauses, as a
live stream has them, the same detector raised almost three times as many false commands.

Clips, only from sets designated for evaluation (never trained on, never used to choose):
- real speech without a command word (evaluate_real.build_clips, evaluation split:
  fillets-ng Czech and Dutch actors, pocketsphinx English): every command is false;
- ``isolated`` / ``phrase``: synthetic evaluation voices (recall_set) saying one command word
  alone or inside a phrase; and the neural evaluation voices (neural_recall.clips: Kokoro and
  Piper joe, never trained on) doing the same. A hit is the word said; other command words
  count as confusions.

False commands per hour are over the negative clips' own duration (the added noise is not
counted), as evaluate_real.py counts them; exact Poisson / Clopper-Pearson 95 % intervals.

Usage:
  python -m recipes.speech_commands.utterances \\
      --out recipes/speech_commands/results/utterances.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recipes.speech_commands import evaluate_real as er
from recipes.speech_commands import neural_recall
from recipes.speech_commands.detection import (
    FloatArray,
    OperatingPoint,
    binomial_interval,
    poisson_interval,
)
from recipes.speech_commands.synthesize import COMMANDS, SAMPLE_RATE

ROOT = er.ROOT
MODEL = er.MODEL
GATE = "voice-activity"
SPLIT = "evaluation"
LEAD_S = 1.0
NOISE_RMS = 0.002
MODES = ("sliding", "utterance", "utterance+point", "sliding-alone")
KINDS = ("isolated", "phrase")
Answer = tuple[str, float]  # the command (or "unknown" / "silence" / "too_long"), its score


def with_pauses(audio: FloatArray, seed: int) -> FloatArray:
    """The clip with LEAD_S of low room noise before and after it."""
    rng = np.random.default_rng(seed)
    lead = round(LEAD_S * SAMPLE_RATE)
    noise = rng.normal(0.0, NOISE_RMS, 2 * lead).astype(np.float32)
    out: FloatArray = np.concatenate([noise[:lead], audio, noise[lead:]]).astype(np.float32)
    return out


class TorchScriptBackend:
    """Triton's part, in this process: the model repository's TorchScript files, inputs and
    outputs in their config's order (as Triton's libtorch backend maps them)."""

    def __init__(self, repository: Path) -> None:
        self.repository = repository
        self._models: dict[str, tuple[Any, list[str], list[str]]] = {}

    def config(self, name: str) -> dict[str, Any]:
        """The config as Triton's get_model_config returns it (JSON form)."""
        from google.protobuf import json_format, text_format
        from tritonclient.grpc import model_config_pb2

        text = (self.repository / name / "config.pbtxt").read_text()
        parsed = text_format.Parse(text, model_config_pb2.ModelConfig())
        out: dict[str, Any] = json_format.MessageToDict(parsed, preserving_proto_field_name=True)
        return out

    def _model(self, name: str) -> tuple[Any, list[str], list[str]]:
        if name not in self._models:
            import torch

            module = torch.jit.load(  # type: ignore[no-untyped-call]
                str(self.repository / name / "1" / "model.pt"), map_location="cpu"
            )
            module.eval()
            config = self.config(name)
            inputs = [t["name"] for t in config["input"]]
            outputs = [t["name"] for t in config["output"]]
            self._models[name] = (module, inputs, outputs)
        return self._models[name]

    async def infer(
        self,
        model: str,
        inputs: Mapping[str, FloatArray],
        outputs: Sequence[str],
        *,
        timeout_s: float | None = None,
    ) -> dict[str, FloatArray]:
        import torch

        module, input_names, output_names = self._model(model)
        with torch.inference_mode():
            result = module(
                *(torch.from_numpy(np.ascontiguousarray(inputs[n])) for n in input_names)
            )
        tensors = result if isinstance(result, tuple) else (result,)
        by_name = {n: t.numpy() for n, t in zip(output_names, tensors, strict=True)}
        return {n: by_name[n] for n in outputs}


async def stream_clips(clips: Sequence[er.Clip]) -> dict[str, list[list[Answer]]]:
    """Per clip: the sliding detector's detections (on the clip with its pauses, and on the
    clip alone as evaluate_real.py streams it), and the utterance answers (top label and its
    score; ``too_long`` for a segment with no answer), from the gateway's own stream classes
    (LiveStream; open_fanout with the gate and per_segment) over TorchScriptBackend."""
    from tritone_server.audio.formats import PcmEncoding, PcmFormat
    from tritone_server.core.fanout import open_fanout
    from tritone_server.core.inference import Inference
    from tritone_server.core.models import spec_from_config
    from tritone_server.core.stream_request import GateRequest, StreamRequest
    from tritone_server.core.streams import (
        DetectionEvent,
        LiveStream,
        StreamOptions,
        UtteranceEvent,
    )

    backend = TorchScriptBackend(ROOT / "model_repository")
    specs = {name: spec_from_config(backend.config(name), "1") for name in (MODEL, GATE)}
    inference = Inference(backend)  # type: ignore[arg-type]
    fmt = PcmFormat(PcmEncoding.S16LE, SAMPLE_RATE, 1)
    sliding_options = StreamOptions(
        top_k=1, detection_labels=COMMANDS, model_thresholds=True, suppress_windows=True
    )
    request = StreamRequest(
        (MODEL,),
        fmt,
        StreamOptions(top_k=1),
        GateRequest(GATE),
        per_segment=(MODEL,),
        several=True,
    )
    found: dict[str, list[list[Answer]]] = {"sliding": [], "sliding-alone": [], "utterance": []}
    utterances = found["utterance"]
    began = time.monotonic()

    async def detections(chunks: list[bytes]) -> list[Answer]:
        stream = LiveStream(specs[MODEL], inference, fmt, sliding_options)
        events = [e for chunk in chunks for e in await stream.feed(chunk)]
        events += await stream.finish()
        return [(e.label, e.peak_score) for e in events if isinstance(e, DetectionEvent)]

    for i, clip in enumerate(clips):
        chunks = er.s16_chunks(with_pauses(clip.audio, i), SAMPLE_RATE)
        found["sliding"].append(await detections(chunks))
        found["sliding-alone"].append(await detections(er.s16_chunks(clip.audio, SAMPLE_RATE)))
        gated = open_fanout(request, specs.__getitem__, lambda _s, o: o, inference)
        events_gated = [e for chunk in chunks for e in await gated.feed(chunk)]
        events_gated += await gated.finish()
        utterances.append(
            [
                ("too_long", 0.0) if e.too_long else e.labels[0]
                for e in events_gated
                if isinstance(e, UtteranceEvent)
            ]
        )
        if i % 50 == 49:
            print(f"{i + 1} of {len(clips)} clips, {time.monotonic() - began:.0f} s", flush=True)
    return found


def commands(answers: Sequence[Answer], mode: str, point: OperatingPoint) -> list[str]:
    """The command words a mode reports in one clip."""
    if mode == "utterance+point":
        return [
            label
            for label, score in answers
            if label in COMMANDS and score >= point.thresholds.get(label, 1.0)
        ]
    return [label for label, _ in answers if label in COMMANDS]


def summarise(
    clips: Sequence[er.Clip],
    found: dict[str, list[list[Answer]]],
    point: OperatingPoint,
) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for mode in MODES:
        per_clip = [commands(a, mode, point) for a in found[mode.removesuffix("+point")]]
        negatives = [i for i, c in enumerate(clips) if c.kind == "negative"]
        hours = sum(clips[i].seconds for i in negatives) / 3600
        labels = Counter(w for i in negatives for w in per_clip[i])
        count = sum(labels.values())
        low, high = poisson_interval(count, hours)
        mode_report: dict[str, Any] = {
            "negatives": {
                "clips": len(negatives),
                "speakers": len({clips[i].speaker for i in negatives}),
                "hours": round(hours, 4),
                "false_commands": count,
                "per_hour": round(count / hours, 2),
                "per_hour_95ci": [round(low, 2), round(high, 2)],
                "per_label": dict(sorted(labels.items())),
            },
            "recall": {},
        }
        for source in ("synthetic", "neural"):
            for kind in KINDS:
                idx = [i for i, c in enumerate(clips) if c.kind == kind and c.source == source]
                if not idx:
                    continue
                hits = sum(clips[i].words[0] in per_clip[i] for i in idx)
                others = sum(w != clips[i].words[0] for i in idx for w in per_clip[i])
                lo, hi = binomial_interval(hits, len(idx))
                mode_report["recall"][f"{source} {kind}"] = {
                    "clips": len(idx),
                    "voices": len({clips[i].speaker for i in idx}),
                    "hits": hits,
                    "recall": round(hits / len(idx), 4),
                    "recall_95ci": [round(lo, 4), round(hi, 4)],
                    "other_command_reports": others,
                }
        report[mode] = mode_report
    report["utterance_segments"] = _segments(clips, found["utterance"])
    return report


def _segments(clips: Sequence[er.Clip], answers: Sequence[Sequence[Answer]]) -> dict[str, Any]:
    """How many answers (segments) each kind of clip gave, and how many were too long."""
    out: dict[str, Any] = {}
    for kind in ("negative", *KINDS):
        idx = [i for i, c in enumerate(clips) if c.kind == kind]
        got = [a for i in idx for a in answers[i]]
        out[kind] = {
            "clips": len(idx),
            "segments": len(got),
            "too_long": sum(label == "too_long" for label, _ in got),
            "clips_without_segment": sum(not answers[i] for i in idx),
        }
    return out


def markdown(result: dict[str, Any]) -> str:
    meta, report = result["meta"], result["report"]
    lines = ["# speech-commands: utterance mode against sliding windows", ""]
    lines.append(f"Command: `{meta['command']}`  ")
    lines.append(f"Run: {meta['mode']}; {meta['seconds']} s  ")
    lines.append(f"Operating point (sliding, utterance+point): {meta['operating_point']}")
    lines.append("")
    lines.append(
        "| mode | false commands on real speech | per hour (95 % CI) | "
        + " | ".join(f"recall, {k}" for k in report["sliding"]["recall"])
        + " |"
    )
    lines.append("| --- | ---: | --- |" + " --- |" * len(report["sliding"]["recall"]))
    for mode in MODES:
        r = report[mode]
        n = r["negatives"]
        ci = n["per_hour_95ci"]
        cells = [
            f"{x['hits']}/{x['clips']} = {100 * x['recall']:.1f} % "
            f"({100 * x['recall_95ci'][0]:.1f}-{100 * x['recall_95ci'][1]:.1f}); "
            f"{x['other_command_reports']} other"
            for x in r["recall"].values()
        ]
        lines.append(
            f"| {mode} | {n['false_commands']} in {n['hours']:.3f} h ({n['clips']} clips) | "
            f"{n['per_hour']} ({ci[0]}-{ci[1]}) | " + " | ".join(cells) + " |"
        )
    lines.append("")
    lines.append("Utterance mode's segments per kind of clip:")
    lines.append("")
    lines.append("| clips | count | segments answered | too long | clips with no segment |")
    lines.append("| --- | ---: | ---: | ---: | ---: |")
    for kind, s in report["utterance_segments"].items():
        lines.append(
            f"| {kind} | {s['clips']} | {s['segments']} | {s['too_long']} | "
            f"{s['clips_without_segment']} |"
        )
    lines.append("")
    for mode in MODES:
        per_label = report[mode]["negatives"]["per_label"]
        lines.append(f"False commands per label, {mode}: {per_label}  ")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--per-speaker", type=int, default=100, help="real lines per speaker")
    parser.add_argument("--per-word", type=int, default=5, help="synthetic clips per word, kind")
    parser.add_argument("--no-neural", action="store_true", help="leave the neural voices out")
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "speech_commands")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "recipes/speech_commands/results/utterances.json"
    )
    args = parser.parse_args(argv)
    began = time.monotonic()
    clips = er.build_clips(SPLIT, args.per_speaker, args.per_word)
    clips = [c for c in clips if c.kind != "real-command"]  # a handful, no recall figure
    if not args.no_neural:
        clips += neural_recall.clips(SPLIT, None, args.cache)
    print(f"{len(clips)} clips, {sum(c.seconds for c in clips) / 60:.1f} min", flush=True)
    point = er.model_operating_point(ROOT / "model_repository" / MODEL / "config.pbtxt")
    import torch

    torch.set_num_threads(1)
    found = asyncio.run(stream_clips(clips))
    report = summarise(clips, found, point)
    result = {
        "meta": {
            "split": SPLIT,
            "mode": "the gateway's stream classes in-process over the TorchScript files, "
            "100 ms chunks, wideband, "
            f"{LEAD_S:g} s of room noise before and after each clip",
            "operating_point": f"thresholds {dict(point.thresholds)}, "
            f"min_windows {point.min_windows}",
            "command": "python -m recipes.speech_commands.utterances "
            + " ".join(sys.argv[1:] if argv is None else argv),
            "seconds": round(time.monotonic() - began, 1),
        },
        "report": report,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
