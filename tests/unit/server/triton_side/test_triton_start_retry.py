"""LocalTriton tries again when tritonserver crashes during startup, and only then.

A stand-in `tritonserver` (a Python script) plays the server: it crashes the way the real
one now and then does at startup ("epoll_wait error: Bad file descriptor", then an abort),
exits with an error code the way a bad configuration does, or answers Triton's readiness
calls over real gRPC on the port it was given.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from tritone_server.triton.local import LocalTriton, TritonInstall, TritonStartError

REPOSITORY = Path(__file__).resolve().parents[4] / "model_repository"

FAKE = textwrap.dedent(
    """\
    #!{python}
    import os, sys, time
    from concurrent import futures
    from pathlib import Path

    runs = Path({runs!r})
    count = len(runs.read_text()) if runs.exists() else 0
    runs.write_text("x" * (count + 1))
    behaviour = {behaviour!r}[min(count, len({behaviour!r}) - 1)]
    if behaviour == "crash":
        print("E1130 01:02:03.456 1 server.cc:1] epoll_wait error: Bad file descriptor",
              flush=True)
        os.abort()
    if behaviour == "config":
        print("error: creating server: Internal - failed to load all models", flush=True)
        sys.exit(1)
    if behaviour == "serve_holding_the_pipe":
        import subprocess
        # a child that keeps the output pipe open after the server dies, as a stub does
        holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        Path({holder!r}).write_text(str(holder.pid))
    import grpc
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    class Ready(service_pb2_grpc.GRPCInferenceServiceServicer):
        def ServerReady(self, request, context):
            return service_pb2.ServerReadyResponse(ready=True)

        def ModelReady(self, request, context):
            return service_pb2.ModelReadyResponse(ready=True)

    port = next(a.split("=", 1)[1] for a in sys.argv if a.startswith("--grpc-port="))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(Ready(), server)
    server.add_insecure_port("127.0.0.1:" + port)
    server.start()
    server.wait_for_termination()
    """
)


def fake_install(tmp_path: Path, behaviour: list[str]) -> tuple[TritonInstall, Path]:
    runs = tmp_path / "runs"
    binary = tmp_path / "bin" / "tritonserver"
    binary.parent.mkdir()
    binary.write_text(
        FAKE.format(
            python=sys.executable,
            runs=str(runs),
            behaviour=behaviour,
            holder=str(tmp_path / "holder.pid"),
        )
    )
    binary.chmod(0o755)
    backend = tmp_path / "python_backend"
    backend.mkdir()
    (backend / "libtriton_python.so").write_bytes(b"")
    stub = tmp_path / "triton_python_backend_stub"
    stub.write_bytes(b"")
    return TritonInstall(binary, (), backend, stub), runs


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    source = tmp_path / "repository"
    shutil.copytree(REPOSITORY / "tones", source / "tones")
    return source


async def test_a_crash_at_startup_is_tried_again(tmp_path: Path, repository: Path) -> None:
    install, runs = fake_install(tmp_path, ["crash", "serve"])
    triton = LocalTriton(repository, install=install, use_gpu=False, startup_timeout_s=60)
    async with triton as endpoints:
        assert endpoints.grpc_url.startswith("127.0.0.1:")
        assert triton.pid is not None
    assert len(runs.read_text()) == 2  # crashed once, served the second time


async def test_a_configuration_error_is_not_tried_again(tmp_path: Path, repository: Path) -> None:
    install, runs = fake_install(tmp_path, ["config", "serve"])
    triton = LocalTriton(repository, install=install, use_gpu=False, startup_timeout_s=60)
    with pytest.raises(TritonStartError, match="exited with code 1 during startup"):
        async with triton:
            pass
    assert len(runs.read_text()) == 1


async def test_a_server_that_keeps_crashing_fails_after_three_attempts(
    tmp_path: Path, repository: Path
) -> None:
    install, runs = fake_install(tmp_path, ["crash"])
    triton = LocalTriton(repository, install=install, use_gpu=False, startup_timeout_s=60)
    with pytest.raises(TritonStartError, match="epoll_wait error"):
        async with triton:
            pass
    assert len(runs.read_text()) == 3


async def test_the_exit_is_seen_while_a_child_holds_the_output_pipe(
    tmp_path: Path, repository: Path
) -> None:
    """asyncio's wait() waits for the pipes too; a stub left behind must not hide the exit."""
    install, _ = fake_install(tmp_path, ["serve_holding_the_pipe"])
    triton = LocalTriton(repository, install=install, use_gpu=False, startup_timeout_s=60)
    holder = tmp_path / "holder.pid"
    try:
        async with triton:
            assert triton.pid is not None
            os.kill(triton.pid, signal.SIGKILL)
            code = await asyncio.wait_for(triton.wait_exit(), 30)
            assert code == -signal.SIGKILL
            os.kill(int(holder.read_text()), 0)  # the holder still runs: the pipe was open
    finally:
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(holder.read_text()), signal.SIGKILL)
