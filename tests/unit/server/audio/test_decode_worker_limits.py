"""The decode worker's address-space limit and the pool's bound on waiting decodes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from support.waiting import wait_for
from tritone_server.audio import _decode_worker
from tritone_server.audio.decode_pool import DecodePool
from tritone_server.errors import LimitExceeded


def test_the_worker_applies_the_limit_it_is_given() -> None:
    script = (
        "import resource\n"
        "from tritone_server.audio._decode_worker import limit_memory\n"
        "print(limit_memory(), resource.getrlimit(resource.RLIMIT_AS)[0])\n"
        "try:\n"
        "    b = bytearray(600 * 1024 * 1024)\n"
        "except MemoryError:\n"
        "    print('refused')\n"
    )
    limit = 512 * 1024 * 1024
    env = {_decode_worker.MEMORY_LIMIT_ENV: str(limit)}
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    first, second = done.stdout.splitlines()
    assert first == f"{limit} {limit}"
    assert second == "refused"


def test_no_limit_when_none_is_given() -> None:
    assert _decode_worker.limit_memory({}) == 0


async def test_decodes_beyond_the_waiting_limit_are_refused() -> None:
    async with DecodePool(workers=1, max_waiting=1) as pool:
        pool._idle.get_nowait()  # the only worker is busy with someone else's file
        waiting = asyncio.create_task(pool.decode(b"RIFF" + b"\0" * 100))
        await wait_for(lambda: pool._waiting == 1, what="one decode waits for the worker")
        with pytest.raises(LimitExceeded, match="--decode-queue / TRITONE_DECODE_QUEUE"):
            await pool.decode(b"RIFF" + b"\0" * 100)
        waiting.cancel()
        await asyncio.wait({waiting})
