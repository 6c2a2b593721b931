"""The gateway's floor plan holds: imports point down the stack, and there are no cycles.

Front ends -> core -> audio / triton; `errors` is a leaf. Read from the source with `ast`, so
a lazy import inside a function counts too. (tests/unit/test_import_boundaries.py checks
the packages around it: the gateway imports the generated `tritone_protos` and neither the
SDK, the offline tools, the CLI nor recipes/.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[3] / "server" / "tritone_server"

# Which subpackages each layer may import from (besides itself and the top-level leaves).
LEAVES = {"errors", "settings", "metrics"}
ALLOWED = {
    "frontends": {"core", "audio", "triton"},
    "core": {"audio", "triton"},
    "audio": set(),
    "triton": set(),
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                # `from package import submodule` depends on the submodule, not on whatever
                # the package's __init__ imports
                found.add(submodule if submodule in NAMES else node.module)
    return found


PATHS = sorted(PACKAGE.rglob("*.py"))
NAMES = {_module_name(p) for p in PATHS}
MODULES = {_module_name(p): _imports(p) for p in PATHS}


def _internal(imports: set[str]) -> set[str]:
    """The tritone_server modules among `imports`."""
    return {name for name in imports if name in MODULES and name != "tritone_server"}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_modules_were_found() -> None:
    assert "tritone_server.core.dataplane" in MODULES
    assert "tritone_server.audio.decode_pool" in MODULES


def test_errors_is_a_leaf() -> None:
    imports = MODULES["tritone_server.errors"]
    assert not {name for name in imports if name.split(".")[0] in {"grpc", "tritone_server"}}
    assert not {name for name in imports if name.split(".")[0] in {"soundfile", "soxr", "numpy"}}


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_imports_point_down_the_stack(layer: str) -> None:
    wrong = []
    for module, imports in MODULES.items():
        if _layer(module) != layer:
            continue
        for target in _internal(imports):
            target_layer = _layer(target)
            if target_layer in ("", layer) or target_layer in LEAVES:
                continue
            if target_layer not in ALLOWED[layer]:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_the_import_graph_has_no_cycles() -> None:
    graph = {module: _internal(imports) for module, imports in MODULES.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycle = [*path[path.index(target) :], target] if target in path else [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
