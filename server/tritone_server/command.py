"""``tritone serve``, as the ``tritone`` console script finds it (entry point
``tritone.commands``): a help line, and the gateway's main imported only when it runs
(it needs the ``[server]`` extra, or ``[gateway]`` with ``--triton-url``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

HELP = "run the gateway; arguments go to the server"
EXTRA = "server"
"""The extra `load` needs (``pip install 'tritone[server]'``)."""


def load() -> Callable[[Sequence[str]], int]:
    from tritone_server.app import main

    return main
