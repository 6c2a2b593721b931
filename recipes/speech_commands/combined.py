"""One TorchScript graph that runs both keyword spotters and combines their scores.

waveform FP32 [batch, samples] at 16 kHz in [-1, 1] -> logits FP32 [batch, 12] = the log of
the combined probability (so the gateway's softmax gives that probability back). Inside:
the served ``speech-commands`` graph (openwakeword embedding + synthetic-voice head) and the
DS-CNN of ``speech-commands-dscnn`` (TFLM front end, feature scale as chosen on validation),
each with its own softmax, then one rule of compare.py (``combine``, the numpy reference
this graph is checked against):
- ``average``: (d + h) / 2; ``product``: d * h renormalised;
- ``agreement``: (d + h) / 2, a command kept only where it is the top label of both;
- ``dscnn_verified_by_head`` / ``head_verified_by_dscnn``: the first model's scores, a
  command kept only where the second gives it at least ``verify``.
A command that is not kept gives its probability to ``unknown``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["Combined"]

UNKNOWN = 10


class Combined(nn.Module):
    def __init__(
        self,
        head: nn.Module,
        frontend: nn.Module,
        network: nn.Module,
        scale: float,
        rule: str,
        verify: float,
    ) -> None:
        super().__init__()
        self.head = head  # the speech-commands graph: waveform -> logits
        self.frontend = frontend  # TFLM front end: int16 [B, 16320] -> [B, 50, 10]
        self.network = network  # DS-CNN: features -> logits
        self.scale = scale
        self.rule = rule
        self.verify = verify
        self.samples = 16320
        self.unknown = UNKNOWN

    def dscnn_probabilities(self, waveform: Tensor) -> Tensor:
        x = torch.trunc(waveform.to(torch.float64) * 32768.0).clamp(-32768, 32767)
        x = x.to(torch.int64)
        short = self.samples - x.shape[1]
        if short > 0:
            x = torch.cat([torch.zeros(x.shape[0], short, dtype=x.dtype, device=x.device), x], 1)
        x = x[:, x.shape[1] - self.samples :]
        features = self.frontend(x).to(torch.float32) * self.scale
        logits: Tensor = self.network(features)
        return torch.softmax(logits, dim=1)

    def _veto(self, p: Tensor, keep: Tensor) -> Tensor:
        commands = p[:, : self.unknown]
        kept = torch.where(keep, commands, torch.zeros_like(commands))
        moved = (commands - kept).sum(dim=1, keepdim=True)
        rest = p[:, self.unknown :]
        unknown = rest[:, :1] + moved
        return torch.cat([kept, unknown, rest[:, 1:]], dim=1)

    def forward(self, waveform: Tensor) -> Tensor:
        w = waveform.to(torch.float32)
        h = torch.softmax(self.head(w), dim=1)
        d = self.dscnn_probabilities(w)
        if self.rule == "average":
            p = (d + h) / 2
        elif self.rule == "product":
            q = d.to(torch.float64) * h.to(torch.float64)
            p = (q / q.sum(dim=1, keepdim=True).clamp_min(1e-30)).to(torch.float32)
        elif self.rule == "agreement":
            index = torch.arange(self.unknown, device=w.device)
            top_d = d.argmax(dim=1, keepdim=True)
            top_h = h.argmax(dim=1, keepdim=True)
            keep = (top_d == index) & (top_h == index)
            p = self._veto((d + h) / 2, keep)
        elif self.rule == "dscnn_verified_by_head":
            p = self._veto(d, h[:, : self.unknown] >= self.verify)
        else:  # head_verified_by_dscnn
            p = self._veto(h, d[:, : self.unknown] >= self.verify)
        return torch.log(p.clamp_min(1e-12))
