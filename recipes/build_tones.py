"""Build the `tones` test model into model_repository/tones/.

The model needs no training and no download: it is a fixed spectral classifier. A Hann
window over the whole input, a real FFT, the power summed in eight half-octave bands
centred on 250 Hz ... 2828 Hz, and logits = LOGIT_SCALE * log(band power + 1e-8). A pure
tone at a band centre scores >= 0.9 for its band after softmax.

Everything written is deterministic: running the recipe twice gives byte-identical
config.pbtxt, labels.txt and README.md, and a model.pt that computes identical outputs.

Usage: python recipes/build_tones.py [--repository model_repository]
"""

import argparse
import math
from pathlib import Path

import torch
from torch import Tensor, nn

from tritone_server.triton.model_config import TensorConfig, render_config
from tritone_server.triton.torchscript import quiet_torchscript

MODEL_NAME = "tones"
SAMPLE_RATE = 16_000
WINDOW_SAMPLES = 8_000
HOP_SAMPLES = 4_000
MAX_BATCH_SIZE = 64
BASE_HZ = 250.0
N_BANDS = 8
# Multiplies the natural log of band power. With 2, a band needs ~8x the power of every
# other band together to score 0.9 after softmax; a windowed pure tone has far more.
LOGIT_SCALE = 2.0
POWER_FLOOR = 1e-8

DESCRIPTION = (
    "Test model: which of eight half-octave frequency bands (centres 250, 354, 500, 707, "
    "1000, 1414, 2000, 2828 Hz) holds the most energy in a 16 kHz mono waveform. "
    "Hann window, real FFT, log band power. Built by recipes/build_tones.py."
)


def band_centres() -> list[float]:
    """Exact centres, half an octave apart: 250 * 2**(k/2)."""
    return [BASE_HZ * 2.0 ** (k / 2) for k in range(N_BANDS)]


def band_edges() -> list[float]:
    """N_BANDS + 1 edges: geometric midpoints between centres, a quarter octave outside."""
    return [BASE_HZ * 2.0 ** ((2 * k - 1) / 4) for k in range(N_BANDS + 1)]


def labels() -> list[str]:
    return [f"tone_{round(c)}" for c in band_centres()]


class ToneBands(nn.Module):
    """waveform FP32 [batch, samples] at 16 kHz -> logits FP32 [batch, 8]."""

    lower_hz: Tensor
    upper_hz: Tensor

    def __init__(self) -> None:
        super().__init__()
        edges = torch.tensor(band_edges(), dtype=torch.float64)
        self.register_buffer("lower_hz", edges[:-1].clone())
        self.register_buffer("upper_hz", edges[1:].clone())
        self.sample_rate = SAMPLE_RATE
        self.logit_scale = LOGIT_SCALE
        self.power_floor = POWER_FLOOR

    def forward(self, waveform: Tensor) -> Tensor:
        x = waveform.to(torch.float32)
        n = x.shape[-1]
        window = torch.hann_window(n, periodic=False, dtype=torch.float32, device=x.device)
        if n < 3:
            # A symmetric Hann window of length 1 or 2 is all zeros: keep the samples instead.
            window = torch.ones(n, dtype=torch.float32, device=x.device)
        spectrum = torch.fft.rfft(x * window, n=n, dim=-1)
        power = spectrum.real.square() + spectrum.imag.square()
        bins = torch.arange(power.shape[-1], dtype=torch.float64, device=x.device)
        freqs = (bins * (float(self.sample_rate) / float(n))).unsqueeze(1)
        mask = (freqs >= self.lower_hz.unsqueeze(0)) & (freqs < self.upper_hz.unsqueeze(0))
        # Mean power per sample, so that the level does not grow with the input length.
        band_power = torch.matmul(power, mask.to(torch.float32)) / float(n)
        return self.logit_scale * torch.log(band_power + self.power_floor)


