"""One `tritonserver` child process: launched, watched until ready, stopped for good.

Decisions:

- Triton binds to 127.0.0.1 only, on ports found free by binding port 0 (`free_ports`).
- The child gets PR_SET_PDEATHSIG (SIGTERM), so it stops when the gateway dies, even by
  SIGKILL. Linux delivers it when the *thread* that spawned the child exits, so spawn from a
  thread that lives as long as the server (the event loop's thread). Where util-linux's
  `setpriv` exists it sets the signal and execs Triton, so the gateway never fork()s: a fork
  while gRPC threads are busy (a restart under load) can abort the child in gRPC's fork
  handlers before it gets to exec.
- Each launch names the python backend's shared-memory prefix, so several local Tritons
  (parallel test runs) can share a machine; `remove_shared_memory` deletes what is left.
- The last lines of Triton's output (including the python stubs') are kept in a ring buffer
  for the error messages, and logged at DEBUG level as they arrive.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import logging
import os
import re
import shutil
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from tritone_server.triton.install import TritonInstall, TritonStartError
from tritone_server.triton.orphaned_stubs import kill_orphaned_stubs

__all__ = [
    "STOP_WORST_CASE_S",
    "Launch",
    "LocalTritonTls",
    "TritonProcess",
    "free_ports",
    "remove_shared_memory",
]

logger = logging.getLogger(__name__)
_OUTPUT_LINES = 200
# Triton waits this long for inferences in flight before it exits; by the time the gateway
# stops it, its own grace has already ended every call, so little is left to wait for.
_EXIT_TIMEOUT_S = 10.0
_KILL_AFTER_S = _EXIT_TIMEOUT_S + 5.0
_READER_WAIT_S = 2.0
_EXIT_POLL_S = 0.1
"""How often `TritonProcess.wait` reads the return code (the child watcher sets it)."""
STOP_WORST_CASE_S: Final = _KILL_AFTER_S + _READER_WAIT_S
"""The longest a stop takes: SIGINT, then SIGKILL, then its output reader."""
_PR_SET_PDEATHSIG = 1
# glog error lines ("E1125 13:48:22.774 5702 file.cc:12] ...") and the final "error: ..."
_ERROR_LINE = re.compile(r"E\d{4} |error: |Traceback|\w+Error: ")


@dataclass(frozen=True, slots=True)
class LocalTritonTls:
    """TLS on the local Triton's gRPC port (``--grpc-use-ssl``)."""

    cert: Path
    """PEM certificate chain Triton presents."""
    key: Path
    """PEM private key of ``cert``."""
    ca: Path
    """PEM CA bundle that signed ``cert`` (the readiness checks trust it)."""


@dataclass(frozen=True, slots=True)
class Launch:
    """Everything one run of tritonserver needs; a restart launches the same again."""

    install: TritonInstall
    repository: Path
    backends: Path
    cwd: Path
    ports: tuple[int, int, int]
    """gRPC, HTTP, metrics."""
    use_gpu: bool
    shm_prefix: str
    log_verbose: int = 0
    model_control_explicit: bool = False
    grpc_tls: LocalTritonTls | None = None

    def command(self) -> list[str]:
        grpc, http, metrics = self.ports
        command = [
            str(self.install.binary),
            f"--model-repository={self.repository}",
            f"--backend-directory={self.backends}",
            "--grpc-address=127.0.0.1",
            f"--grpc-port={grpc}",
            "--http-address=127.0.0.1",
            f"--http-port={http}",
            "--metrics-address=127.0.0.1",
            f"--metrics-port={metrics}",
            "--allow-sagemaker=false",
            "--allow-vertex-ai=false",
            "--exit-on-error=true",
            "--strict-readiness=true",
            f"--exit-timeout-secs={int(_EXIT_TIMEOUT_S)}",
            f"--log-verbose={self.log_verbose}",
            f"--backend-config=python,shm-region-prefix-name={self.shm_prefix}",
        ]
        if self.model_control_explicit:
            command += ["--model-control-mode=explicit", "--load-model=*"]
        if self.grpc_tls is not None:
            command += [
                "--grpc-use-ssl=true",
                f"--grpc-server-cert={self.grpc_tls.cert}",
                f"--grpc-server-key={self.grpc_tls.key}",
            ]
        if not self.use_gpu:
            # No CUDA: skip GPU metrics and the pinned host memory pool (which needs CUDA).
            command += ["--allow-gpu-metrics=false", "--pinned-memory-pool-byte-size=0"]
        return command

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        libs = [str(p) for p in self.install.lib_dirs]
        if env.get("LD_LIBRARY_PATH"):
            libs.append(env["LD_LIBRARY_PATH"])
        env["LD_LIBRARY_PATH"] = os.pathsep.join(libs)
        # The python backend stub ignores PYTHONPATH; it finds this environment's packages
        # (torch, numpy) through the `python3` first on PATH.
        env["PATH"] = os.pathsep.join(
            [str(Path(sys.prefix) / "bin"), *filter(None, [env.get("PATH")])]
        )
        return env


def free_ports(count: int) -> tuple[int, ...]:
    """Distinct loopback ports that were free a moment ago (all bound at once)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return tuple(ports)


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that asks Linux to SIGTERM the child when its parent thread exits."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def remove_shared_memory(prefix: str) -> None:
    """Delete the shared-memory regions a server's python stubs left under ``prefix``."""
    shm = Path("/dev/shm")
    if not prefix or not shm.is_dir():
        return
    for leftover in shm.glob(f"{prefix}*"):
        with contextlib.suppress(OSError):
            leftover.unlink()


