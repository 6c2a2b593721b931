"""Start a real local Triton Inference Server for the gateway.

    async with LocalTriton(Path("model_repository")) as endpoints:
        ...  # endpoints.grpc_url is "127.0.0.1:PORT", every model is ready

Three concerns, a module each: finding the installed Triton (`install`), preparing the work
directory with the derived repository (`work_dir`), and running the `tritonserver` process
(`process`). This module puts them together: start with retries, restart after a crash,
stop and clean up.

Another process could take a port between the check and Triton's bind, and the server now
and then crashes at startup; startup then tries again with fresh ports a couple of times.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from tritone_server.triton.install import (
    TritonInstall,
    TritonStartError,
    cuda_available,
    find_tritonserver,
)
from tritone_server.triton.process import (
    STOP_WORST_CASE_S,
    Launch,
    LocalTritonTls,
    TritonProcess,
    free_ports,
    remove_shared_memory,
)
from tritone_server.triton.work_dir import TritonWorkDir

__all__ = [
    "STOP_WORST_CASE_S",
    "LocalTriton",
    "LocalTritonEndpoints",
    "LocalTritonTls",
    "TritonInstall",
    "TritonStartError",
    "find_tritonserver",
]

logger = logging.getLogger(__name__)
_START_ATTEMPTS = 3
"""Starts tried before giving up, when an attempt failed for a reason another may not have:
a port taken between choosing it and binding it, or a crash of the server itself."""


@dataclass(frozen=True, slots=True)
class LocalTritonEndpoints:
    """Loopback addresses of a running local Triton."""

    grpc_url: str
    """"127.0.0.1:PORT", as tritonclient.grpc expects."""
    http_url: str
    """"127.0.0.1:PORT", as tritonclient.http expects."""
    metrics_url: str
    """"http://127.0.0.1:PORT/metrics", the Prometheus endpoint."""


class LocalTriton:
    """Async context manager running `tritonserver` on a derived copy of a repository.

    Args:
        model_repository: the committed, production repository (TorchScript models).
        work_dir: where the derived repository and backend directory are written. None:
            a temporary directory, removed on exit. Given: created if needed and kept, so
            the derived files can be inspected.
        startup_timeout_s: how long to wait for the server and every model to be ready.
        log_verbose: Triton's `--log-verbose` level.
        model_control_explicit: start Triton with `--model-control-mode=explicit` (all
            models still loaded at startup), so models can be loaded and unloaded later.
        use_gpu: keep GPU instance groups; None: when torch sees a CUDA device (asked in
            a child process, so the gateway never imports torch).
        install: the Triton to run; None: `find_tritonserver()`.
        grpc_tls: serve gRPC over TLS with this certificate; None: plaintext.
    """

    def __init__(
        self,
        model_repository: Path,
        *,
        work_dir: Path | None = None,
        startup_timeout_s: float = 120.0,
        log_verbose: int = 0,
        model_control_explicit: bool = False,
        use_gpu: bool | None = None,
        install: TritonInstall | None = None,
        grpc_tls: LocalTritonTls | None = None,
    ) -> None:
        self._source = Path(model_repository)
        self._grpc_tls = grpc_tls
        self._work_dir = work_dir
        self._startup_timeout_s = startup_timeout_s
        self._log_verbose = log_verbose
        self._explicit = model_control_explicit
        self._use_gpu = use_gpu
        self._install = install
        self._dir: TritonWorkDir | None = None
        self._shm_prefix = ""
        self._process: TritonProcess | None = None
        self._last: TritonProcess | None = None  # the latest process, running or not
        self._endpoints: LocalTritonEndpoints | None = None
        self._launch: Launch | None = None  # what a restart runs again

    @property
    def endpoints(self) -> LocalTritonEndpoints | None:
        """The endpoints while running, else None."""
        return self._endpoints

    @property
    def models(self) -> tuple[str, ...]:
        """Names of the models in the derived repository."""
        return tuple(self._dir.models) if self._dir is not None else ()

    @property
    def pid(self) -> int | None:
        """Process id of the running tritonserver, else None."""
        return self._process.pid if self._process is not None else None

    @property
    def work_dir(self) -> Path | None:
        """The directory holding the derived repository while running."""
        return self._dir.path if self._dir is not None else None

    def output_tail(self) -> str:
        """The last lines Triton wrote (stdout and stderr together)."""
        return self._last.output_tail() if self._last is not None else ""

    async def __aenter__(self) -> LocalTritonEndpoints:
        if self._process is not None:
            raise RuntimeError("this LocalTriton is already running")
        try:
            return await self._start()
        except BaseException:
            await self._stop()
            raise

    async def __aexit__(self, *exc: object) -> None:
        await self._stop()

    async def _start(self) -> LocalTritonEndpoints:
        install = self._install or find_tritonserver()
        use_gpu = self._use_gpu
        if use_gpu is None:
            use_gpu = await cuda_available()
        work = await asyncio.to_thread(TritonWorkDir, self._source, self._work_dir, use_gpu=use_gpu)
        self._dir = work
        await asyncio.to_thread(work.prepare, install)
        self._shm_prefix = f"tritone_{os.getpid()}_{secrets.token_hex(4)}_"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._startup_timeout_s
        for attempt in range(1, _START_ATTEMPTS + 1):
            grpc_port, http_port, metrics_port = free_ports(3)
            launch = Launch(
                install=install,
                repository=work.repository,
                backends=work.backends,
                cwd=work.path,
                ports=(grpc_port, http_port, metrics_port),
                use_gpu=use_gpu,
                shm_prefix=self._shm_prefix,
                log_verbose=self._log_verbose,
                model_control_explicit=self._explicit,
                grpc_tls=self._grpc_tls,
            )
            process = await self._spawn(launch)
            try:
                await process.wait_ready(work.models, deadline, self._startup_timeout_s)
            except TritonStartError as exc:
                if attempt < _START_ATTEMPTS and (process.port_clash() or process.crashed()):
                    logger.warning(
                        "triton failed to start (attempt %s), trying again with other ports: %s",
                        attempt,
                        str(exc).splitlines()[0],
                    )
                    await self._terminate()
                    continue
                raise
            grpc, http, metrics = (f"127.0.0.1:{p}" for p in launch.ports)
            self._endpoints = LocalTritonEndpoints(grpc, http, f"http://{metrics}/metrics")
            self._launch = launch
            logger.info(
                "triton ready grpc=%s http=%s models=%s pid=%s",
                grpc,
                http,
                ",".join(work.models),
                process.pid,
            )
            return self._endpoints
        raise AssertionError("unreachable")

    async def _spawn(self, launch: Launch) -> TritonProcess:
        self._process = self._last = await TritonProcess.spawn(launch)
        return self._process

    async def wait_exit(self) -> int:
        """Wait until the running tritonserver exits (for any reason); its exit code."""
        process = self._process
        if process is None:
            raise RuntimeError("this LocalTriton is not running")
        return await process.wait()

    async def restart(self) -> LocalTritonEndpoints:
        """Run tritonserver again after it died: same ports, repository and options, so
        clients' channels reconnect to the same addresses.

        Raises:
            TritonStartError: it exited again or was not ready within the startup timeout.
        """
        if self._launch is None or self._endpoints is None or self._dir is None:
            raise RuntimeError("restart() needs a LocalTriton that was started")
        await self._terminate()  # reap the old process (or stop a hung one) and its reader
        remove_shared_memory(self._shm_prefix)  # regions the dead server's stubs left behind
        loop = asyncio.get_running_loop()
        process = await self._spawn(self._launch)
        try:
            await process.wait_ready(
                self._dir.models, loop.time() + self._startup_timeout_s, self._startup_timeout_s
            )
        except BaseException:
            await self._terminate()
            raise
        logger.info("triton restarted grpc=%s pid=%s", self._endpoints.grpc_url, self.pid)
        return self._endpoints

    def refresh_model(self, name: str) -> None:
        """Derive model `name` again from the source repository (before Triton loads it)."""
        if self._dir is None:
            raise TritonStartError("the local Triton is not running")
        self._dir.refresh_model(name)

    async def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            await process.terminate()

    async def _stop(self) -> None:
        self._endpoints = None
        self._launch = None
        try:
            await self._terminate()
        finally:
            remove_shared_memory(self._shm_prefix)
            work, self._dir = self._dir, None
            if work is not None:
                await asyncio.to_thread(work.remove)
