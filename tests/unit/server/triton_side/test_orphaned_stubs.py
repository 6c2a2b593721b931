"""Stubs a dead Triton left are found by this instance's shared-memory prefix, and only they."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from tritone_server.triton.orphaned_stubs import kill_orphaned_stubs

SLEEP = "import time; time.sleep(120)"


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.kill()
        process.wait(timeout=10)


def stand_in(processes: list[subprocess.Popen[bytes]], *argv: str) -> subprocess.Popen[bytes]:
    """A process whose command line looks like a stub's (python -c ... stub model shm ...)."""
    process = subprocess.Popen([sys.executable, "-c", SLEEP, *argv])
    processes.append(process)
    return process


def test_only_this_instances_stubs_are_killed(processes: list[subprocess.Popen[bytes]]) -> None:
    ours = stand_in(processes, "triton_python_backend_stub", "model.py", "tritone_1_ab_uuid")
    other_instance = stand_in(
        processes, "triton_python_backend_stub", "model.py", "tritone_2_cd_uuid"
    )
    not_a_stub = stand_in(processes, "something_else", "tritone_1_ab_uuid")
    # The prefix must start an argument: a longer name that merely contains it is not ours.
    embedded = stand_in(processes, "triton_python_backend_stub", "xtritone_1_ab_uuid")

    assert kill_orphaned_stubs("tritone_1_ab_") == [ours.pid]
    assert ours.wait(timeout=10) < 0
    for survivor in (other_instance, not_a_stub, embedded):
        assert survivor.poll() is None


def test_no_prefix_kills_nothing(processes: list[subprocess.Popen[bytes]]) -> None:
    stub = stand_in(processes, "triton_python_backend_stub", "tritone_1_ab_uuid")
    assert kill_orphaned_stubs("") == []
    assert stub.poll() is None
