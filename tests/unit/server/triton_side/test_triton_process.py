"""What a tritonserver launch asks of the server and its environment, and the cleanup after it.

Running, readiness and retries are in test_triton_start_retry.py (a stand-in server)."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import pytest

from tritone_server.triton.install import TritonInstall
from tritone_server.triton.process import Launch, LocalTritonTls, free_ports, remove_shared_memory


def launch(**changes: object) -> Launch:
    install = TritonInstall(Path("/t/bin/tritonserver"), (Path("/t/libs"),), Path("/b"), Path("/s"))
    settings: dict[str, object] = {
        "install": install,
        "repository": Path("/w/model_repository"),
        "backends": Path("/w/backends"),
        "cwd": Path("/w"),
        "ports": (1001, 1002, 1003),
        "use_gpu": True,
        "shm_prefix": "tritone_1_ab_",
    }
    return Launch(**(settings | changes))  # type: ignore[arg-type]


def test_the_command_binds_loopback_on_the_given_ports() -> None:
    command = launch().command()
    assert command[0] == "/t/bin/tritonserver"
    for flag in (
        "--model-repository=/w/model_repository",
        "--backend-directory=/w/backends",
        "--grpc-address=127.0.0.1",
        "--grpc-port=1001",
        "--http-port=1002",
        "--metrics-port=1003",
        "--backend-config=python,shm-region-prefix-name=tritone_1_ab_",
    ):
        assert flag in command
    assert not [a for a in command if "ssl" in a or "model-control" in a or "pinned" in a]


def test_options_add_their_flags() -> None:
    tls = LocalTritonTls(Path("/c.pem"), Path("/k.pem"), Path("/ca.pem"))
    command = launch(grpc_tls=tls, model_control_explicit=True, use_gpu=False).command()
    assert {
        "--grpc-use-ssl=true",
        "--grpc-server-cert=/c.pem",
        "--grpc-server-key=/k.pem",
        "--model-control-mode=explicit",
        "--load-model=*",
        "--allow-gpu-metrics=false",
        "--pinned-memory-pool-byte-size=0",
    } <= set(command)


def test_the_environment_finds_the_wheels_libraries_and_this_python(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LD_LIBRARY_PATH", "/before")
    env = launch().environment()
    assert env["LD_LIBRARY_PATH"] == os.pathsep.join(["/t/libs", "/before"])
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.prefix) / "bin")


def test_free_ports_are_distinct() -> None:
    ports = free_ports(3)
    assert len(set(ports)) == 3 and all(p > 0 for p in ports)


def test_remove_shared_memory_takes_only_the_prefix() -> None:
    shm = Path("/dev/shm")
    prefix = f"tritone_test_{secrets.token_hex(4)}_"
    mine, other = shm / f"{prefix}region", shm / f"other_{prefix}"
    mine.write_bytes(b"")
    other.write_bytes(b"")
    try:
        remove_shared_memory(prefix)
        assert not mine.exists() and other.exists()
    finally:
        other.unlink(missing_ok=True)
        mine.unlink(missing_ok=True)
