"""The DS-CNN, the current head and their combinations, side by side (issue 25).

``--split validation`` CHOOSES: the DS-CNN's open settings (feature scale, the 50th frame's
padding, level normalisation) and then which of the DS-CNN alone, the current head alone and
the combinations wins; every candidate gets its own stream operating point, calibrated
exactly as ``calibrate.py`` does it (2 false alarms per hour, wideband and telephone
negatives of the validation split). Writes ``results/compare_validation.{json,md}``.

``--split evaluation`` REPORTS, once, the DS-CNN with the chosen settings, the current head
and the chosen combination at the operating points from ``compare_validation.json``; it
chooses nothing. Writes ``results/compare_evaluation.{json,md}``.

Clips (the project's splits, evaluate_real.build_clips; nothing new):
- ``negative``: real lines without a command word (validation: the Czech big fish;
  evaluation: the Dutch big fish, the Czech small fish, pocketsphinx English): words and
  sentences that must stay ``unknown`` (or ``silence``);
- ``isolated`` / ``phrase``: one command word alone or inside a phrase, said by the synthetic
  voices of that split (recall_set.py);
- ``silence``: generated background (digital silence, white / pink / brown noise, mains hum,
  -90 to -45 dBFS), seeded by split, 2 s each.

Channel conditions: ``wideband`` (16 kHz as recorded), ``telephone`` (8 kHz mu-law, as
evaluate_real sends it, resampled back to 16 kHz as the gateway does), ``quiet`` (-30 dB) and
``loud`` (the clip's peak raised to 0.99: full scale without clipping).

Figures per candidate and condition:
- clip level (what ``Classify`` answers with ``mean`` aggregation over the gateway's 1 s
  windows, 0.25 s hop): isolated words whose top label is the word; negatives whose top label
  is ``unknown`` or ``silence``; silence clips whose top label is ``silence``;
- stream level at the candidate's operating point (calibrate.py, detection.py): false alarms
  per hour on the negatives, recall of the isolated words and of the words in phrases.
Intervals: exact Clopper-Pearson for proportions, exact Poisson (Garwood) for rates.

Combinations (per window, on the two models' softmax scores ``d`` (DS-CNN) and ``h`` (head)):
- ``average``: (d + h) / 2;
- ``product``: d * h, renormalised;
- ``agreement``: (d + h) / 2, but a command keeps its score only in windows where it is the
  top label of both models; otherwise its mass moves to ``unknown``;
- ``dscnn_verified_by_head`` / ``head_verified_by_dscnn``: the first model's scores, a
  command keeping its score only where the second gives it at least VERIFY (0.1).

Criterion (validation only): the mean of four figures: isolated words right, negatives kept
``unknown``/``silence``, silence right (each averaged over the four conditions), and the mean
stream recall at the calibrated point (calibrate.py's ``mean_recall``).

Usage:
  python -m recipes.speech_commands.compare --split validation
  python -m recipes.speech_commands.compare --split evaluation
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recipes.speech_commands import calibrate, real_speech
from recipes.speech_commands.detection import (
    FloatArray,
    OperatingPoint,
    binomial_interval,
    detections,
    poisson_interval,
    stream_windows,
)
from recipes.speech_commands.evaluate_real import ROOT, Clip, build_clips
from recipes.speech_commands.synthesize import COMMANDS, LABELS, SAMPLE_RATE, colored_noise

RESULTS = ROOT / "recipes" / "speech_commands" / "results"
CACHE = ROOT / ".cache" / "speech_commands" / "compare"
HEAD_MODEL = ROOT / "model_repository" / "speech-commands" / "1" / "model.pt"
DSCNN_MODEL = ROOT / "model_repository" / "speech-commands-dscnn" / "1" / "model.pt"
CONDITIONS = ("wideband", "telephone", "quiet", "loud")
CALIBRATION_CONDITIONS = ("wideband", "telephone")  # as calibrate.py
SCALES = (0.18, 0.2, 0.22, 0.25, 0.3)
PADS = ("zeros", "context")  # the 50th frame: 320 zeros (served) or the 320 samples before
NORMS = ("none", "peak")
PEAK_TARGET = 0.5  # "peak": each window's peak brought to -6 dBFS ...
PEAK_MAX_GAIN = 10.0  # ... by at most +20 dB (background is not blown up into speech)
VERIFY = 0.1
BUDGET = 2.0
DSCNN_SAMPLES = 16_320
COMMAND_INDEX = np.array([LABELS.index(w) for w in COMMANDS])
UNKNOWN = LABELS.index("unknown")
SILENCE = LABELS.index("silence")
Scores = dict[str, list[FloatArray]]  # condition -> per-clip window scores [windows, 12]


@dataclass(frozen=True, slots=True)
class DscnnSettings:
    scale: float
    pad: str
    norm: str

    @property
    def name(self) -> str:
        return f"dscnn(scale={self.scale},pad={self.pad},norm={self.norm})"


SERVED_DSCNN = DscnnSettings(0.18, "zeros", "none")  # 0.25 until the validation choice


# ---------------------------------------------------------------- clips and channels


def silence_clips(split: str, count: int = 24) -> list[Clip]:
    """Background without speech, 2 s each, seeded by split."""
    rng = np.random.default_rng(909 + real_speech.SPLITS.index(split))
    n = 2 * SAMPLE_RATE
    out: list[Clip] = []
    for i in range(count):
        kind = ("digital", "white", "pink", "brown", "hum")[i % 5]
        level = 10 ** (rng.uniform(-90.0, -45.0) / 20)
        if kind == "digital":
            audio = np.zeros(n, np.float32)
        elif kind == "hum":
            t = np.arange(n) / SAMPLE_RATE
            f0 = float(rng.choice([50.0, 60.0]))
            wave = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in (1, 2, 3))
            audio = (wave * level * np.sqrt(2)).astype(np.float32)
            audio += colored_noise(rng, n, 1.0) * level * 0.1
        else:
            exponent = {"white": 0.0, "pink": 1.0, "brown": 2.0}[kind]
            audio = colored_noise(rng, n, exponent) * level
        audio = np.clip(audio, -1.0, 1.0).astype(np.float32)
        out.append(Clip(f"silence/{split}/{i}", "generated", kind, "silence", (), audio))
    return out


def condition_audio(audio: FloatArray, condition: str) -> FloatArray:
    """The clip as the model receives it at 16 kHz under one channel condition."""
    from tritone_server.audio.dsp import resample

    if condition == "wideband":
        return audio
    if condition == "telephone":
        return resample(real_speech.telephone(audio), 8_000, SAMPLE_RATE)
    if condition == "quiet":
        return (audio * 10 ** (-30 / 20)).astype(np.float32)
    if condition == "loud":
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        return audio if peak <= 0 else (audio * (0.99 / peak)).astype(np.float32)
    raise ValueError(condition)


# ---------------------------------------------------------------- window scores


def _softmax(logits: FloatArray) -> FloatArray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: FloatArray = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    return out


def _cached(path: Path, keys: Sequence[str], make: Callable[[int], FloatArray]) -> list[FloatArray]:
    stored: dict[str, FloatArray] = {}
    if path.exists():
        with np.load(path) as f:
            stored = {k: f[k] for k in f.files}
    missing = [i for i, k in enumerate(keys) if k not in stored]
    for i in missing:
        stored[keys[i]] = make(i)
    if missing:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **stored)
    return [stored[k] for k in keys]


def head_scores(clips: Sequence[Clip], split: str, condition: str) -> list[FloatArray]:
    """The served speech-commands model's softmax per stream window."""
    import torch

    from recipes.speech_commands.dscnn import jit

    model = jit.load(HEAD_MODEL)
    model.eval()

    def make(i: int) -> FloatArray:
        windows = stream_windows(condition_audio(clips[i].audio, condition))
        with torch.no_grad():
            parts = [
                model(torch.from_numpy(windows[k : k + 64])) for k in range(0, len(windows), 64)
            ]
        return _softmax(torch.cat(parts).numpy())

    path = CACHE / split / f"head_{condition}.npz"
    return _cached(path, [c.key for c in clips], make)


