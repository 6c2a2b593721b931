"""Starting the real gateway (and through it the real local Triton) as a process."""

from __future__ import annotations

import collections
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 240.0


def tones_repository(root: Path) -> Path:
    """``root`` made a model repository holding only the committed ``tones`` model.

    A Triton on it starts (and restarts) in a fraction of the time the full repository
    takes, which loads every shipped model: for tests that use no other model. Gateways on
    it need ``--default-model tones``.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "tones").symlink_to(REPO / "model_repository" / "tones")
    return root


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class RunningGateway:
    target: str
    grpc_port: int
    http_port: int
    process: subprocess.Popen[bytes]
    log_tail: collections.deque[str]

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def log(self) -> str:
        return "".join(self.log_tail)


def _pump(stream: object, tail: collections.deque[str]) -> None:
    for raw in iter(stream.readline, b""):  # type: ignore[attr-defined]
        tail.append(raw.decode(errors="replace"))


def _serving(target: str) -> bool:
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
        except grpc.RpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


class GatewayStartError(RuntimeError):
    """The gateway did not come up; the message carries its log."""


@contextlib.contextmanager
def start_gateway(
    *extra_args: str,
    health_port: int | None = None,
    module: str = "tritone_server",
    env: Mapping[str, str] | None = None,
) -> Iterator[RunningGateway]:
    """Run ``python -m tritone_server`` on free loopback ports until it is SERVING.

    With ``health_port`` the gateway also serves plaintext health there, and readiness is
    polled on it (the main port may need TLS, client certificates or tokens). `module` runs
    another entry point with the same flags (the soak's leaking control, importable from
    ``tests``); `env` adds variables to the gateway's environment."""
    grpc_port, http_port = free_port(), free_port()
    environment = {**os.environ, **(env or {})}
    environment.pop("TRITONE_TRITON_URLS", None)
    if module != "tritone_server":
        environment["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO / "tests"), environment.get("PYTHONPATH")) if p
        )
    cmd = [
        sys.executable,
        "-m",
        module,
        "--host",
        "127.0.0.1",
        "--port",
        str(grpc_port),
        "--http-port",
        str(http_port),
        "--model-repository",
        str(REPO / "model_repository"),
        "--grace-s",
        "2",
        # No load balancer to wait for: stopping skips the 2 s drain (a test of the drain
        # passes its own --drain-s, which comes later and wins).
        "--drain-s",
        "0",
        *extra_args,
    ]
    if health_port is not None:
        cmd += ["--health-port", str(health_port)]
    process = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=environment
    )
    tail: collections.deque[str] = collections.deque(maxlen=400)
    pump = threading.Thread(target=_pump, args=(process.stdout, tail), daemon=True)
    pump.start()
    target = f"127.0.0.1:{grpc_port}"
    running = RunningGateway(target, grpc_port, http_port, process, tail)
    probe = target if health_port is None else f"127.0.0.1:{health_port}"
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    try:
        while not _serving(probe):
            if process.poll() is not None:
                raise GatewayStartError(
                    f"the gateway exited with {process.returncode}:\n{running.log()}"
                )
            if time.monotonic() > deadline:
                raise GatewayStartError(
                    f"the gateway was not SERVING after {STARTUP_TIMEOUT_S} s:\n{running.log()}"
                )
            time.sleep(0.1)  # poll interval of the deadline above
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        pump.join(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
