"""Start a real local Triton Inference Server for the gateway.

The server binary comes from the nvidia-pytriton wheel, which ships Triton with the python
backend but without the libtorch backend. So the committed (production) repository is not
served as is: `derived_repository` writes a twin of it that runs each TorchScript file through
the generic python-backend model (on CPU when there is no GPU), and this module runs Triton
on that twin.

    async with LocalTriton(Path("model_repository")) as endpoints:
        ...  # endpoints.grpc_url is "127.0.0.1:PORT", every model is ready

Decisions:

- Triton binds to 127.0.0.1 only, on ports found free by binding port 0. Another process
  could take a port between the check and Triton's bind; startup then retries with fresh
  ports a couple of times.
- The child gets PR_SET_PDEATHSIG (SIGTERM), so it stops when the gateway dies, even by
  SIGKILL. Linux delivers it when the *thread* that spawned the child exits, so start
  LocalTriton from a thread that lives as long as the server (the event loop's thread).
  Where util-linux's `setpriv` exists it sets the signal and execs Triton, so the gateway
  never fork()s: a fork while gRPC threads are busy (a restart under load) can abort the
  child in gRPC's fork handlers before it gets to exec.
- Each instance gives the python backend its own shared-memory prefix, so several local
  Tritons (parallel test runs) can share a machine, and removes leftover regions on exit.
- The last lines of Triton's output (including the python stubs') are kept in a ring
  buffer and quoted in TritonStartError, and logged at DEBUG level as they arrive.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import importlib.util
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import sys
import sysconfig
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from tritone_server.triton.derived_repository import derive_python_backend_repository, link_or_copy
from tritone_server.triton.orphaned_stubs import kill_orphaned_stubs

__all__ = [
    "LocalTriton",
    "LocalTritonEndpoints",
    "LocalTritonTls",
    "TritonInstall",
    "TritonStartError",
    "find_tritonserver",
]

logger = logging.getLogger(__name__)
_OUTPUT_LINES = 200
# Triton waits this long for inferences in flight before it exits; by the time the gateway
# stops it, its own grace has already ended every call, so little is left to wait for.
_EXIT_TIMEOUT_S = 10.0
_KILL_AFTER_S = _EXIT_TIMEOUT_S + 5.0
_READER_WAIT_S = 2.0
STOP_WORST_CASE_S: Final = _KILL_AFTER_S + _READER_WAIT_S
"""The longest `LocalTriton` takes to stop: SIGINT, then SIGKILL, then its output reader."""
_START_ATTEMPTS = 3
"""Starts tried before giving up, when an attempt failed for a reason another may not have:
a port taken between choosing it and binding it, or a crash of the server itself."""
_PR_SET_PDEATHSIG = 1
# glog error lines ("E1125 13:48:22.774 5702 file.cc:12] ...") and the final "error: ..."
_ERROR_LINE = re.compile(r"E\d{4} |error: |Traceback|\w+Error: ")


class TritonStartError(RuntimeError):
    """Triton could not be found, exited during startup, or was not ready in time."""


@dataclass(frozen=True, slots=True)
class TritonInstall:
    """Where the pieces of a pip-installed Triton are."""

    binary: Path
    """The `tritonserver` executable."""
    lib_dirs: tuple[Path, ...]
    """Directories for LD_LIBRARY_PATH: the wheel's bundled libraries and libpython's."""
    python_backend_dir: Path
    """The wheel's `backends/python` (libtriton_python.so, triton_python_backend_utils.py)."""
    stub: Path
    """`triton_python_backend_stub` built for this interpreter's Python version."""


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
class LocalTritonEndpoints:
    """Loopback addresses of a running local Triton."""

    grpc_url: str
    """"127.0.0.1:PORT", as tritonclient.grpc expects."""
    http_url: str
    """"127.0.0.1:PORT", as tritonclient.http expects."""
    metrics_url: str
    """"http://127.0.0.1:PORT/metrics", the Prometheus endpoint."""