def dscnn_windows(x: FloatArray, pad: str) -> FloatArray:
    """The gateway's 1 s stream windows, as the DS-CNN's 16320 samples: left-padded with 320
    zeros (``zeros``, what the served model does) or with the 320 samples before each window
    (``context``; zeros before the stream starts)."""
    windows = stream_windows(x)
    lead = DSCNN_SAMPLES - windows.shape[1]
    if pad == "zeros":
        return np.concatenate([np.zeros((len(windows), lead), np.float32), windows], axis=1)
    if pad == "context":
        padded = np.concatenate([np.zeros(lead, np.float32), x])
        out = np.zeros((len(windows), DSCNN_SAMPLES), np.float32)
        for i in range(len(windows)):
            part = padded[i * 4000 : i * 4000 + DSCNN_SAMPLES]
            out[i, : part.shape[0]] = part
        return out
    raise ValueError(pad)


def normalise(windows: FloatArray, norm: str) -> FloatArray:
    if norm == "none":
        return windows
    if norm == "peak":
        peak = np.abs(windows).max(axis=1, keepdims=True)
        gain = np.minimum(PEAK_TARGET / np.maximum(peak, 1e-9), PEAK_MAX_GAIN)
        out: FloatArray = (windows * gain).astype(np.float32)
        return out
    raise ValueError(norm)


