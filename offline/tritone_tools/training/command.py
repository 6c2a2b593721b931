"""``tritone train``, as the ``tritone`` console script finds it (entry point
``tritone.commands``): a help line, and the command's main imported only when it runs
(it needs the ``[train]`` extra: torch, tqdm)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

HELP = "train a classifier head on a backbone and write a model directory"
EXTRA = "train"
"""The extra `load` needs (``pip install 'tritone[train]'``)."""


def load() -> Callable[[Sequence[str]], int]:
    from tritone_tools.training.cli import main

    return main
