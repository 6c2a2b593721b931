"""find_tritonserver finds the wheel's Triton, and names the piece that is missing."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tritone_server.triton.install import TritonInstall, TritonStartError, find_tritonserver


def test_find_tritonserver_locates_the_wheel() -> None:
    install = find_tritonserver()
    assert isinstance(install, TritonInstall)
    assert install.binary.name == "tritonserver" and os.access(install.binary, os.X_OK)
    assert install.stub.parent.name == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert all(path.is_dir() for path in install.lib_dirs)
    assert (install.python_backend_dir / "libtriton_python.so").is_file()


def test_a_missing_piece_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = find_tritonserver()
    package = real.binary.parents[2]  # .../pytriton
    fake = tmp_path / "pytriton"
    (fake / "tritonserver" / "bin").mkdir(parents=True)
    (fake / "tritonserver" / "bin" / "tritonserver").symlink_to(real.binary)
    (tmp_path / "nvidia_pytriton.libs").mkdir()
    (fake / "__init__.py").write_text("")
    assert package.name == "pytriton"
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(TritonStartError, match="python backend is missing"):
        find_tritonserver()