def dscnn_features(
    clips: Sequence[Clip], split: str, condition: str, pad: str, norm: str
) -> list[FloatArray]:
    """TFLM front-end output (before the feature scale) [windows, 50, 10] per clip."""
    import torch

    from recipes.speech_commands.dscnn import jit
    from recipes.speech_commands.dscnn.model import to_int16

    model = jit.load(DSCNN_MODEL)
    model.eval()

    def make(i: int) -> FloatArray:
        x = condition_audio(clips[i].audio, condition)
        windows = normalise(dscnn_windows(x, pad), norm)
        with torch.no_grad():
            parts = [
                model.frontend(to_int16(torch.from_numpy(windows[k : k + 64])))
                for k in range(0, len(windows), 64)
            ]
        return torch.cat(parts).to(torch.float32).numpy()

    path = CACHE / split / f"dscnn_{condition}_{pad}_{norm}.npz"
    return _cached(path, [c.key for c in clips], make)


def dscnn_scores(features: Sequence[FloatArray], scale: float) -> list[FloatArray]:
    import torch

    from recipes.speech_commands.dscnn import jit

    model = jit.load(DSCNN_MODEL)
    model.eval()
    out: list[FloatArray] = []
    with torch.no_grad():
        for f in features:
            logits = model.network(torch.from_numpy(f * np.float32(scale))).numpy()
            out.append(_softmax(logits))
    return out


# ---------------------------------------------------------------- combinations


def _move_to_unknown(scores: FloatArray, keep: np.ndarray[Any, np.dtype[np.bool_]]) -> FloatArray:
    """Commands where ``keep`` [windows, 10] is False give their mass to ``unknown``."""
    out = scores.copy()
    commands = out[:, COMMAND_INDEX]
    moved = np.where(keep, 0.0, commands).sum(axis=1)
    out[:, COMMAND_INDEX] = np.where(keep, commands, 0.0)
    out[:, UNKNOWN] += moved
    return out


def combine(rule: str, d: FloatArray, h: FloatArray) -> FloatArray:
    if rule == "average":
        out: FloatArray = ((d + h) / 2).astype(np.float32)
        return out
    if rule == "product":
        p = d.astype(np.float64) * h
        renormalised: FloatArray = (p / np.maximum(p.sum(axis=1, keepdims=True), 1e-30)).astype(
            np.float32
        )
        return renormalised
    if rule == "agreement":
        top_d, top_h = d.argmax(axis=1), h.argmax(axis=1)
        keep = (top_d[:, None] == COMMAND_INDEX[None, :]) & (
            top_h[:, None] == COMMAND_INDEX[None, :]
        )
        return _move_to_unknown(((d + h) / 2).astype(np.float32), keep)
    if rule == "dscnn_verified_by_head":
        return _move_to_unknown(d, h[:, COMMAND_INDEX] >= VERIFY)
    if rule == "head_verified_by_dscnn":
        return _move_to_unknown(h, d[:, COMMAND_INDEX] >= VERIFY)
    raise ValueError(rule)


RULES = ("average", "product", "agreement", "dscnn_verified_by_head", "head_verified_by_dscnn")


# ---------------------------------------------------------------- figures


