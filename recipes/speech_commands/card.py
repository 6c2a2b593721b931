"""The model card's real-speech section and the config's operating point, from result files.

Every figure in the section is read from a JSON file a script wrote (evaluate_real.py,
calibrate.py) under recipes/speech_commands/results/; nothing is typed in. build.py puts the
section in the card it writes; ``python -m recipes.speech_commands.card`` rewrites only this
section of model_repository/speech-commands/README.md and the operating point of its
config.pbtxt, for when the operating point or the evaluation changed and the model did not.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from recipes.speech_commands.evaluate_real import markdown
from tritone_server.triton.model_config import pbtxt_string

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = RESULTS.parents[2]
EVALUATION = RESULTS / "real_speech_evaluation.json"
BASELINE = RESULTS / "baseline_evaluation.json"
BASELINE_OFFLINE = RESULTS / "baseline_evaluation_offline.json"
TARGETS = {"per_hour": 2.0, "phrase": 0.8, "isolated": 0.9}
OPERATING_POINT = RESULTS / "operating_point.json"
NEURAL = RESULTS / "neural_recall_evaluation.json"
HEADING = "## Real speech"
OLD_LIMIT = "Synthetic voices only; no measurement on human speech."
LIMIT_REAL = (
    "Trained on synthetic voices; measured on real speech only as the section above says\n"
    "  (few speakers, two languages besides English, no real recordings of the command words)."
)


def _headline(report: dict[str, Any]) -> str:
    parts = []
    for condition, r in report.items():
        n = r["negatives"]["all"]
        ci = n["per_hour_95ci"]
        rec = "; ".join(
            f"{kind} recall {x['recall'] * 100:.1f} % ({x['hits']}/{x['clips']})"
            for kind, x in r["recall"].items()
        )
        parts.append(
            f"{condition}: {n['per_hour']} false alarms per hour (95 % CI {ci[0]}-{ci[1]}, "
            f"{n['false_alarms']} in {n['hours'] * 60:.1f} min); {rec}"
        )
    return "\n".join(f"- {p}" for p in parts)


def _targets(report: dict[str, Any]) -> str:
    """Which of issue 17's targets the figures meet (point estimates)."""
    verdicts = []
    for condition, r in report.items():
        rate = r["negatives"]["all"]["per_hour"]
        verdicts.append(
            f"{condition} false alarms {rate}/h vs <= {TARGETS['per_hour']}: "
            + ("met" if rate <= TARGETS["per_hour"] else "NOT met")
        )
        for kind in ("isolated", "phrase"):
            got = r["recall"][kind]["recall"]
            verdicts.append(
                f"{condition} {kind} recall {got * 100:.1f} % vs >= {TARGETS[kind] * 100:.0f} %: "
                + ("met" if got >= TARGETS[kind] else "NOT met")
            )
    return "Targets (issue 17; point estimates, small sets): " + "; ".join(verdicts) + "."


def _neural(path: Path) -> list[str]:
    """Recall on the evaluation neural voices (neural_recall.py), through the gateway when
    that run is in the file, at the model's operating point."""
    if not path.is_file():
        return []
    data = json.loads(path.read_text())
    modes = data["report"]
    mode = next((m for m in modes if m.startswith("gateway")), "offline")
    parts = []
    for condition, by_kind in modes[mode]["model"].items():
        rec = "; ".join(
            f"{kind} {x['recall'] * 100:.1f} % ({x['hits']}/{x['clips']}, 95 % CI "
            f"{x['recall_95ci'][0] * 100:.1f}-{x['recall_95ci'][1] * 100:.1f})"
            for kind, x in by_kind.items()
        )
        parts.append(f"- {condition}: {rec}")
    voices = ", ".join(data["meta"]["voices"])
    return [
        "Recall on neural voices never trained on or used to choose (the evaluation split of",
        f"`neural_voices.py`: {voices}; each says each command word once alone and once in a",
        f"phrase), {mode}, at the model's operating point (`results/{path.name}`, per label,",
        "family and voice in its `.md`):",
        "",
        *parts,
        "",
    ]