def config_pbtxt() -> str:
    return render_config(
        MODEL_NAME,
        inputs=[TensorConfig("waveform", (-1,))],
        outputs=[TensorConfig("logits", (N_BANDS,), label_file=True)],
        parameters={
            "task": "audio-classification",
            "sample_rate": str(SAMPLE_RATE),
            "window_samples": str(WINDOW_SAMPLES),
            "hop_samples": str(HOP_SAMPLES),
            "activation": "softmax",
            "aggregation": "mean",
            "description": DESCRIPTION,
        },
        labels=labels(),
        max_batch_size=MAX_BATCH_SIZE,
    )


def readme() -> str:
    centres = ", ".join(f"{c:.1f}" for c in band_centres())
    edges = ", ".join(f"{e:.1f}" for e in band_edges())
    return f"""# tones

A test model for Tritone: it says which of eight frequency bands holds the most energy.
It needs no training data and no download, so the whole stack can be exercised anywhere.

- Task: audio-classification, activation softmax, {len(labels())} labels (labels.txt).
- Input `waveform`: FP32 [batch, samples], mono, {SAMPLE_RATE} Hz, any length >= 1
  (zero padding allowed). The gateway windows audio in {WINDOW_SAMPLES}-sample windows with
  a {HOP_SAMPLES}-sample hop.
- Output `logits`: FP32 [batch, {N_BANDS}]. Softmax of a pure tone at a band centre gives
  its band a score of at least 0.9.

## How it works

A symmetric Hann window over the whole input, a real FFT, power summed per band and divided
by the length, then `logits = {LOGIT_SCALE} * ln(band_power + {POWER_FLOOR})`. Silence gives
equal (finite) logits for every band.

- Band centres, half an octave apart (250 * 2^(k/2)): {centres} Hz.
- Band edges, the geometric midpoints between centres, the outer ones a quarter octave
  outside: {edges} Hz.

## How it is built

    python recipes/build_tones.py

The recipe is deterministic: it writes `config.pbtxt` (the production configuration:
`pytorch_libtorch`, GPU instance group, dynamic batching), `labels.txt`, this README and
`1/model.pt` (TorchScript, `torch.jit.script`), then checks that every band centre
classifies to its own label. The source is the `ToneBands` module in the recipe. Rebuilt
from the same checkout, every file is byte-identical; `model.pt` records the recipe's
path in its debug information, so a checkout elsewhere gives different bytes and the same
outputs.

## Licence

Apache-2.0, part of Tritone.
"""


def build(repository: Path) -> Path:
    model_dir = repository / MODEL_NAME
    (model_dir / "1").mkdir(parents=True, exist_ok=True)
    with quiet_torchscript():
        scripted = torch.jit.script(ToneBands().eval())
        torch.jit.save(scripted, str(model_dir / "1" / "model.pt"))
    (model_dir / "config.pbtxt").write_text(config_pbtxt(), encoding="utf-8")
    (model_dir / "labels.txt").write_text("\n".join(labels()) + "\n", encoding="utf-8")
    (model_dir / "README.md").write_text(readme(), encoding="utf-8")
    return model_dir


def self_check(model_dir: Path) -> None:
    """Load what was written and check that every band centre classifies to its label."""
    with quiet_torchscript():
        module = torch.jit.load(str(model_dir / "1" / "model.pt"), map_location="cpu")  # type: ignore[no-untyped-call]
    t = torch.arange(SAMPLE_RATE // 2, dtype=torch.float64) / SAMPLE_RATE
    tones = torch.stack([torch.sin(2 * math.pi * f * t) for f in band_centres()]).float()
    with torch.inference_mode():
        scores = torch.softmax(module(tones), dim=-1)
    best = scores.argmax(dim=-1).tolist()
    if best != list(range(N_BANDS)) or bool((scores.diagonal() < 0.9).any()):
        raise RuntimeError(f"self-check failed: scores {scores.diagonal().tolist()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--repository",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "model_repository",
        help="model repository to write into (default: the project's model_repository/)",
    )
    args = parser.parse_args()
    model_dir = build(args.repository)
    self_check(model_dir)
    print(f"wrote {model_dir}")


if __name__ == "__main__":
    main()
