"""``tritone import-hf``, as the ``tritone`` console script finds it (entry point
``tritone.commands``): a help line, and the command's main imported only when it runs
(it needs the ``[hf]`` extra: torch, transformers)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

HELP = "convert a local Hugging Face audio-classification checkpoint into a model"
EXTRA = "hf"
"""The extra `load` needs (``pip install 'tritone[hf]'``)."""


def load() -> Callable[[Sequence[str]], int]:
    from tritone_tools.hf_import.cli import main

    return main
