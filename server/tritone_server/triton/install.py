"""Where the pip-installed Triton is, and what this machine offers it.

The server binary comes from the nvidia-pytriton wheel, which ships Triton with the python
backend (and a stub per Python version) but without the libtorch backend. Found without
importing pytriton; a GPU is looked for in a child interpreter, so the gateway never
imports torch.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TritonInstall", "TritonStartError", "cuda_available", "find_tritonserver"]


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


def _has_nvidia_driver() -> bool:
    return Path("/dev/nvidiactl").exists() or Path("/proc/driver/nvidia").exists()


async def cuda_available() -> bool:
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
