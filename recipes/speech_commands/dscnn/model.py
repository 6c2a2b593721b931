"""The served graph: waveform in [-1, 1] -> the DS-CNN's 12 logits, all in TorchScript.

The waveform becomes int16 as mltk feeds its front end (x * 32768, truncated toward zero;
clamped here, where the C cast would wrap). The network sees 50 frames, which TFLM makes
from 16320 samples; a window shorter than that is left-padded with zeros, a longer one is
cut to its last 16320 samples, so a 1 s window gets 320 leading zeros (settings.py says why).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from recipes.speech_commands.dscnn.frontend import MicroFrontend
from recipes.speech_commands.dscnn.network import DSCNN
from recipes.speech_commands.dscnn.settings import FEATURE_SCALE, FrontendSettings

__all__ = ["KeywordSpotter", "to_int16"]


def to_int16(waveform: Tensor) -> Tensor:
    """float [-1, 1] -> int16 values as int64."""
    return torch.trunc(waveform.to(torch.float64) * 32768.0).clamp(-32768, 32767).to(torch.int64)


class KeywordSpotter(nn.Module):
    """waveform FP32 [batch, samples] at 16 kHz -> logits [batch, 12]."""

    def __init__(self, settings: FrontendSettings, network: DSCNN) -> None:
        super().__init__()
        self.frontend = MicroFrontend(settings)
        self.network = network
        self.samples = settings.sample_length
        self.scale = FEATURE_SCALE

    def features(self, waveform: Tensor) -> Tensor:
        """The network's input [batch, 50, 10]: frontend output * FEATURE_SCALE."""
        x = to_int16(waveform)
        short = self.samples - x.shape[1]
        if short > 0:
            x = torch.cat([torch.zeros(x.shape[0], short, dtype=x.dtype, device=x.device), x], 1)
        x = x[:, x.shape[1] - self.samples :]
        raw: Tensor = self.frontend(x)
        return raw.to(torch.float32) * self.scale

    def forward(self, waveform: Tensor) -> Tensor:
        logits: Tensor = self.network(self.features(waveform))
        return logits