def section(results: Path = RESULTS) -> str:
    """The card's real-speech section (empty if the evaluation has not been run)."""
    evaluation = results / EVALUATION.name
    if not evaluation.is_file():
        return ""
    final = json.loads(evaluation.read_text())
    lines = [
        HEADING,
        "",
        "Real human speech the model never trained on and that chose nothing,",
        (
            "streamed through the gateway as a caller would (SDK `stream_classify`, 100 ms"
            if final["meta"]["mode"].startswith("gateway")
            else "scored OFFLINE on exactly the windows a gateway stream classifies (the gateway"
            " run did not fit in this session; `evaluate_real.py --offline`), 100 ms"
        ),
        "chunks of s16le, the ten command labels watched, wideband at 16 kHz and as a phone line",
        "delivers it (8 kHz, mu-law, sent at 8 kHz: the gateway resamples). False alarms are",
        "detections in lines",
        "without a command word: fish-fillets' Dutch big fish and Czech small fish (one actor",
        "each) and pocketsphinx-testdata's English recordings. Recall is on synthetic voices",
        "never trained on or used to choose (flite rms, espeak-ng en-029 and five held-out",
        "variants) saying one command word alone or inside a phrase. Split and sources:",
        "`recipes/speech_commands/real_speech.py`, `recall_set.py`. Figures read from",
        f"`recipes/speech_commands/results/{evaluation.name}`:",
        "",
        _headline(final["report"]),
        "",
        _targets(final["report"]),
        "",
    ]
    point = results / OPERATING_POINT.name
    if point.is_file():
        op = json.loads(point.read_text())
        chosen = op["chosen"]
        lines += [
            "Operating point (config.pbtxt `detection_thresholds`, `detection_min_windows`; a",
            'stream that asks for detections with `detection_threshold="model"` uses it):',
            f"chosen by `calibrate.py` on the validation split only ({op['validation_speakers']},",
            f"{op['validation_clips']}), for a budget of {op['budget_per_hour']} false alarms",
            f"per hour: min_windows {chosen['min_windows']}, thresholds {chosen['thresholds']}.",
            "",
        ]
    lines += _neural(results / NEURAL.name)
    baseline = results / BASELINE.name
    if not baseline.is_file():
        baseline = results / BASELINE_OFFLINE.name
    if baseline.is_file():
        before = json.loads(baseline.read_text())
        lines += [
            f"Before (the model as it shipped, the same clips, {before['meta']['operating_point']},"
            f" {before['meta']['mode']}; `results/{baseline.name}`):",
            "",
            _headline(before["report"]),
            "",
        ]
    held = results / "held_out_synthetic.json"
    if held.is_file():
        h = json.loads(held.read_text())
        lines += [
            f"Held-out synthetic voices, 1 s clips, the served head ({h['head']}): accuracy "
            f"{h['accuracy'] * 100:.1f} %, macro-F1 {h['macro_f1'] * 100:.1f} % on {h['clips']}",
            f"clips (`{h['command']}`, `results/{held.name}`; the tests hold the gateway to it).",
            "",
        ]
        if h["head"] != "the model's own":
            lines += [
                "The served head is the one described above FINE-TUNED twice by `retrain.py` (8",
                "epochs each, from the weights before): first on the synthetic clips plus",
                "`negatives.py`'s rows (synthesized sentences, confusable words, the training",
                "actor's real speech, phone-channel, clipped and babble-mixed clips), then on",
                "those plus `phrase_positives.py`'s command words inside synthesized phrases and",
                "`neural_positives.py`'s rows from the TRAIN Kokoro neural voices (words alone",
                "and in phrases, other words, sentences), chosen over the head before it on the",
                "validation split (`results/levers/neural_phrases.json` against",
                "`results/levers/shipped_neural.json`); the sections above on training and",
                "held-out voices describe the head before those steps. So does the aggregation",
                "study: the",
                "earlier build chose `mean` on held-out clips; build.py now chooses it on the",
                "validation split, but the full build was not re-run for this head.",
                "",
            ]
    body = markdown(final["report"], final["meta"]).split("\n", 2)[2]
    lines += ["Details:", "", body.strip(), ""]
    return "\n".join(lines)


def replace_section(card: str, new: str) -> str:
    """The card with its real-speech section replaced (or added before `## Limits`)."""
    pattern = re.compile(rf"{re.escape(HEADING)}\n.*?(?=\n## )", re.S)
    if pattern.search(card):
        return pattern.sub(lambda _: new.rstrip("\n") + "\n", card, count=1)
    return card.replace("## Limits", new + "\n## Limits", 1)


def set_operating_point(config: str, thresholds: dict[str, float], min_windows: int) -> str:
    """config.pbtxt text with the two detection parameters set (replaced if present)."""
    kept = [
        line
        for line in config.splitlines()
        if '"detection_thresholds"' not in line and '"detection_min_windows"' not in line
    ]
    for key, value in (
        ("detection_thresholds", json.dumps(thresholds)),
        ("detection_min_windows", str(min_windows)),
    ):
        kept.append(
            f"parameters {{ key: {pbtxt_string(key)} value: {{ string_value: "
            f"{pbtxt_string(value)} }} }}"
        )
    return "\n".join(kept) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--model-dir", type=Path, default=ROOT / "model_repository" / "speech-commands"
    )
    args = parser.parse_args()
    if OPERATING_POINT.is_file():
        chosen = json.loads(OPERATING_POINT.read_text())["chosen"]
        config = args.model_dir / "config.pbtxt"
        config.write_text(
            set_operating_point(config.read_text(), chosen["thresholds"], chosen["min_windows"])
        )
    new = section()
    if new:
        card = args.model_dir / "README.md"
        text = replace_section(card.read_text(), new).replace(OLD_LIMIT, LIMIT_REAL)
        card.write_text(text)
    print(f"updated {args.model_dir}")


if __name__ == "__main__":
    main()
