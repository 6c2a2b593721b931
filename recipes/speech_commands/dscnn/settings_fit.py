"""Evidence for the undocumented front-end settings: which candidate makes the DS-CNN's first
convolution see the statistics its first BatchNorm learned in training.

The BatchNorm after the first convolution stores the running mean and variance of that
convolution's 64 outputs over the training data (Speech Commands with mltk's augmentation).
For each candidate front end (noise reduction, PCAN on or off) this script runs real speech
through the front end and the first convolution and compares the outputs' per-channel mean
and variance with the stored ones; the convolution is linear, so the feature scale that fits
best is solved for in closed form. The speech differs from Speech Commands (Dutch dialogue
lines of the training split, real_speech.py's ``train`` actor, plus the wheel's two recorded
words and quiet clips for the background class), so this ranks candidates; it proves nothing.

Usage: python -m recipes.speech_commands.dscnn.settings_fit [--lines 200]
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from recipes.speech_commands import real_speech
from recipes.speech_commands.dscnn import jit, reference
from recipes.speech_commands.dscnn.frontend import MicroFrontend
from recipes.speech_commands.dscnn.network import load_h5
from recipes.speech_commands.dscnn.parity import RESULTS
from recipes.speech_commands.dscnn.settings import KWS_FRONTEND
from recipes.speech_commands.dscnn.signals import LENGTH, clips

__all__ = ["fit"]


def _windows(lines: int) -> npt.NDArray[np.int64]:
    """One LENGTH-sample window per line, centred on its loudest 0.1 s, as int16 values."""
    chosen = [x for x in real_speech.all_lines(("fillets-nl",)) if x.split == "train"]
    out = []
    for line in real_speech.sample(chosen, lines):
        x = real_speech.load(line)
        if len(x) < LENGTH:
            x = np.pad(x, (0, LENGTH - len(x)))
        energy = np.convolve(x**2, np.ones(1600), mode="same")
        start = int(np.clip(int(energy.argmax()) - LENGTH // 2, 0, len(x) - LENGTH))
        window = x[start : start + LENGTH]
        out.append(np.clip(np.trunc(window * 32768.0), -32768, 32767).astype(np.int64))
    extra = clips()
    for name in ("speech_yes@+0dB", "speech_no@+0dB", "silence", "dither", "white@rms3"):
        out.append(extra[name].astype(np.int64))
    return np.stack(out)


def fit(lines: int) -> dict[str, Any]:
    network = load_h5(io.BytesIO(reference.h5_bytes()))
    conv, norm = network.body[0], network.body[1]
    assert isinstance(conv, torch.nn.Conv2d) and isinstance(norm, torch.nn.BatchNorm2d)
    assert norm.running_mean is not None and norm.running_var is not None
    target_mean = norm.running_mean.numpy().astype(np.float64)
    target_var = norm.running_var.numpy().astype(np.float64)
    bias = conv.bias.detach().numpy().astype(np.float64) if conv.bias is not None else 0.0
    pcm = torch.from_numpy(_windows(lines))
    candidates = {
        "nr_off_pcan_off": KWS_FRONTEND,
        "nr_on_pcan_off": dataclasses.replace(KWS_FRONTEND, noise_reduction_enable=True),
        "nr_on_pcan_on": dataclasses.replace(
            KWS_FRONTEND, noise_reduction_enable=True, pcan_enable=True
        ),
    }
    results: dict[str, Any] = {}
    for name, settings in candidates.items():
        with torch.no_grad():
            raw = jit.script(MicroFrontend(settings))(pcm).to(torch.float32)
            # conv without bias on the raw features: linear in the feature scale.
            response = torch.nn.functional.conv2d(
                raw.unsqueeze(1), conv.weight, None, stride=2, padding=(4, 1)
            )
        r = response.numpy().astype(np.float64)
        mean = r.mean(axis=(0, 2, 3))
        var = r.var(axis=(0, 2, 3))
        # moving_mean ~ s * mean + bias: least squares for s.
        scale_from_mean = float(((target_mean - bias) @ mean) / (mean @ mean))
        # moving_variance ~ s^2 * var: least squares in log space.
        scale_from_var = float(np.exp(0.5 * np.mean(np.log(target_var / var))))
        fitted_mean = scale_from_mean * mean + bias
        results[name] = {
            "scale_from_means": round(scale_from_mean, 4),
            "scale_from_variances": round(scale_from_var, 4),
            "mean_correlation": round(float(np.corrcoef(fitted_mean, target_mean)[0, 1]), 4),
            "log_variance_correlation": round(
                float(np.corrcoef(np.log(var), np.log(target_var))[0, 1]), 4
            ),
            "raw_feature_max": float(raw.max()),
            "raw_feature_mean": round(float(raw.mean()), 1),
        }
    return {
        "command": f"python -m recipes.speech_commands.dscnn.settings_fit --lines {lines}",
        "clips": int(pcm.shape[0]),
        "data": "fillets-nl:m (real_speech train split), one loudest 1.02 s window per line, "
        "+ the wheel's recorded yes/no, silence, dither, white noise rms 3",
        "tflite_input_range": "scale 0.881, zero point -128: 0 .. 224.7 (from the .tflite)",
        "candidates": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(2)
    result = fit(args.lines)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dscnn_settings_fit.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
