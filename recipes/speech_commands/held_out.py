"""Accuracy of a head on the held-out synthetic voices, written to a result file once.

Reads the cached held-out clips' embeddings (synthesize.py's ``eval`` split, embedded by
train.py), classifies them with the shipped model's head or a retrain.py head, and writes
recipes/speech_commands/results/held_out_synthetic.json: the figure the card states and the
integration test holds the gateway to.

Usage: python -m recipes.speech_commands.held_out [--head .cache/speech_commands/head_retrained.pt]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from recipes.speech_commands.synthesize import LABELS
from recipes.speech_commands.train import Head, cached_embeddings, confusion, macro_f1

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent / "results" / "held_out_synthetic.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cache", type=Path, default=Path(".cache/speech_commands"))
    parser.add_argument(
        "--model",
        type=Path,
        default=ROOT / "model_repository" / "speech-commands" / "1" / "model.pt",
    )
    parser.add_argument("--head", type=Path, help="a retrain.py head instead of the model's")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    x, y, _ = cached_embeddings(args.cache, "eval")
    head: torch.nn.Module
    if args.head is not None:
        head = Head()
        head.load_state_dict(torch.load(args.head, weights_only=True))
    else:
        head = torch.jit.load(str(args.model), map_location="cpu").head  # type: ignore[no-untyped-call]
    head.eval()
    with torch.no_grad():
        pred = head(x).argmax(1)
    m = confusion(pred, y)
    per_label = {
        label: round(float(m[i, i] / max(1, m[i].sum())), 4) for i, label in enumerate(LABELS)
    }
    result = {
        "what": "1 s clips of held-out synthetic voices (synthesize.py eval split), top label",
        "head": str(args.head) if args.head else "the model's own",
        "clips": int(m.sum()),
        "accuracy": round(float(np.trace(m) / m.sum()), 4),
        "macro_f1": round(macro_f1(m), 4),
        "per_label_recall": per_label,
        "command": "python -m recipes.speech_commands.held_out"
        + (f" --head {args.head}" if args.head else ""),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
