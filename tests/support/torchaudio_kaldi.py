"""A stand-in for ``torchaudio.compliance.kaldi.fbank``, for ASTFeatureExtractor's other path.

With torchaudio installed, transformers' ASTFeatureExtractor computes its fbank with
``torchaudio.compliance.kaldi.fbank(waveform, sample_frequency=..., window_type="hanning",
num_mel_bins=...)`` instead of its numpy code, and keeps no mel filters or window. The
project may not install torchaudio, so the tests run that branch of the extractor with this
function in torchaudio's place. It follows torchaudio's algorithm and defaults as torchaudio
documents and implements them (read from its source, written here independently): all in
the waveform's dtype (float32), no dither, frames of 25 ms every 10 ms that fit whole
(``snip_edges``), each frame's mean removed, pre-emphasis 0.97 with the first sample
against itself, a symmetric Hann window, zero-padded to 512 points, power spectrum, Kaldi
mel triangles (mel = 1127 ln(1 + f / 700)) from 20 Hz to Nyquist built in float32 over the
256 bins below Nyquist with a zero weight for the Nyquist bin, then ln(max(energy, float32
epsilon)). It differs from the numpy path in precision (float32 against float64) and in how
the filters are built, which is what the test is for.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["fbank", "supported_call"]

_EPSILON = torch.finfo(torch.float32).eps


def _mel(hz: Tensor) -> Tensor:
    return 1127.0 * torch.log1p(hz / 700.0)


def _filters(num_bins: int, fft_points: int, rate: float, low: float, high: float) -> Tensor:
    """[num_bins, fft_points // 2 + 1] float32 triangles, flat in mel, Nyquist weight 0."""
    below_nyquist = fft_points // 2
    bin_hz = rate / fft_points
    low_mel = 1127.0 * math.log(1.0 + low / 700.0)
    high_mel = 1127.0 * math.log(1.0 + high / 700.0)
    step = (high_mel - low_mel) / (num_bins + 1)
    index = torch.arange(num_bins, dtype=torch.float32).unsqueeze(1)
    left = low_mel + index * step
    centre = left + step
    right = centre + step
    mel = _mel(bin_hz * torch.arange(below_nyquist, dtype=torch.float32)).unsqueeze(0)
    rising = (mel - left) / (centre - left)
    falling = (right - mel) / (right - centre)
    weights = torch.clamp(torch.minimum(rising, falling), min=0.0)
    return torch.cat([weights, torch.zeros(num_bins, 1)], dim=1)


def supported_call(**kwargs: object) -> None:
    """The stand-in covers the call transformers makes, nothing else: fail loudly otherwise."""
    allowed = {"sample_frequency", "window_type", "num_mel_bins"}
    unexpected = set(kwargs) - allowed
    if unexpected or kwargs.get("window_type") != "hanning":
        raise AssertionError(
            f"transformers calls kaldi.fbank differently now ({kwargs!r}): update the stand-in"
        )


def fbank(waveform: Tensor, **kwargs: object) -> Tensor:
    """[1, samples] -> [frames, num_mel_bins], as torchaudio computes it for these options."""
    supported_call(**kwargs)
    rate = float(kwargs.get("sample_frequency", 16_000.0))  # type: ignore[arg-type]
    num_bins = int(kwargs["num_mel_bins"])  # type: ignore[call-overload]
    x = waveform[0]
    size = int(rate * 0.025)
    shift = int(rate * 0.010)
    fft_points = 1 << (size - 1).bit_length()
    if len(x) < size:
        raise AssertionError("torchaudio refuses input shorter than one frame")
    count = 1 + (len(x) - size) // shift
    frames = torch.stack([x[i * shift : i * shift + size] for i in range(count)])
    frames = frames - frames.mean(dim=1, keepdim=True)
    previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
    frames = frames - 0.97 * previous
    frames = frames * torch.hann_window(size, periodic=False, dtype=frames.dtype)
    frames = torch.nn.functional.pad(frames, (0, fft_points - size))
    power = torch.fft.rfft(frames).abs().pow(2.0)
    weights = _filters(num_bins, fft_points, rate, 20.0, rate / 2).to(frames.dtype)
    energies = power @ weights.T
    return torch.clamp(energies, min=_EPSILON).log()
