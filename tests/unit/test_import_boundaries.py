"""Who may import whom, read from the source with `ast` (nothing is imported to check).

- Nothing under server/tritone_server imports ``recipes``: what serving or training runs is
  in the installed package; recipes/ only build models (they import the package, not back).
- The gateway and training import no SDK command-line module (``tritone.cli``,
  ``tritone.evaluate``, ``tritone._cli_args``): they share the SDK's libraries
  (``tritone.datasets``, ``tritone.metrics``) instead.
- ``tritone.cli`` and ``tritone.evaluate`` do not import each other; both take their
  connection arguments from ``tritone._cli_args``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVER = REPO / "server" / "tritone_server"
SDK = REPO / "client_sdk" / "tritone"
SDK_COMMANDS = ("tritone.cli", "tritone.evaluate", "tritone._cli_args")


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


def server_modules() -> list[Path]:
    modules = sorted(SERVER.rglob("*.py"))
    assert len(modules) > 20, f"expected the gateway's modules under {SERVER}"
    return modules


def test_the_checker_sees_every_form_of_import(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "import recipes.a\n"
        "from recipes import b\n"
        "import importlib\n"
        "importlib.import_module('recipes.c')\n"
        "__import__('recipes.d')\n"
        "from . import relative\n"
    )
    found = {m for m in imported_modules(source) if within(m, ("recipes",))}
    assert found == {"recipes.a", "recipes", "recipes.b", "recipes.c", "recipes.d"}


@pytest.mark.parametrize("path", server_modules(), ids=lambda p: str(p.relative_to(SERVER)))
def test_server_imports_neither_recipes_nor_sdk_commands(path: Path) -> None:
    bad = [m for m in imported_modules(path) if within(m, ("recipes", *SDK_COMMANDS))]
    assert bad == [], f"{path.relative_to(REPO)} imports {bad}"


def test_cli_and_evaluate_do_not_import_each_other() -> None:
    cli = set(imported_modules(SDK / "cli.py"))
    evaluate = set(imported_modules(SDK / "evaluate.py"))
    assert not within_any(evaluate, ("tritone.cli",)), sorted(evaluate)
    assert not within_any(cli, ("tritone.evaluate",)), sorted(cli)
    assert "tritone._cli_args" in cli and "tritone._cli_args" in evaluate


def within_any(modules: set[str], packages: tuple[str, ...]) -> bool:
    return any(within(m, packages) for m in modules)
