"""The deterministic clip the import traces on and measures with.

One signal serves the trace's example input, the trace checks and the parity checks (and the
tiny test checkpoints' calibration), so all of them exercise the same broad-band content: a
chirp reaches every mel band, a burst gives onsets, noise fills the rest.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["FloatArray", "parity_signal"]

FloatArray = npt.NDArray[np.float32]


def parity_signal(seconds: float, sample_rate: int = 16_000, seed: int = 0) -> FloatArray:
    """A deterministic test clip: a rising chirp, a tone burst and noise, peak about 0.6."""
    n = max(1, round(seconds * sample_rate))
    t = np.arange(n, dtype=np.float64) / sample_rate
    rng = np.random.default_rng(seed)
    f0, f1 = 150.0 + 50.0 * seed, 5000.0
    chirp = np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * max(seconds, 1e-3))))
    burst = np.sin(2 * np.pi * 880.0 * t) * (np.sin(2 * np.pi * 1.5 * t) > 0.3)
    noise = rng.standard_normal(n)
    clip: FloatArray = (0.3 * chirp + 0.2 * burst + 0.1 * noise).astype(np.float32)
    return clip