def find_tritonserver() -> TritonInstall:
    """Locate the Triton that the nvidia-pytriton wheel installs, without importing pytriton.

    Raises:
        TritonStartError: naming the piece that is missing.
    """
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise TritonStartError(
            "the nvidia-pytriton wheel is not installed: pip install 'tritone[server]'"
        )
    package = Path(next(iter(spec.submodule_search_locations)))
    root = package / "tritonserver"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    libpython_dir = _libpython_dir()
    install = TritonInstall(
        binary=root / "bin" / "tritonserver",
        lib_dirs=(package.parent / "nvidia_pytriton.libs", libpython_dir),
        python_backend_dir=root / "backends" / "python",
        stub=root / "python_backend_stubs" / version / "triton_python_backend_stub",
    )
    required = {
        "tritonserver binary": install.binary,
        "bundled libraries (nvidia_pytriton.libs)": install.lib_dirs[0],
        "python backend": install.python_backend_dir / "libtriton_python.so",
        f"python backend stub for Python {version}": install.stub,
    }
    for what, path in required.items():
        if not path.exists():
            raise TritonStartError(f"Triton's {what} is missing: {path} does not exist")
    if not os.access(install.binary, os.X_OK):
        raise TritonStartError(f"{install.binary} is not executable")
    return install


def _libpython_dir() -> Path:
    libdir = sysconfig.get_config_var("LIBDIR")
    ldlibrary = sysconfig.get_config_var("LDLIBRARY") or ""
    if not libdir:
        raise TritonStartError("cannot find libpython: sysconfig has no LIBDIR")
    path = Path(libdir)
    if not ldlibrary.endswith(".so") or not (path / ldlibrary).exists():
        raise TritonStartError(
            f"the python backend stub needs a shared libpython{sys.version_info.major}."
            f"{sys.version_info.minor}, and {path} has none (this Python is built without "
            "--enable-shared)"
        )
    return path


# --- running tritonserver ------------------------------------------------------------------


