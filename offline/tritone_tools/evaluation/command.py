"""``tritone evaluate``, as the ``tritone`` console script finds it (entry point
``tritone.commands``): a help line, and the command's main imported only when it runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence

HELP = (
    "classify a labelled folder or CSV through the server; accuracy, P/R/F1 "
    "(tritone[eval] adds the progress bar and --confusion)"
)
EXTRA = ""
"""The extra `load` needs; none: the progress bar and picture are optional."""


def load() -> Callable[[Sequence[str]], int]:
    from tritone_tools.evaluation.cli import main

    return main
