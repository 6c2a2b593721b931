"""The directory a local Triton runs in: the derived repository and the backends it loads.

The committed (production) repository is not served as is: `derive_python_backend_repository`
writes a twin of it that runs each TorchScript file through the generic python-backend model,
and `backends/python/` holds the wheel's python backend with the stub for this Python.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from tritone_server.triton.derived_repository import derive_python_backend_repository, link_or_copy
from tritone_server.triton.install import TritonInstall

__all__ = ["TritonWorkDir"]


class TritonWorkDir:
    """A work directory: a temporary one removed by `remove`, or a given one kept (so the
    derived files can be inspected)."""

    def __init__(self, source: Path, path: Path | None, *, use_gpu: bool) -> None:
        self.source = Path(source)
        self.use_gpu = use_gpu
        if path is None:
            self.path = Path(tempfile.mkdtemp(prefix="tritone-triton-"))
            self._owned = True
        else:
            self.path = Path(path)
            self.path.mkdir(parents=True, exist_ok=True)
            self._owned = False
        self.models: list[str] = []
        """Names of the models in the derived repository."""

    @property
    def repository(self) -> Path:
        return self.path / "model_repository"

    @property
    def backends(self) -> Path:
        return self.path / "backends"

    def prepare(self, install: TritonInstall) -> None:
        """Derive the whole repository afresh and lay out the backend directory."""
        if self.repository.exists():
            shutil.rmtree(self.repository)
        self.models = derive_python_backend_repository(
            self.source, self.repository, use_gpu=self.use_gpu
        )
        python = self.backends / "python"
        python.mkdir(parents=True, exist_ok=True)
        for item in install.python_backend_dir.iterdir():
            if item.is_file():
                link_or_copy(item, python / item.name)
        link_or_copy(install.stub, python / install.stub.name)

    def refresh_model(self, name: str) -> None:
        """Derive model `name` again from the source repository (before Triton loads it)."""
        if not (self.source / name / "config.pbtxt").is_file():
            raise ValueError(f"model {name!r} has no config.pbtxt in {self.source}")
        derive_python_backend_repository(
            self.source, self.repository, use_gpu=self.use_gpu, only=[name]
        )
        if name not in self.models:
            self.models = sorted([*self.models, name])

    def remove(self) -> None:
        """Delete the directory if it is a temporary one."""
        if self._owned:
            shutil.rmtree(self.path, ignore_errors=True)
