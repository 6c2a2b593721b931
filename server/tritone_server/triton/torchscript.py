"""TorchScript as the model repository holds it: the checks on its files, and the one
filter for torch's deprecation of it.

A model must run wherever Triton puts it: a device written into the graph as a constant (a
CPU trace records one for every tensor it creates) would pin it there. Recipes, ``tritone
train``, ``tritone import-hf`` and the repository tests all check with ``device_constants``,
and script, trace, save and load inside ``quiet_torchscript``.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def quiet_torchscript() -> Iterator[None]:
    """torch.jit (script, trace, save, load) without torch's deprecation warnings.

    torch >= 2.10 deprecates TorchScript for torch.export, yet Triton's libtorch backend
    serves TorchScript only, so every model here is written and read with it: the warning
    says nothing a builder can act on (and the test suite turns warnings into errors). Only
    that deprecation is hidden; any other warning still shows.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"`torch\.jit\.\w+` is deprecated", DeprecationWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.jit")
        yield


def _walk(block: torch._C.Block) -> Iterator[torch._C.Node]:
    for node in block.nodes():
        yield node
        for inner in node.blocks():
            yield from _walk(inner)


def device_constant_nodes(graph: torch._C.Graph) -> list[torch._C.Node]:
    return [
        node
        for node in _walk(graph.block())
        if node.kind() == "prim::Constant" and node.output().type().kind() == "DeviceObjType"
    ]


_DEVICE_IN_CODE = re.compile(r"torch\.device\(|\"(?:cpu|cuda|mps|meta)(?::\d+)?\"")


def device_constants(module: torch.jit.ScriptModule) -> list[str]:
    """Every device the module's code or graphs name as a constant (must be empty)."""
    found: list[str] = []
    for name, submodule in module.named_modules():
        if not isinstance(submodule, torch.jit.ScriptModule):
            continue
        try:
            graph, code = submodule.graph, submodule.code
        except RuntimeError:  # a container (ModuleList, ...) has no forward of its own
            continue
        where = name or "forward"
        found += [f"{where}: {node}".strip() for node in device_constant_nodes(graph)]
        found += [
            f"{where}: {line.strip()}" for line in code.splitlines() if _DEVICE_IN_CODE.search(line)
        ]
    return found
