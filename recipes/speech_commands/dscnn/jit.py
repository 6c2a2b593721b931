"""TorchScript for this recipe, inside the one filter for torch's deprecation of it
(`quiet_torchscript`): Triton's libtorch backend serves TorchScript."""

from __future__ import annotations

from pathlib import Path

import torch

from tritone_server.triton.torchscript import quiet_torchscript

__all__ = ["load", "script"]


def script(module: torch.nn.Module) -> torch.jit.ScriptModule:
    with quiet_torchscript():
        scripted: torch.jit.ScriptModule = torch.jit.script(module)
    return scripted


def load(path: Path) -> torch.jit.ScriptModule:
    with quiet_torchscript():
        loaded: torch.jit.ScriptModule = torch.jit.load(  # type: ignore[no-untyped-call]
            str(path), map_location="cpu"
        )
    return loaded
