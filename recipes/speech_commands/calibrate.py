"""Choose the model's detection operating point on the VALIDATION split only.

For each ``min_windows`` in MIN_WINDOWS, every command label gets the lowest threshold at
which its false alarms on the validation negatives (real speech of a speaker used for
nothing else, wideband and telephone together) stay within its share of the budget
(``--budget`` per hour over the ten labels), never below FLOOR; then the recall of the
validation voices' words (isolated and inside phrases, both channels) is measured at those
thresholds, and the ``min_windows`` with the best mean recall wins. The scores are the
gateway's own windows (evaluate_real's offline path, embeddings cached).

``--neural-voices`` adds the VALIDATION neural voices' words (neural_recall.py's clips) to
the recall clips, so heads trained with neural voices are chosen on them too.

Writes recipes/speech_commands/results/operating_point.json, which build.py puts in the
model's config.pbtxt (``detection_thresholds``, ``detection_min_windows``).

Usage: python -m recipes.speech_commands.calibrate [--model-dir model_repository/speech-commands]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recipes.speech_commands.detection import FloatArray, OperatingPoint, detections
from recipes.speech_commands.evaluate_real import CONDITIONS, ROOT, Clip, build_clips, window_scores
from recipes.speech_commands.synthesize import COMMANDS, LABELS
from tritone_server.core.detection import count_detections
from tritone_tools.evaluation.metrics import allowed_false_alarms
from tritone_tools.evaluation.metrics import lowest_threshold as shared_lowest_threshold

RESULTS = ROOT / "recipes" / "speech_commands" / "results"
MIN_WINDOWS = (1, 2, 3)
FLOOR = 0.5
CEILING = 0.999


def count_spans(column: FloatArray, threshold: float, min_windows: int) -> int:
    """Detections a stream makes on one label's scores (the gateway's rule,
    `tritone_server.core.detection.count_detections`)."""
    return int(count_detections(column, [threshold], min_windows)[0])


def lowest_threshold(
    negative_scores: Sequence[FloatArray], label: str, allowed: int, min_windows: int
) -> float:
    """The lowest threshold on a grid from CEILING down to FLOOR before the label's false
    alarms on the negatives exceed ``allowed`` (`tritone_tools.evaluation.metrics.lowest_threshold`:
    scanned from the top, not past the first excess); CEILING if even that exceeds it."""
    grid = [float(t) for t in np.linspace(CEILING, FLOOR, 200)]
    counts = sum(
        (count_detections(s[:, LABELS.index(label)], grid, min_windows) for s in negative_scores),
        start=np.zeros(len(grid), dtype=np.int64),
    )
    chosen = shared_lowest_threshold(grid, [int(c) for c in counts], allowed)
    return CEILING if chosen is None else chosen


def recall(
    clips: Sequence[Clip], scores: Sequence[FloatArray], point: OperatingPoint
) -> dict[str, float]:
    out: dict[str, float] = {}
    for kind in ("isolated", "phrase"):
        idx = [i for i, c in enumerate(clips) if c.kind == kind]
        hits = [
            any(d[0] == clips[i].words[0] for d in detections(scores[i], LABELS, point))
            for i in idx
        ]
        out[kind] = sum(hits) / max(1, len(hits))
    return out


def false_alarms(clips: Sequence[Clip], scores: Sequence[FloatArray], point: OperatingPoint) -> int:
    return sum(
        len(detections(scores[i], LABELS, point))
        for i, c in enumerate(clips)
        if c.kind == "negative"
    )


def calibrate(
    clips: Sequence[Clip], scores: dict[str, list[FloatArray]], budget: float
) -> dict[str, Any]:
    negatives = [i for i, c in enumerate(clips) if c.kind == "negative"]
    hours = sum(clips[i].seconds for i in negatives) / 3600 * len(scores)
    allowed = allowed_false_alarms(budget, hours, len(COMMANDS))
    neg_scores = [scores[c][i] for c in scores for i in negatives]
    trials: list[dict[str, Any]] = []
    for k in MIN_WINDOWS:
        thresholds = {w: lowest_threshold(neg_scores, w, allowed, k) for w in COMMANDS}
        point = OperatingPoint(thresholds, k)
        per_condition = {c: recall(clips, scores[c], point) for c in scores}
        mean = float(np.mean([v for r in per_condition.values() for v in r.values()]))
        fa = sum(false_alarms(clips, scores[c], point) for c in scores)
        trials.append(
            {
                "min_windows": k,
                "thresholds": {w: round(t, 4) for w, t in thresholds.items()},
                "validation_recall": per_condition,
                "mean_recall": round(mean, 4),
                "validation_false_alarms": fa,
            }
        )
        print(json.dumps(trials[-1]), flush=True)
    best = max(trials, key=lambda t: t["mean_recall"])
    return {
        "budget_per_hour": budget,
        "validation_negative_hours_both_channels": round(hours, 4),
        "allowed_false_alarms_per_label": allowed,
        "floor": FLOOR,
        "chosen": best,
        "trials": trials,
    }


def by_source(
    clips: Sequence[Clip], scores: dict[str, list[FloatArray]], chosen: dict[str, Any]
) -> dict[str, Any]:
    """Recall at the chosen point for each source of recall clips (synthetic, neural)."""
    point = OperatingPoint(chosen["thresholds"], chosen["min_windows"])
    out: dict[str, Any] = {}
    for source in sorted({c.source for c in clips if c.kind != "negative"}):
        idx = [i for i, c in enumerate(clips) if c.source == source]
        part = [clips[i] for i in idx]
        out[source] = {
            c: {k: round(v, 4) for k, v in recall(part, [s[i] for i in idx], point).items()}
            for c, s in scores.items()
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--model-dir", type=Path, default=ROOT / "model_repository" / "speech-commands"
    )
    parser.add_argument("--head", type=Path, help="a retrain.py head instead of the model's")
    parser.add_argument("--budget", type=float, default=2.0, help="false alarms per hour")
    parser.add_argument("--per-speaker", type=int, default=300)
    parser.add_argument("--per-word", type=int, default=8)
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "speech_commands" / "real")
    parser.add_argument("--out", type=Path, default=RESULTS / "operating_point.json")
    parser.add_argument(
        "--neural-voices", action="store_true", help="also the validation neural voices' words"
    )
    args = parser.parse_args()
    clips = build_clips("validation", args.per_speaker, args.per_word)
    if args.neural_voices:
        from recipes.speech_commands import neural_recall

        clips += neural_recall.clips("validation", None, args.cache.parent)
    model = args.model_dir / "1" / "model.pt"
    scores = {
        c: window_scores(clips, c, model, args.cache / "validation", args.head) for c in CONDITIONS
    }
    result = calibrate(clips, scores, args.budget)
    result["model"] = str(model.relative_to(ROOT))
    result["head"] = str(args.head) if args.head else "the model's own"
    result["validation_clips"] = {
        kind: sum(1 for c in clips if c.kind == kind) for kind in ("negative", "isolated", "phrase")
    }
    result["validation_recall_by_source"] = by_source(clips, scores, result["chosen"])
    result["validation_speakers"] = sorted({c.speaker for c in clips if c.kind == "negative"})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["chosen"], indent=1))


if __name__ == "__main__":
    main()
