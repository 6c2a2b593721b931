"""A float64 reference for the `tritone import-hf` parity tests, and the tolerance to use.

Why float64: the exported model and transformers' own model both run in float32, and each
sums in an order that depends on the CPU's vector width and on the thread count. Compared
with each other, two rounding errors are compared; on the tiny checkpoints (whose heads are
calibrated to spread their logits, so they amplify rounding: Whisper mean-pools 1500
frames that are mostly padding) that reached 1.8e-4 in logits on one machine and 1e-5 on
another. Against a float64 run of the same model on the same features, the float32
transformers model's own error says how well-conditioned this model is on this machine, and
the export is held to a small multiple of it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from tritone_tools.hf_import.checkpoint import load_checkpoint
from tritone_tools.hf_import.quiet import quiet_extractor_warnings

FloatArray = npt.NDArray[np.float32]

ROUNDING_FACTOR = 8.0
"""How many times the float32 transformers model's own error the export may have: a
different summation order (fused, frozen graph) gives an error of the same size, rarely
more than about twice; eight leaves room for every CPU and thread count."""
RELATIVE_FLOOR = 2e-5
"""Relative to the largest |logit|, for well-conditioned models whose own float32 error is
near float32's resolution (1.2e-7 per operation, a few hundred operations deep)."""


@dataclass(frozen=True)
class Reference:
    float32: FloatArray
    """transformers' model as shipped (float32) on its own extractor's features."""
    float64: npt.NDArray[np.float64]
    """The same model and features in float64: the value both float32 runs approximate."""

    @property
    def tolerance(self) -> float:
        """Largest |logit error| accepted for a float32 export of this model on these clips."""
        own = float(np.abs(self.float32 - self.float64).max())
        scale = max(1.0, float(np.abs(self.float64).max()))
        return ROUNDING_FACTOR * own + RELATIVE_FLOOR * scale

    def check(self, got: FloatArray) -> float:
        """Assert ``got`` is within `tolerance` of the float64 reference; returns the error."""
        assert got.shape == self.float64.shape
        error = float(np.abs(got.astype(np.float64) - self.float64).max())
        assert error <= self.tolerance, (
            f"max |logit - float64 reference| {error:.3g} > tolerance {self.tolerance:.3g} "
            f"(transformers' own float32 error "
            f"{float(np.abs(self.float32 - self.float64).max()):.3g})"
        )
        return error


def reference_logits(
    checkpoint_dir: Path, audio: FloatArray, sample_rate: int = 16_000
) -> Reference:
    """The transformers model on what its own feature extractor makes, clip by clip."""
    checkpoint = load_checkpoint(checkpoint_dir)
    model32 = checkpoint.model
    model64 = load_checkpoint(checkpoint_dir).model.double()
    rows32, rows64 = [], []
    for clip in np.atleast_2d(audio):
        with quiet_extractor_warnings():
            features = checkpoint.feature_extractor(  # type: ignore[operator]
                clip, sampling_rate=sample_rate, return_tensors="pt"
            )
        features.pop("attention_mask", None)
        with torch.inference_mode():
            rows32.append(model32(**features).logits.numpy())
            doubled = {key: value.double() for key, value in features.items()}
            rows64.append(model64(**doubled).logits.numpy())
    return Reference(np.concatenate(rows32), np.concatenate(rows64))


def threads_for_tests() -> int:
    """Torch threads for these tests: $OMP_NUM_THREADS when set (so the suite can be run at
    several thread counts to show the tolerances hold), else one (the machine is shared and
    the models are tiny: a second thread mostly spins)."""
    configured = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(configured) if configured.isdigit() and int(configured) > 0 else 1
