"""A prepared clip cut into a model's windows: the length check, context zeros, framing.

The DataPlane prepares audio once (mono at the model's rate, `audio.decode_pool`), cuts it
here, and hands Inference the windows only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tritone_server.audio.dsp import frame_windows
from tritone_server.core.models import ModelSpec
from tritone_server.core.scoring import FloatArray
from tritone_server.errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class ClipWindows:
    windows: FloatArray
    """[n, window] float32 (one row holding the whole clip for a model without windows)."""
    starts: tuple[int, ...]
    """Start of each window, counting the context zeros."""
    samples: int
    """Samples of the clip at the model's rate."""
    context: int
    """Zeros put before the clip for a model with context_samples."""


def frame_clip(spec: ModelSpec, mono: FloatArray, duration_s: float | None = None) -> ClipWindows:
    """The windows `spec` classifies for a mono clip at its rate; InvalidRequest if the clip
    is shorter than the model accepts."""
    samples = int(mono.shape[0])
    if samples < spec.min_samples:
        seconds = samples / spec.sample_rate if duration_s is None else duration_s
        raise InvalidRequest(
            f"the audio is {seconds:.4f} s ({samples} samples at "
            f"{spec.sample_rate} Hz); model {spec.name!r} needs at least "
            f"{spec.min_samples} samples ({spec.min_samples / spec.sample_rate:.4f} s)"
        )
    if spec.context_samples:
        padded = np.zeros(spec.context_samples + samples, dtype=np.float32)
        padded[spec.context_samples :] = mono
        mono = padded
    windows, starts = frame_windows(mono, spec.window_samples, spec.hop_samples)
    return ClipWindows(windows, tuple(starts), samples, spec.context_samples)