def _rate(k: int, n: int) -> dict[str, Any]:
    low, high = binomial_interval(k, n)
    return {
        "k": k,
        "n": n,
        "rate": round(k / n, 4) if n else None,
        "ci95": [round(low, 4), round(high, 4)],
    }


def clip_figures(clips: Sequence[Clip], scores: Sequence[FloatArray]) -> dict[str, Any]:
    """Top label of the mean window scores (the gateway's ``mean`` aggregation)."""
    top = [int(s.mean(axis=0).argmax()) if len(s) else SILENCE for s in scores]
    iso = [i for i, c in enumerate(clips) if c.kind == "isolated"]
    neg = [i for i, c in enumerate(clips) if c.kind == "negative"]
    sil = [i for i, c in enumerate(clips) if c.kind == "silence"]
    return {
        "isolated_right": _rate(sum(LABELS[top[i]] == clips[i].words[0] for i in iso), len(iso)),
        "negatives_kept": _rate(sum(top[i] in (UNKNOWN, SILENCE) for i in neg), len(neg)),
        "silence_right": _rate(sum(top[i] == SILENCE for i in sil), len(sil)),
    }


def stream_figures(
    clips: Sequence[Clip], scores: Sequence[FloatArray], point: OperatingPoint
) -> dict[str, Any]:
    found = [detections(s, LABELS, point) for s in scores]
    neg = [i for i, c in enumerate(clips) if c.kind == "negative"]
    hours = sum(clips[i].seconds for i in neg) / 3600
    count = sum(len(found[i]) for i in neg)
    low, high = poisson_interval(count, hours) if hours else (0.0, 0.0)
    out: dict[str, Any] = {
        "negative_hours": round(hours, 4),
        "false_alarms": count,
        "per_hour": round(count / hours, 2) if hours else None,
        "per_hour_ci95": [round(low, 2), round(high, 2)],
    }
    for kind in ("isolated", "phrase"):
        idx = [i for i, c in enumerate(clips) if c.kind == kind]
        hits = sum(any(d[0] == clips[i].words[0] for d in found[i]) for i in idx)
        out[f"{kind}_recall"] = _rate(hits, len(idx))
    sil = [i for i, c in enumerate(clips) if c.kind == "silence"]
    out["silence_clips_with_a_detection"] = sum(1 for i in sil if found[i])
    return out


def point_of(chosen: dict[str, Any]) -> OperatingPoint:
    return OperatingPoint(chosen["thresholds"], chosen["min_windows"])


def measure(clips: Sequence[Clip], scores: Scores, point: OperatingPoint | None) -> dict[str, Any]:
    """Clip and stream figures per condition; calibrates first when ``point`` is None."""
    out: dict[str, Any] = {}
    if point is None:
        speech = [i for i, c in enumerate(clips) if c.kind != "silence"]
        calibration = calibrate.calibrate(
            [clips[i] for i in speech],
            {c: [scores[c][i] for i in speech] for c in CALIBRATION_CONDITIONS},
            BUDGET,
        )
        out["operating_point"] = {
            k: calibration["chosen"][k] for k in ("thresholds", "min_windows", "mean_recall")
        }
        point = point_of(calibration["chosen"])
    out["conditions"] = {
        c: {"clip": clip_figures(clips, s), "stream": stream_figures(clips, s, point)}
        for c, s in scores.items()
    }
    return out


def criterion(figures: dict[str, Any]) -> float:
    parts = []
    for key in ("isolated_right", "negatives_kept", "silence_right"):
        parts.append(np.mean([f["clip"][key]["rate"] for f in figures["conditions"].values()]))
    parts.append(figures["operating_point"]["mean_recall"])
    return round(float(np.mean(parts)), 4)


# ---------------------------------------------------------------- the two runs


def all_clips(split: str, per_speaker: int, per_word: int) -> list[Clip]:
    return build_clips(split, per_speaker, per_word) + silence_clips(split)


def dscnn_condition_scores(clips: Sequence[Clip], split: str, settings: DscnnSettings) -> Scores:
    return {
        c: dscnn_scores(
            dscnn_features(clips, split, c, settings.pad, settings.norm), settings.scale
        )
        for c in CONDITIONS
    }


