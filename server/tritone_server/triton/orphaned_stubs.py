"""Python-backend stubs that outlive their tritonserver.

A SIGKILLed tritonserver cannot stop its stubs; they were seen to outlive it for over an hour
(reparented to init), each holding a model in memory and Triton's output pipe open.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from pathlib import Path

logger = logging.getLogger(__name__)

STUB = b"triton_python_backend_stub"


def kill_orphaned_stubs(shm_prefix: str, proc: Path = Path("/proc")) -> list[int]:
    """Kill the stubs whose command line names ``shm_prefix``; the pids killed.

    Each LocalTriton gives its Triton a shared-memory prefix of its own, and Triton passes it
    to every stub as an argument, so no other process matches.
    """
    if not shm_prefix or not proc.is_dir():
        return []
    marker = b"\0" + shm_prefix.encode()
    killed: list[int] = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if STUB in cmdline and marker in cmdline:
            logger.warning("killing the python-backend stub pid=%s Triton left", entry.name)
            with contextlib.suppress(OSError):
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
    return killed
