"""The real gateway with DNS played by a file: several Tritons behind one name on loopback.

``python -m support.resolved_gateway <tritone_server flags>`` (with ``tests`` on PYTHONPATH)
runs exactly ``python -m tritone_server``, with the resolver of ``dns:///`` Triton URLs
replaced by one that reads ``TRITONE_TEST_ANSWERS``: a JSON object from a name to its
addresses ("127.0.0.1:PORT", the port included, as several local Tritons need). The file is
read at every resolution, so a test changes the answer by rewriting it. Test-only: the
gateway knows only its resolver interface.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Final

from tritone_server.app import main

ANSWERS_ENV: Final = "TRITONE_TEST_ANSWERS"


class FileResolver:
    def __init__(self, path: Path) -> None:
        self.path = path

    async def resolve(self, host: str, port: int) -> list[str]:
        try:
            answers = json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            raise OSError(f"no answer file: {exc}") from exc
        if host not in answers:
            raise OSError(f"{host} does not resolve")
        return [str(a) for a in answers[host]]


def write_answers(path: Path, answers: dict[str, list[str]]) -> None:
    """Replace the answer file in one step, so the gateway never reads half of it."""
    part = path.with_suffix(".part")
    part.write_text(json.dumps(answers))
    part.replace(path)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], resolver=FileResolver(Path(os.environ[ANSWERS_ENV]))))
