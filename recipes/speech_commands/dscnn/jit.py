"""TorchScript with torch 2.13's deprecation warnings silenced: Triton's libtorch backend
serves TorchScript, so this recipe keeps writing it (the suite turns warnings into errors)."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

__all__ = ["load", "script"]


def script(module: torch.nn.Module) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        scripted: torch.jit.ScriptModule = torch.jit.script(module)
    return scripted


def load(path: Path) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        loaded: torch.jit.ScriptModule = torch.jit.load(  # type: ignore[no-untyped-call]
            str(path), map_location="cpu"
        )
    return loaded
