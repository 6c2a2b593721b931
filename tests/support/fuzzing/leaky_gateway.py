"""The real gateway with one deliberate leak: the soak's positive control.

``python -m support.fuzzing.leaky_gateway <tritone_server flags>`` (with ``tests`` on
PYTHONPATH) runs exactly ``python -m tritone_server``, except that every Classify, Embed
(gRPC and HTTP) and every stream keeps a reference to its request plus
``TRITONE_TEST_LEAK_BYTES`` bytes of written memory for the life of the process. The soak's
growth measurement must flag this process and pass the real one; if it passed both, it
could not see a leak. Test-only: nothing in the gateway knows about it.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Final

from tritone_server.app import main
from tritone_server.core.dataplane import DataPlane

LEAK_ENV: Final = "TRITONE_TEST_LEAK_BYTES"

_kept: list[object] = []


def install_leak(leak_bytes: int) -> None:
    """Wrap the DataPlane's entry points so that each call keeps what it was given."""
    classify, embed, open_stream = DataPlane.classify, DataPlane.embed, DataPlane.open_stream

    def keep(args: tuple[Any, ...]) -> None:
        _kept.append((args, b"\x01" * leak_bytes))  # written bytes: resident, not lazy zeros

    async def leaky_classify(self: DataPlane, *args: Any, **kwargs: Any) -> Any:
        keep(args)
        return await classify(self, *args, **kwargs)

    async def leaky_embed(self: DataPlane, *args: Any, **kwargs: Any) -> Any:
        keep(args)
        return await embed(self, *args, **kwargs)

    def leaky_open_stream(self: DataPlane, *args: Any, **kwargs: Any) -> Any:
        keep(args)
        return open_stream(self, *args, **kwargs)

    DataPlane.classify = leaky_classify  # type: ignore[method-assign]
    DataPlane.embed = leaky_embed  # type: ignore[method-assign]
    DataPlane.open_stream = leaky_open_stream  # type: ignore[method-assign]


if __name__ == "__main__":
    install_leak(int(os.environ.get(LEAK_ENV, str(256 * 1024))))
    sys.exit(main(sys.argv[1:]))
