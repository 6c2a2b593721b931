"""Who may import whom between the packages, read from the source with `ast` (nothing is
imported to check, and an import inside a function counts as much as one at the top).

    tritone_tools  ->  tritone (the SDK), tritone_server (the gateway)  ->  tritone_protos

- ``tritone_protos`` (generated from protos/) imports none of the others: it is the wire API
  both sides share.
- The SDK and the gateway import ``tritone_protos`` and not each other, nor the tools: the
  ``tritone`` console script finds ``serve``, ``train``, ``import-hf`` and ``evaluate``
  through the ``tritone.commands`` entry points, never by module name.
- ``tritone_tools`` (train, import-hf, evaluate) may import all three; no package imports
  the console script itself (``tritone.cli``): commands share ``tritone.cli_args`` instead.
- No package imports ``recipes`` (nor benchmarks, examples or the tests' support): those
  build models and measure with the packages, not the other way round.

(tests/unit/server/test_layering.py checks the layers inside the gateway.)
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _generated_protos() -> Path:
    spec = importlib.util.find_spec("tritone_protos")
    assert spec is not None and spec.submodule_search_locations, "run make install (protos)"
    return Path(next(iter(spec.submodule_search_locations)))


# Each package's folder and the other packages of this repository it may import.
PACKAGES: dict[str, tuple[Path, frozenset[str]]] = {
    "tritone_protos": (_generated_protos(), frozenset()),
    "tritone": (REPO / "client_sdk" / "tritone", frozenset({"tritone_protos"})),
    "tritone_server": (REPO / "server" / "tritone_server", frozenset({"tritone_protos"})),
    "tritone_tools": (
        REPO / "offline" / "tritone_tools",
        frozenset({"tritone", "tritone_server", "tritone_protos"}),
    ),
}
# Never imported by a package: the console script, and the folders that use the packages.
NOBODY_IMPORTS = ("tritone.cli", "recipes", "benchmarks", "examples", "support")


def imported_modules(path: Path) -> Iterator[str]:
    """Absolute module names `path` imports: import statements, and import_module("...")
    or __import__("...") calls with a literal name."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and node.args:
            func, first = node.func, node.args[0]
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            literal = first.value if isinstance(first, ast.Constant) else None
            if name in {"import_module", "__import__"} and isinstance(literal, str):
                yield literal


def within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def package_of(module: str) -> str:
    return module.split(".")[0]


def modules_of(package: str) -> list[Path]:
    folder = PACKAGES[package][0]
    modules = sorted(folder.rglob("*.py"))
    assert modules, f"expected the modules of {package} under {folder}"
    return modules


CASES = [(package, path) for package in PACKAGES for path in modules_of(package)]


def test_the_checker_sees_every_form_of_import(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "import recipes.a\n"
        "from recipes import b\n"
        "import importlib\n"
        "def lazy():\n"
        "    importlib.import_module('recipes.c')\n"
        "    __import__('recipes.d')\n"
        "from . import relative\n"
    )
    found = {m for m in imported_modules(source) if within(m, ("recipes",))}
    assert found == {"recipes.a", "recipes", "recipes.b", "recipes.c", "recipes.d"}


def test_the_allowed_imports_have_no_loop() -> None:
    # a package may import only packages listed before it: the table is its own topological order
    order = list(PACKAGES)
    for index, (package, (_, allowed)) in enumerate(PACKAGES.items()):
        assert allowed <= set(order[:index]), f"{package} may import {sorted(allowed)}"


@pytest.mark.parametrize(("package", "path"), CASES, ids=[f"{p}/{path.name}" for p, path in CASES])
def test_packages_import_only_the_packages_below_them(package: str, path: Path) -> None:
    allowed = PACKAGES[package][1] | {package}
    ours = tuple(PACKAGES)
    imported = set(imported_modules(path))
    wrong = sorted(m for m in imported if within(m, ours) and package_of(m) not in allowed)
    wrong += sorted(m for m in imported if within(m, NOBODY_IMPORTS))
    assert wrong == [], f"{package}: {path.name} imports {wrong}"
