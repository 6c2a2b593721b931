"""Feature extraction in torch, matching the Hugging Face feature extractors numerically.

Each front end takes the raw mono waveform, FP32 [batch, samples] at the extractor's rate,
and returns exactly what the corresponding extractor gives the model for one unpadded clip:

- `UtteranceNormalizer`: Wav2Vec2FeatureExtractor (wav2vec2, HuBERT, WavLM): zero mean and
  unit variance per utterance when ``do_normalize``, else the waveform unchanged.
- `WhisperLogMel`: WhisperFeatureExtractor: pad (or cut) to ``chunk_length`` seconds, STFT
  (periodic Hann, reflect-centred), power, the extractor's own mel filters, log10, clamp to
  8 below each clip's maximum, then ``(x + 4) / 4``.
- `KaldiFbank`: ASTFeatureExtractor (its torchaudio Kaldi path and its numpy fallback agree):
  25 ms frames every 10 ms without padding at the edges, DC removed per frame, pre-emphasis
  0.97, symmetric Hann window, 512-point FFT power, Kaldi mel filters, natural log with
  float32 epsilon as the floor (computed in float64 up to the log, like the numpy
  extractor), padded with zeros or cut to ``max_length`` frames, then
  ``(x - mean) / (2 * std)``.

Every constant (windows, mel filters) is a buffer computed at export time, and nothing here
names a device, so a module traced on CPU runs unchanged on GPU. Shapes depend only on the
input's shape, so `torch.jit.trace` keeps them dynamic.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn
from torch.nn import functional

__all__ = ["KaldiFbank", "UtteranceNormalizer", "WhisperLogMel"]

# Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm adds this to the variance.
NORMALIZE_EPSILON = 1e-7
# The log floor of Kaldi fbank (torch.finfo(torch.float32).eps), as ASTFeatureExtractor uses.
KALDI_LOG_FLOOR = float(np.finfo(np.float32).eps)
WHISPER_LOG_FLOOR = 1e-10
WHISPER_DYNAMIC_RANGE = 8.0


def _buffer(array: npt.ArrayLike, dtype: torch.dtype = torch.float32) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.asarray(array, dtype=np.float64))).to(dtype)


class UtteranceNormalizer(nn.Module):
    """Zero mean, unit variance over each row (population variance, epsilon 1e-7)."""

    def __init__(self, do_normalize: bool = True) -> None:
        super().__init__()
        self.do_normalize = do_normalize

    def forward(self, waveform: Tensor) -> Tensor:
        x = waveform.to(torch.float32)
        if not self.do_normalize:
            return x
        mean = x.mean(dim=-1, keepdim=True)
        centred = x - mean
        variance = centred.square().mean(dim=-1, keepdim=True)
        return centred / torch.sqrt(variance + NORMALIZE_EPSILON)


class WhisperLogMel(nn.Module):
    """Whisper's log-mel features: [batch, samples] -> [batch, n_mels, n_samples // hop]."""

    window: Tensor
    mel_filters: Tensor

    def __init__(
        self,
        mel_filters: npt.ArrayLike,
        *,
        n_fft: int = 400,
        hop_length: int = 160,
        n_samples: int = 480_000,
    ) -> None:
        super().__init__()
        filters = _buffer(mel_filters)
        if filters.ndim != 2 or filters.shape[0] != n_fft // 2 + 1:
            raise ValueError(
                f"mel filters of shape {tuple(filters.shape)} do not fit n_fft {n_fft}: "
                f"expected ({n_fft // 2 + 1}, n_mels)"
            )
        # [n_mels, n_freq], contiguous: the matmul below runs on the fast path.
        self.register_buffer("mel_filters", filters.T.contiguous())
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True))
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.n_samples = n_samples

    @property
    def n_mels(self) -> int:
        return int(self.mel_filters.shape[0])

    def forward(self, waveform: Tensor) -> Tensor:
        n = self.n_samples
        x = waveform.to(torch.float32)[:, :n]
        # Pad by a constant and cut back: the shapes stay the same for every input length.
        x = functional.pad(x, (0, n))[:, :n]
        stft = torch.stft(
            x,
            self.n_fft,
            self.hop_length,
            window=self.window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )
        power = stft[..., :-1].abs() ** 2
        mel = torch.matmul(self.mel_filters, power)
        log_spec = torch.clamp(mel, min=WHISPER_LOG_FLOOR).log10()
        peak = log_spec.amax(dim=(1, 2), keepdim=True)
        log_spec = torch.maximum(log_spec, peak - WHISPER_DYNAMIC_RANGE)
        return (log_spec + 4.0) / 4.0


class KaldiFbank(nn.Module):
    """AST's Kaldi-style fbank: [batch, samples] -> [batch, max_length, n_mels]."""

    window: Tensor
    mel_filters: Tensor

    def __init__(
        self,
        mel_filters: npt.ArrayLike,
        window: npt.ArrayLike,
        *,
        max_length: int,
        mean: float,
        std: float,
        do_normalize: bool = True,
        frame_length: int = 400,
        frame_shift: int = 160,
        fft_length: int = 512,
        preemphasis: float = 0.97,
    ) -> None:
        super().__init__()
        filters = _buffer(mel_filters, torch.float64)
        if filters.ndim != 2 or filters.shape[0] != fft_length // 2 + 1:
            raise ValueError(
                f"mel filters of shape {tuple(filters.shape)} do not fit fft_length "
                f"{fft_length}: expected ({fft_length // 2 + 1}, n_mels)"
            )
        window_tensor = _buffer(window, torch.float64)
        if window_tensor.shape != (frame_length,):
            raise ValueError(f"the window must have {frame_length} samples")
        self.register_buffer("mel_filters", filters)
        self.register_buffer("window", window_tensor)
        self.max_length = max_length
        self.mean = float(mean)
        self.std = float(std)
        self.do_normalize = do_normalize
        self.frame_length = frame_length
        self.frame_shift = frame_shift
        self.fft_length = fft_length
        self.preemphasis = float(preemphasis)

    @property
    def n_mels(self) -> int:
        return int(self.mel_filters.shape[1])

    def forward(self, waveform: Tensor) -> Tensor:
        # Float64 up to the log, as the numpy extractor computes (float32 costs ~3e-5 on
        # quiet bins); the front end is a negligible part of the model's work.
        x = waveform.to(torch.float64)
        # [batch, frames, frame_length]; frames = 1 + (samples - frame_length) // shift.
        frames = x.unfold(-1, self.frame_length, self.frame_shift)
        frames = frames - frames.mean(dim=-1, keepdim=True)
        # Kaldi's pre-emphasis: the first sample is emphasised against itself.
        frames = torch.cat(
            [
                frames[..., :1] * (1.0 - self.preemphasis),
                frames[..., 1:] - self.preemphasis * frames[..., :-1],
            ],
            dim=-1,
        )
        spectrum = torch.fft.rfft(frames * self.window, n=self.fft_length, dim=-1)
        power = spectrum.abs() ** 2
        mel = torch.matmul(power, self.mel_filters)
        fbank = torch.clamp(mel, min=KALDI_LOG_FLOOR).log().to(torch.float32)
        # Zero frames after the clip (before normalisation, as the extractor pads), or cut.
        fbank = functional.pad(fbank, (0, 0, 0, self.max_length))[:, : self.max_length]
        if self.do_normalize:
            fbank = (fbank - self.mean) / (self.std * 2.0)
        return fbank
