"""``tritone serve``, as the ``tritone`` console script finds it (the ``tritone.commands``
entry point ``serve``): a help line and the extra it needs, and the gateway's main imported
only when it runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence


class _Serve:
    help = "run the gateway; arguments go to the server"
    extra = "server"
    """Or ``gateway`` alone, for a gateway in front of a Triton it did not start."""

    @staticmethod
    def load() -> Callable[[Sequence[str]], int]:
        from tritone_server.app import main

        return main


serve = _Serve()