def validation(args: argparse.Namespace) -> dict[str, Any]:
    clips = all_clips("validation", args.per_speaker, args.per_word)
    print(f"{len(clips)} validation clips", flush=True)
    head: Scores = {c: head_scores(clips, "validation", c) for c in CONDITIONS}
    candidates: dict[str, Any] = {"head": measure(clips, head, None)}
    candidates["head"]["criterion"] = criterion(candidates["head"])
    print("head", candidates["head"]["criterion"], flush=True)
    settings_trials: dict[str, Any] = {}
    for pad, norm in itertools.product(PADS, NORMS):
        features = {c: dscnn_features(clips, "validation", c, pad, norm) for c in CONDITIONS}
        for scale in SCALES:
            s = DscnnSettings(scale, pad, norm)
            scores = {c: dscnn_scores(features[c], scale) for c in CONDITIONS}
            figures = measure(clips, scores, None)
            figures["criterion"] = criterion(figures)
            settings_trials[s.name] = figures
            print(s.name, figures["criterion"], flush=True)
    best_name = max(settings_trials, key=lambda n: settings_trials[n]["criterion"])
    best = next(
        DscnnSettings(sc, p, n)
        for p, n, sc in itertools.product(PADS, NORMS, SCALES)
        if DscnnSettings(sc, p, n).name == best_name
    )
    dscnn = dscnn_condition_scores(clips, "validation", best)
    candidates["dscnn"] = settings_trials[best_name]
    for rule in RULES:
        scores = {
            c: [combine(rule, d, h) for d, h in zip(dscnn[c], head[c], strict=True)]
            for c in CONDITIONS
        }
        figures = measure(clips, scores, None)
        figures["criterion"] = criterion(figures)
        candidates[rule] = figures
        print(rule, figures["criterion"], flush=True)
    winner = max(candidates, key=lambda n: candidates[n]["criterion"])
    return {
        "dscnn_settings": {"scale": best.scale, "pad": best.pad, "norm": best.norm},
        "dscnn_settings_trials": settings_trials,
        "candidates": candidates,
        "winner": winner,
        "clips": clip_counts(clips),
    }


def clip_counts(clips: Sequence[Clip]) -> dict[str, Any]:
    return {
        kind: {
            "clips": sum(1 for c in clips if c.kind == kind),
            "speakers_or_voices": len({c.speaker for c in clips if c.kind == kind}),
            "seconds": round(sum(c.seconds for c in clips if c.kind == kind), 1),
        }
        for kind in ("negative", "isolated", "phrase", "silence")
    }


def evaluation(args: argparse.Namespace) -> dict[str, Any]:
    chosen = json.loads((RESULTS / "compare_validation.json").read_text())
    v = chosen["result"]
    settings = DscnnSettings(**v["dscnn_settings"])
    winner = v["winner"]
    clips = all_clips("evaluation", args.per_speaker, args.per_word)
    print(f"{len(clips)} evaluation clips", flush=True)
    head: Scores = {c: head_scores(clips, "evaluation", c) for c in CONDITIONS}
    dscnn = dscnn_condition_scores(clips, "evaluation", settings)
    # the best combination on validation is reported beside the two, winner or not
    rule = max(RULES, key=lambda r: float(v["candidates"][r]["criterion"]))
    reported: dict[str, Scores] = {"dscnn": dscnn, "head": head}
    points = {name: v["candidates"][name]["operating_point"] for name in v["candidates"]}
    if settings != SERVED_DSCNN:  # what speech-commands-dscnn/1/model.pt runs today
        reported["dscnn_as_served"] = dscnn_condition_scores(clips, "evaluation", SERVED_DSCNN)
        served = v["dscnn_settings_trials"][SERVED_DSCNN.name]
        points["dscnn_as_served"] = served["operating_point"]
    reported[rule] = {
        c: [combine(rule, d, h) for d, h in zip(dscnn[c], head[c], strict=True)] for c in CONDITIONS
    }
    out: dict[str, Any] = {}
    for name, scores in reported.items():
        point_info = points[name]
        out[name] = measure(clips, scores, point_of(point_info))
        out[name]["operating_point"] = point_info
    return {
        "dscnn_settings": v["dscnn_settings"],
        "winner_on_validation": winner,
        "best_combination_on_validation": rule,
        "candidates": out,
        "clips": clip_counts(clips),
    }


# ---------------------------------------------------------------- writing