class TritonProcess:
    """A launched tritonserver and the reader that keeps its last lines of output."""

    def __init__(self, launch: Launch, process: asyncio.subprocess.Process) -> None:
        self.launch = launch
        self._process = process
        self._output: collections.deque[str] = collections.deque(maxlen=_OUTPUT_LINES)
        self._reader = asyncio.create_task(self._read_output())

    @classmethod
    async def spawn(cls, launch: Launch) -> TritonProcess:
        command = launch.command()
        preexec = None
        setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
        if setpriv is not None:
            command = [setpriv, "--pdeathsig", "TERM", "--", *command]
        else:
            preexec = _die_with_parent()
        logger.debug("starting %s", " ".join(command))
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=launch.environment(),
            cwd=str(launch.cwd),
            preexec_fn=preexec,
        )
        return cls(launch, process)

    @property
    def pid(self) -> int:
        return self._process.pid

    async def wait(self) -> int:
        """Wait until tritonserver exits (for any reason); its exit code.

        asyncio's own ``wait()`` returns only once every pipe of the child has closed, and a
        python-backend stub that outlives a killed Triton holds the output pipe (for an hour,
        orphaned_stubs.py says): a supervisor waiting on it would never restart Triton. So
        the exit is read from the return code, set as soon as the child is reaped, and the
        stubs it left are stopped, which closes the pipe.
        """
        process = self._process
        closed = asyncio.ensure_future(process.wait())
        try:
            while process.returncode is None:
                await asyncio.wait({closed}, timeout=_EXIT_POLL_S)
        finally:
            closed.cancel()
        if self.launch.shm_prefix:
            await asyncio.to_thread(kill_orphaned_stubs, self.launch.shm_prefix)
        return process.returncode

    def output_tail(self) -> str:
        """The last lines Triton wrote (stdout and stderr together)."""
        return "\n".join(self._output)

    def diagnosis(self) -> str:
        """Triton's error lines first (its tables push them out of view), then the tail."""
        errors = [
            line
            for line in self._output
            if _ERROR_LINE.match(line) and "CudaDriverHelper" not in line
        ]
        head = "".join(f"\n  {line}" for line in errors)
        return f"; errors:{head}\nlast output:\n{self.output_tail()}"

    def port_clash(self) -> bool:
        return any("address already in use" in line.lower() for line in self._output)

    def crashed(self) -> bool:
        """The server died of a signal (an abort, a segfault) or of its event loop's
        "epoll_wait error" seen now and then at startup: not a configuration error, which
        exits with a code and would fail again."""
        code = self._process.returncode
        return (code is not None and code < 0) or any(
            "epoll_wait error" in line for line in self._output
        )

    async def _read_output(self) -> None:
        stdout = self._process.stdout
        assert stdout is not None
        while True:
            try:
                raw = await stdout.readline()
            except ValueError:  # a line longer than the stream limit: keep going
                continue
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip()
            self._output.append(line)
            logger.debug("triton: %s", line)

    async def wait_ready(self, models: list[str], deadline: float, timeout_s: float) -> None:
        """Until the server and every model are ready, by the loop's clock ``deadline``.

        Raises:
            TritonStartError: it exited, or was not ready in time (``timeout_s`` is what the
                message names).
        """
        from tritonclient.grpc.aio import InferenceServerClient

        process = self._process
        loop = asyncio.get_running_loop()
        tls = self.launch.grpc_tls
        client = InferenceServerClient(
            f"127.0.0.1:{self.launch.ports[0]}",
            ssl=tls is not None,
            root_certificates=None if tls is None else str(tls.ca),
        )
        try:
            while True:
                if process.returncode is not None:
                    await asyncio.wait({self._reader}, timeout=2.0)
                    raise TritonStartError(
                        f"tritonserver exited with code {process.returncode} during startup"
                        + self.diagnosis()
                    )
                if await _ready(client, models):
                    return
                if loop.time() > deadline:
                    raise TritonStartError(
                        f"tritonserver was not ready after {timeout_s:.0f} s" + self.diagnosis()
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), 0.25)
        finally:
            await client.close()

    async def terminate(self) -> None:
        """SIGINT, wait for Triton's own exit timeout, then SIGKILL; stubs it left behind
        are killed too."""
        process = self._process
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), _KILL_AFTER_S)
            except BaseException as exc:  # timed out, or we are cancelled: do not leave it
                if isinstance(exc, TimeoutError):
                    logger.warning("tritonserver pid=%s ignored SIGINT, killing it", process.pid)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await asyncio.shield(process.wait())
                if not isinstance(exc, TimeoutError):
                    raise
        if self.launch.shm_prefix:
            kill_orphaned_stubs(self.launch.shm_prefix)
        # A stray stub could keep the pipe open after Triton is gone: do not wait on it.
        _, pending = await asyncio.wait({self._reader}, timeout=_READER_WAIT_S)
        if pending:
            self._reader.cancel()
        # asyncio closes a subprocess transport only once every pipe has reached EOF; a stub
        # that outlives a killed Triton holds the pipe, and the transport (one fd per crash)
        # would stay open until garbage collection.
        transport = getattr(process, "_transport", None)
        if transport is not None:
            transport.close()


async def _ready(client: Any, models: list[str]) -> bool:
    from tritonclient.utils import InferenceServerException

    try:
        if not await client.is_server_ready(client_timeout=2.0):
            return False
        for name in models:
            if not await client.is_model_ready(name, client_timeout=2.0):
                return False
    except InferenceServerException:
        return False
    return True