def _free_ports(count: int) -> list[int]:
    """Distinct loopback ports that were free a moment ago (all bound at once)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


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


def _has_nvidia_driver() -> bool:
    return Path("/dev/nvidiactl").exists() or Path("/proc/driver/nvidia").exists()


async def _cuda_available() -> bool:
    """Whether torch in this environment (the one the python stubs use) sees a GPU.

    Asked in a child interpreter so that the gateway itself never imports torch; skipped
    when the machine has no NVIDIA driver at all.
    """
    if not _has_nvidia_driver():
        return False
    probe = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import torch; print(int(torch.cuda.is_available()))",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        out, _ = await asyncio.wait_for(probe.communicate(), 60.0)
    except TimeoutError:
        probe.kill()
        await probe.wait()
        return False
    return out.strip() == b"1"


def _build_backend_dir(install: TritonInstall, dest: Path) -> Path:
    """backends/python/ with the wheel's backend plus the stub for this Python."""
    python = dest / "python"
    python.mkdir(parents=True, exist_ok=True)
    for item in install.python_backend_dir.iterdir():
        if item.is_file():
            link_or_copy(item, python / item.name)
    link_or_copy(install.stub, python / install.stub.name)
    return dest


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
        self._gpu = False  # what was decided at start
        self._install = install
        self._dir: Path | None = None
        self._owns_dir = False
        self._shm_prefix = ""
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._output: collections.deque[str] = collections.deque(maxlen=_OUTPUT_LINES)
        self._models: list[str] = []
        self._endpoints: LocalTritonEndpoints | None = None
        # what a restart needs to run the same server again: install, repository,
        # backends directory, ports
        self._launch: tuple[TritonInstall, Path, Path, tuple[int, ...]] | None = None

    @property
    def endpoints(self) -> LocalTritonEndpoints | None:
        """The endpoints while running, else None."""
        return self._endpoints

    @property
    def models(self) -> tuple[str, ...]:
        """Names of the models in the derived repository."""
        return tuple(self._models)

    @property
    def pid(self) -> int | None:
        """Process id of the running tritonserver, else None."""
        return self._process.pid if self._process is not None else None

    @property
    def work_dir(self) -> Path | None:
        """The directory holding the derived repository while running."""
        return self._dir

    def output_tail(self) -> str:
        """The last lines Triton wrote (stdout and stderr together)."""
        return "\n".join(self._output)

    def _diagnosis(self) -> str:
        """Triton's error lines first (its tables push them out of view), then the tail."""
        errors = [
            line
            for line in self._output
            if _ERROR_LINE.match(line) and "CudaDriverHelper" not in line
        ]
        head = "".join(f"\n  {line}" for line in errors)
        return f"; errors:{head}\nlast output:\n{self.output_tail()}"

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
            use_gpu = await _cuda_available()
        self._gpu = use_gpu
        repository, backends = await asyncio.to_thread(self._prepare, install, use_gpu)
        self._shm_prefix = f"tritone_{os.getpid()}_{secrets.token_hex(4)}_"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._startup_timeout_s
        for attempt in range(1, _START_ATTEMPTS + 1):
            ports = tuple(_free_ports(3))
            await self._spawn(install, repository, backends, ports, use_gpu)
            try:
                await self._wait_ready(ports[0], deadline)
            except TritonStartError as exc:
                if attempt < _START_ATTEMPTS and (self._port_clash() or self._crashed()):
                    logger.warning(
                        "triton failed to start (attempt %s), trying again with other ports: %s",
                        attempt,
                        str(exc).splitlines()[0],
                    )
                    await self._terminate()
                    continue
                raise
            grpc, http, metrics = (f"127.0.0.1:{p}" for p in ports)
            self._endpoints = LocalTritonEndpoints(grpc, http, f"http://{metrics}/metrics")
            self._launch = (install, repository, backends, ports)
            logger.info(
                "triton ready grpc=%s http=%s models=%s pid=%s",
                grpc,
                http,
                ",".join(self._models),
                self.pid,
            )
            return self._endpoints
        raise AssertionError("unreachable")

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
        if self._launch is None or self._endpoints is None:
            raise RuntimeError("restart() needs a LocalTriton that was started")
        install, repository, backends, ports = self._launch
        await self._terminate()  # reap the old process (or stop a hung one) and its reader
        self._remove_shared_memory()  # regions the dead server's stubs left behind
        loop = asyncio.get_running_loop()
        await self._spawn(install, repository, backends, ports, self._gpu)
        try:
            await self._wait_ready(ports[0], loop.time() + self._startup_timeout_s)
        except BaseException:
            await self._terminate()
            raise
        logger.info("triton restarted grpc=%s pid=%s", self._endpoints.grpc_url, self.pid)
        return self._endpoints

    def _prepare(self, install: TritonInstall, use_gpu: bool) -> tuple[Path, Path]:
        """Make the work directory, derived repository and backend directory."""
        if self._work_dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="tritone-triton-"))
            self._owns_dir = True
        else:
            self._dir = Path(self._work_dir)
            self._dir.mkdir(parents=True, exist_ok=True)
        repository = self._dir / "model_repository"
        if repository.exists():
            shutil.rmtree(repository)
        self._models = derive_python_backend_repository(self._source, repository, use_gpu=use_gpu)
        return repository, _build_backend_dir(install, self._dir / "backends")

    def refresh_model(self, name: str) -> None:
        """Derive model `name` again from the source repository (before Triton loads it)."""
        if self._dir is None:
            raise TritonStartError("the local Triton is not running")
        if not (self._source / name / "config.pbtxt").is_file():
            raise ValueError(f"model {name!r} has no config.pbtxt in {self._source}")
        derive_python_backend_repository(
            self._source, self._dir / "model_repository", use_gpu=self._gpu, only=[name]
        )
        if name not in self._models:
            self._models = sorted([*self._models, name])

    def _port_clash(self) -> bool:
        return any("address already in use" in line.lower() for line in self._output)

    def _crashed(self) -> bool:
        """The server died of a signal (an abort, a segfault) or of its event loop's
        "epoll_wait error" seen now and then at startup: not a configuration error, which
        exits with a code and would fail again."""
        process = self._process
        code = process.returncode if process is not None else None
        return (code is not None and code < 0) or any(
            "epoll_wait error" in line for line in self._output
        )

    def _command(
        self, install: TritonInstall, repository: Path, backends: Path, ports: tuple[int, ...]
    ) -> list[str]:
        grpc, http, metrics = ports
        command = [
            str(install.binary),
            f"--model-repository={repository}",
            f"--backend-directory={backends}",
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
            f"--log-verbose={self._log_verbose}",
            f"--backend-config=python,shm-region-prefix-name={self._shm_prefix}",
        ]
        if self._explicit:
            command += ["--model-control-mode=explicit", "--load-model=*"]
        if self._grpc_tls is not None:
            command += [
                "--grpc-use-ssl=true",
                f"--grpc-server-cert={self._grpc_tls.cert}",
                f"--grpc-server-key={self._grpc_tls.key}",
            ]
        return command

    def _environment(self, install: TritonInstall) -> dict[str, str]:
        env = dict(os.environ)
        libs = [str(p) for p in install.lib_dirs]
        if env.get("LD_LIBRARY_PATH"):
            libs.append(env["LD_LIBRARY_PATH"])
        env["LD_LIBRARY_PATH"] = os.pathsep.join(libs)
        # The python backend stub ignores PYTHONPATH; it finds this environment's packages
        # (torch, numpy) through the `python3` first on PATH.
        env["PATH"] = os.pathsep.join(
            [str(Path(sys.prefix) / "bin"), *filter(None, [env.get("PATH")])]
        )
        return env

    async def _spawn(
        self,
        install: TritonInstall,
        repository: Path,
        backends: Path,
        ports: tuple[int, ...],
        use_gpu: bool,
    ) -> None:
        command = self._command(install, repository, backends, ports)
        if not use_gpu:
            # No CUDA: skip GPU metrics and the pinned host memory pool (which needs CUDA).
            command += ["--allow-gpu-metrics=false", "--pinned-memory-pool-byte-size=0"]
        preexec = None
        setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
        if setpriv is not None:
            command = [setpriv, "--pdeathsig", "TERM", "--", *command]
        else:
            preexec = _die_with_parent()
        logger.debug("starting %s", " ".join(command))
        self._output.clear()
        self._process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=self._environment(install),
            cwd=str(self._dir),
            preexec_fn=preexec,
        )
        self._reader = asyncio.create_task(self._read_output(self._process))

    async def _read_output(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while True:
            try:
                raw = await process.stdout.readline()
            except ValueError:  # a line longer than the stream limit: keep going
                continue
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip()
            self._output.append(line)
            logger.debug("triton: %s", line)

    async def _wait_ready(self, grpc_port: int, deadline: float) -> None:
        from tritonclient.grpc.aio import InferenceServerClient

        process = self._process
        assert process is not None
        loop = asyncio.get_running_loop()
        tls = self._grpc_tls
        client = InferenceServerClient(
            f"127.0.0.1:{grpc_port}",
            ssl=tls is not None,
            root_certificates=None if tls is None else str(tls.ca),
        )
        try:
            while True:
                if process.returncode is not None:
                    await self._drain_reader()
                    raise TritonStartError(
                        f"tritonserver exited with code {process.returncode} during startup"
                        + self._diagnosis()
                    )
                if await self._ready(client):
                    return
                if loop.time() > deadline:
                    raise TritonStartError(
                        f"tritonserver was not ready after {self._startup_timeout_s:.0f} s"
                        + self._diagnosis()
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), 0.25)
        finally:
            await client.close()

    async def _ready(self, client: Any) -> bool:
        from tritonclient.utils import InferenceServerException

        try:
            if not await client.is_server_ready(client_timeout=2.0):
                return False
            for name in self._models:
                if not await client.is_model_ready(name, client_timeout=2.0):
                    return False
        except InferenceServerException:
            return False
        return True

    async def _drain_reader(self) -> None:
        if self._reader is not None:
            await asyncio.wait({self._reader}, timeout=2.0)

    async def _terminate(self) -> None:
        """SIGINT, wait for Triton's own exit timeout, then SIGKILL."""
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
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
        if process is not None and self._shm_prefix:
            kill_orphaned_stubs(self._shm_prefix)
        reader, self._reader = self._reader, None
        if reader is not None:
            # A stray stub could keep the pipe open after Triton is gone: do not wait on it.
            _, pending = await asyncio.wait({reader}, timeout=_READER_WAIT_S)
            if pending:
                reader.cancel()
        if process is not None:
            # asyncio closes a subprocess transport only once every pipe has reached EOF; a
            # stub that outlives a killed Triton holds the pipe, and the transport (one fd per
            # crash) would stay open until garbage collection.
            transport = getattr(process, "_transport", None)
            if transport is not None:
                transport.close()

    async def _stop(self) -> None:
        self._endpoints = None
        self._launch = None
        try:
            await self._terminate()
        finally:
            self._remove_shared_memory()
            if self._dir is not None and self._owns_dir:
                await asyncio.to_thread(shutil.rmtree, self._dir, True)
            self._dir = None
            self._owns_dir = False

    def _remove_shared_memory(self) -> None:
        shm = Path("/dev/shm")
        if not self._shm_prefix or not shm.is_dir():
            return
        for leftover in shm.glob(f"{self._shm_prefix}*"):
            with contextlib.suppress(OSError):
                leftover.unlink()
