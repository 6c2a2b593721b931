"""Checks on the TorchScript files a model repository holds.

A model must run wherever Triton puts it: a device written into the graph as a constant (a
CPU trace records one for every tensor it creates) would pin it there. Recipes, ``tritone
train``, ``tritone import-hf`` and the repository tests all check with ``device_constants``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import torch


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
