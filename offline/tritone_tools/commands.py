"""The tools' subcommands as the ``tritone`` console script finds them: the
``tritone.commands`` entry points in pyproject.toml name the objects below. Each gives
``tritone --help`` its line and the pip extra it needs without importing the command; the
command's module (and whatever heavy package it needs) is imported by `load` when it runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["ToolCommand", "evaluate", "import_hf", "train"]


@dataclass(frozen=True, slots=True)
class ToolCommand:
    help: str
    extra: str
    """The pip extra `load` needs ("" for none)."""
    module: str
    """The module whose ``main(argv) -> int`` runs the command."""

    def load(self) -> Callable[[Sequence[str]], int]:
        main: Callable[[Sequence[str]], int] = importlib.import_module(self.module).main
        return main


evaluate = ToolCommand(
    "classify a labelled folder or CSV through the server; accuracy, P/R/F1 "
    "(tritone[eval] adds the progress bar and --confusion)",
    "",
    "tritone_tools.evaluation.cli",
)
train = ToolCommand(
    "train a classifier head on a backbone and write a model directory",
    "train",
    "tritone_tools.training.cli",
)
import_hf = ToolCommand(
    "convert a local Hugging Face audio-classification checkpoint into a model",
    "hf",
    "tritone_tools.hf_import.cli",
)