def _pct(r: dict[str, Any]) -> str:
    if not r["n"]:
        return "-"
    lo, hi = r["ci95"]
    return f"{r['rate'] * 100:.1f} % ({lo * 100:.1f}-{hi * 100:.1f}; {r['k']}/{r['n']})"


def table(candidates: dict[str, Any]) -> list[str]:
    lines = [
        "| candidate | condition | isolated words right | negatives kept unknown | silence right "
        "| stream false alarms / h (95 % CI) | stream isolated recall | stream phrase recall |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, f in candidates.items():
        for cond, x in f["conditions"].items():
            c, s = x["clip"], x["stream"]
            lo, hi = s["per_hour_ci95"]
            lines.append(
                f"| {name} | {cond} | {_pct(c['isolated_right'])} | {_pct(c['negatives_kept'])} "
                f"| {_pct(c['silence_right'])} | {s['per_hour']} ({lo}-{hi}; {s['false_alarms']}) "
                f"| {_pct(s['isolated_recall'])} | {_pct(s['phrase_recall'])} |"
            )
    return lines


def markdown(split: str, result: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [f"# DS-CNN, current head and combinations: {split} split", ""]
    lines.append(f"Command: `{meta['command']}` ({meta['seconds']} s)  ")
    lines.append(f"Clips: {json.dumps(result['clips'])}  ")
    lines.append(f"DS-CNN settings: {json.dumps(result['dscnn_settings'])}")
    lines.append("")
    if split == "validation":
        lines.append(f"Winner (criterion, see compare.py): **{result['winner']}**")
        lines.append("")
        lines.append("| candidate | criterion | operating point mean recall | min_windows |")
        lines.append("| --- | ---: | ---: | ---: |")
        for name, f in result["candidates"].items():
            op = f["operating_point"]
            lines.append(
                f"| {name} | {f['criterion']} | {op['mean_recall']} | {op['min_windows']} |"
            )
        lines.append("")
        lines.append("DS-CNN settings tried:")
        lines.append("")
        lines.append("| settings | criterion |")
        lines.append("| --- | ---: |")
        for name, f in result["dscnn_settings_trials"].items():
            lines.append(f"| {name} | {f['criterion']} |")
        lines.append("")
    else:
        lines.append(
            f"Winner on validation: **{result['winner_on_validation']}**; best combination "
            f"on validation (reported beside it): {result['best_combination_on_validation']}"
        )
        lines.append("")
    lines += table(result["candidates"])
    return "\n".join(lines) + "\n"


SECTION = "## What it does well and what it does not"
CARDS = {
    "speech-commands-dscnn": ROOT / "model_repository" / "speech-commands-dscnn" / "README.md",
    "speech-commands": ROOT / "model_repository" / "speech-commands" / "README.md",
}


def _fig(r: dict[str, Any]) -> str:
    lo, hi = r["ci95"]
    return f"{r['rate'] * 100:.1f} % ({r['k']}/{r['n']}; 95 % CI {lo * 100:.1f}-{hi * 100:.1f})"


MLTK_OWN = (
    "mltk's own evaluation on its Speech Commands test split, through its own preprocessed "
    "features (`eval/h5/summary.txt`, `eval/tflite/summary.txt` in the zip): 93.9 % (float), "
    "93.8 % (int8). The model classifies one word per one-second clip; it was not trained on "
    "words inside running speech."
)


def section(results: Path = RESULTS, extra: str = "") -> str:
    """The cards' section on what the keyword spotters do well and what they do not: every
    figure read from compare_evaluation.json (choices from compare_validation.json)."""
    ev = json.loads((results / "compare_evaluation.json").read_text())["result"]
    val = json.loads((results / "compare_validation.json").read_text())["result"]
    names = {
        "dscnn": "DS-CNN with the settings chosen on validation",
        "dscnn_as_served": (
            f"speech-commands-dscnn as served (scale {SERVED_DSCNN.scale}, 320 zeros: the best "
            "setting a 16000-sample window serves)"
        ),
        "head": "speech-commands (current head; served)",
    }
    lines = [
        SECTION,
        "",
        "Measured on the project's EVALUATION split only (real speech: the Dutch big fish and the "
        "Czech small fish of fillets-ng-data, the pocketsphinx English recordings, lines without "
        "a command word; command words said alone and inside phrases by the evaluation split's "
        "synthetic voices; generated background as silence), after every choice was made on the "
        "validation split (`recipes/speech_commands/compare.py`, "
        "`results/compare_evaluation.{json,md}`). Clips: "
        + ", ".join(f"{k} {v['clips']}" for k, v in ev["clips"].items())
        + f". DS-CNN settings chosen on validation: {json.dumps(ev['dscnn_settings'])}; "
        f"winner on validation: `{val['winner']}`.",
        "",
        "What they do well: one command word per utterance, classified as a whole clip; what "
        "they do not: command words inside running speech (stream recall in phrases). No real "
        "recording of a command word said alone is available to this project, so isolated "
        "words are synthetic voices never trained on (the current head learned from other "
        "synthetic voices; the DS-CNN never heard synthetic speech). Wideband:",
        "",
    ]
    for name, f in ev["candidates"].items():
        w = f["conditions"]["wideband"]
        c, st = w["clip"], w["stream"]
        lo, hi = st["per_hour_ci95"]
        lines.append(
            f"- {names.get(name, f'combination `{name}` (the best on validation; not served)')}"
            ": isolated command words (synthetic evaluation voices) recognised "
            f"{_fig(c['isolated_right'])}; real lines without a command word kept "
            f"`unknown` {_fig(c['negatives_kept'])}; silence {_fig(c['silence_right'])}; "
            f"stream at its operating point: {st['per_hour']} false alarms per hour "
            f"(95 % CI {lo}-{hi}), command words found inside phrases "
            f"{_fig(st['phrase_recall'])}, isolated {_fig(st['isolated_recall'])}."
        )
    lines.append("")
    lines.append(
        "Targets (issue 25, point estimates, wideband): isolated >= 90 %, non-command "
        "kept >= 95 %, silence >= 98 %. Clip figures are the top label of the mean over a "
        "clip's 1 s windows (what `Classify` answers); a stream raises a detection as soon as "
        "one window crosses a threshold, so the same real lines that stay `unknown` as whole "
        "clips still give false alarms in a stream. The validation split favours the current "
        "head: its thresholds and fine-tuning were chosen on the same validation speaker "
        "before this comparison. Per-candidate operating points and the choice: "
        "`results/compare_validation.{json,md}`."
    )
    lines.append("")
    lines.append(
        "All four channel conditions (wideband, 8 kHz telephone, -30 dB, peak at full scale):"
    )
    lines.append("")
    lines += table(ev["candidates"])
    if extra:
        lines += ["", extra]
    return "\n".join(lines) + "\n"


def replace_section(card: str, new: str) -> str:
    """The card with its section replaced, or added before ``## Limits`` or
    ``## Lineage``."""
    import re

    pattern = re.compile(rf"{re.escape(SECTION)}\n.*?(?=\n## )", re.S)
    if pattern.search(card):
        return pattern.sub(lambda _: new.rstrip("\n") + "\n", card, count=1)
    for anchor in ("## Limits", "## Lineage"):
        if anchor in card:
            return card.replace(anchor, new + "\n" + anchor, 1)
    return card + "\n" + new


def main() -> None:
    import torch

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--split", choices=("validation", "evaluation"))
    parser.add_argument("--card", action="store_true", help="only rewrite the cards' section")
    parser.add_argument("--per-speaker", type=int)
    parser.add_argument("--per-word", type=int, default=5)
    args = parser.parse_args()
    if args.card:
        for name, path in CARDS.items():
            new = section(extra=MLTK_OWN if name == "speech-commands-dscnn" else "")
            path.write_text(replace_section(path.read_text(), new))
        return
    if args.split is None:
        parser.error("--split or --card")
    if args.per_speaker is None:  # as the existing result files
        args.per_speaker = 120 if args.split == "validation" else 100
    began = time.monotonic()
    result = validation(args) if args.split == "validation" else evaluation(args)
    meta = {
        "command": "python -m recipes.speech_commands.compare " + " ".join(sys.argv[1:]),
        "seconds": round(time.monotonic() - began, 1),
        "budget_per_hour": BUDGET,
    }
    out = RESULTS / f"compare_{args.split}.json"
    out.write_text(json.dumps({"meta": meta, "result": result}, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(args.split, result, meta))
    print(markdown(args.split, result, meta))


if __name__ == "__main__":
    main()
