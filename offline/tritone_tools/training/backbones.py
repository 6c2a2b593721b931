"""Backbones a head is trained on, loaded in-process from the model repository.

- ``speaker-embedding``: ``<repository>/speaker-embedding/1/model.pt`` itself, the same
  TorchScript file the server runs: waveform [B, N] (whole clip) -> unit-norm [B, 256].
  The trained model sees the whole clip (``window_samples`` 0).
- ``speech-commands``: the openwakeword speech embedding (mel front end + Google's
  speech_embedding conv net, ported to torch in training/openwakeword.py): 1 s of audio
  (16000 samples, shorter zero-padded, longer cut) -> [B, 3, 96], flattened to [B, 288].
  The trained model is windowed like speech-commands: 16000-sample windows, 8000 hop, the
  window scores averaged by the gateway. The backbone is taken from
  ``<repository>/speech-commands/1/model.pt`` when that TorchScript file exposes it (a
  ``backbone`` submodule or an ``embed`` method); otherwise it is rebuilt from the port's
  torch modules (`tritone_tools.training.openwakeword.load_backbone`, which reads the ONNX
  files of the installed openwakeword==0.4.0 wheel, no download).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from tritone_server.triton.torchscript import quiet_torchscript as quiet_jit
from tritone_tools.training import openwakeword

__all__ = ["BACKBONES", "Backbone", "BackboneError", "load_backbone", "quiet_jit"]

BACKBONES = ("speech-commands", "speaker-embedding")
SPEECH_COMMANDS_SAMPLES = 16_000


class BackboneError(RuntimeError):
    """The backbone cannot be found or loaded."""


@dataclass(frozen=True)
class Backbone:
    """A feature extractor and how the trained model is served on top of it."""

    name: str
    module: nn.Module
    """waveform FP32 [B, window_samples or N] -> features FP32 [B, dim]; scriptable."""
    dim: int
    sample_rate: int
    window_samples: int
    """0: the whole clip is one window."""
    hop_samples: int
    max_batch_size: int
    source: str
    """Where the weights came from, for the model card."""


class FixedLengthFeatures(nn.Module):
    """Pads or cuts to `samples`, runs a [B, samples] -> [B, W, D] backbone, flattens."""

    def __init__(self, backbone: nn.Module, samples: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.samples = samples

    def forward(self, waveform: Tensor) -> Tensor:
        x = waveform.to(torch.float32)
        n = x.shape[-1]
        if n < self.samples:
            x = torch.nn.functional.pad(x, (0, self.samples - n))
        elif n > self.samples:
            x = x[:, : self.samples]
        out: Tensor = self.backbone(x)
        return out.flatten(1)


class EmbedMethod(nn.Module):
    """Adapts a TorchScript module's ``embed`` method to a forward."""

    def __init__(self, module: Any) -> None:
        super().__init__()
        self.inner = module

    def forward(self, waveform: Tensor) -> Tensor:
        out: Tensor = self.inner.embed(waveform)
        return out


def _load_torchscript(path: Path) -> Any:
    if not path.is_file():
        raise BackboneError(f"{path} is missing: the backbone's TorchScript file is needed")
    with quiet_jit():
        module = torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call]
    module.eval()
    return module


def _speaker_embedding(repository: Path) -> Backbone:
    path = repository / "speaker-embedding" / "1" / "model.pt"
    module = _load_torchscript(path)
    with torch.inference_mode():
        dim = int(module(torch.zeros(1, 16_000)).shape[-1])
    return Backbone(
        name="speaker-embedding",
        module=module,
        dim=dim,
        sample_rate=16_000,
        window_samples=0,
        hop_samples=0,
        max_batch_size=16,
        source=f"`{path.name}` of the `speaker-embedding` model (Resemblyzer 0.1.4 encoder)",
    )


def _port_backbone() -> nn.Module:
    """The openwakeword port rebuilt from the installed wheel's ONNX weights."""
    try:
        module: nn.Module = openwakeword.load_backbone()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise BackboneError(f"cannot build the speech-commands backbone: {exc}") from exc
    return module


def _speech_commands(repository: Path) -> Backbone:
    path = repository / "speech-commands" / "1" / "model.pt"
    inner: nn.Module | None = None
    source = ""
    if path.is_file():
        scripted = _load_torchscript(path)
        if hasattr(scripted, "backbone"):
            inner, source = scripted.backbone, f"the `backbone` submodule of `{path}`"
        elif hasattr(scripted, "embed"):
            inner, source = EmbedMethod(scripted), f"the `embed` method of `{path}`"
    if inner is None:
        inner = _port_backbone()
        source = (
            "openwakeword==0.4.0's melspectrogram + speech embedding, ported to torch by "
            "tritone_tools/training/openwakeword.py"
        )
    module = FixedLengthFeatures(inner, SPEECH_COMMANDS_SAMPLES).eval()
    with torch.inference_mode():
        dim = int(module(torch.zeros(1, SPEECH_COMMANDS_SAMPLES)).shape[-1])
    return Backbone(
        name="speech-commands",
        module=module,
        dim=dim,
        sample_rate=16_000,
        window_samples=SPEECH_COMMANDS_SAMPLES,
        hop_samples=SPEECH_COMMANDS_SAMPLES // 2,
        max_batch_size=64,
        source=source,
    )


def load_backbone(name: str, repository: Path) -> Backbone:
    if name == "speaker-embedding":
        return _speaker_embedding(repository)
    if name == "speech-commands":
        return _speech_commands(repository)
    raise BackboneError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
