"""What the offline tools load: ``tritone evaluate`` runs on the light SDK (its [eval] extra
is imported only when a run draws or counts), and the command objects the ``tritone``
console script reads for its help load nothing beyond the standard library."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "pytriton", "tritonclient", "aiohttp", "matplotlib", "tqdm")


def loaded_by(module: str) -> set[str]:
    """Top-level packages (not the standard library) that importing `module` adds."""
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        f"import {module}\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print(' '.join(sorted(new - set(sys.stdlib_module_names))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize(
    "module",
    ["tritone_server.command", "tritone_tools.commands"],
)
def test_command_modules_load_only_their_package(module: str) -> None:
    assert loaded_by(module) == {module.split(".")[0]}


@pytest.mark.parametrize(
    "module",
    ["tritone_tools.evaluation.cli", "tritone_tools.evaluation.metrics"],
)
def test_evaluation_needs_no_heavy_package(module: str) -> None:
    loaded = loaded_by(module)
    assert "tritone_tools" in loaded, "the check must see what the import adds"
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
