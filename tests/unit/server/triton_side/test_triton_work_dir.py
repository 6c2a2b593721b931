"""TritonWorkDir: the derived repository and the backend directory a local Triton runs on."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tritone_server.triton.install import TritonInstall
from tritone_server.triton.work_dir import TritonWorkDir

REPOSITORY = Path(__file__).resolve().parents[4] / "model_repository"


@pytest.fixture
def source(tmp_path: Path) -> Path:
    repository = tmp_path / "src"
    shutil.copytree(REPOSITORY / "tones", repository / "tones")
    return repository


@pytest.fixture
def install(tmp_path: Path) -> TritonInstall:
    backend = tmp_path / "wheel" / "backends" / "python"
    backend.mkdir(parents=True)
    (backend / "libtriton_python.so").write_bytes(b"lib")
    (backend / "triton_python_backend_utils.py").write_text("# utils\n")
    stub = tmp_path / "wheel" / "stubs" / "triton_python_backend_stub"
    stub.parent.mkdir()
    stub.write_bytes(b"stub")
    return TritonInstall(tmp_path / "wheel" / "tritonserver", (), backend, stub)


def test_prepare_derives_the_repository_and_lays_out_the_backend(
    source: Path, install: TritonInstall, tmp_path: Path
) -> None:
    work = TritonWorkDir(source, tmp_path / "work", use_gpu=False)
    work.prepare(install)
    assert work.models == ["tones"]
    assert 'backend: "python"' in (work.repository / "tones" / "config.pbtxt").read_text()
    python = work.backends / "python"
    assert sorted(p.name for p in python.iterdir()) == [
        "libtriton_python.so",
        "triton_python_backend_stub",
        "triton_python_backend_utils.py",
    ]
    assert (python / "triton_python_backend_stub").read_bytes() == b"stub"


def test_prepare_starts_from_a_fresh_repository(
    source: Path, install: TritonInstall, tmp_path: Path
) -> None:
    work = TritonWorkDir(source, tmp_path / "work", use_gpu=False)
    work.prepare(install)
    (work.repository / "gone").mkdir()
    work.prepare(install)
    assert not (work.repository / "gone").exists()


def test_refresh_model_derives_a_new_model_and_refuses_an_unknown_one(
    source: Path, install: TritonInstall, tmp_path: Path
) -> None:
    work = TritonWorkDir(source, tmp_path / "work", use_gpu=True)
    work.prepare(install)
    shutil.copytree(source / "tones", source / "added")
    work.refresh_model("added")
    assert work.models == ["added", "tones"]
    assert "KIND_GPU" in (work.repository / "added" / "config.pbtxt").read_text()
    with pytest.raises(ValueError, match=r"'nope' has no config\.pbtxt"):
        work.refresh_model("nope")


def test_a_temporary_directory_is_removed_and_a_given_one_kept(
    source: Path, install: TritonInstall, tmp_path: Path
) -> None:
    temporary = TritonWorkDir(source, None, use_gpu=False)
    temporary.prepare(install)
    assert temporary.path.is_dir()
    temporary.remove()
    assert not temporary.path.exists()
    given = TritonWorkDir(source, tmp_path / "kept", use_gpu=False)
    given.prepare(install)
    given.remove()
    assert (tmp_path / "kept" / "model_repository" / "tones").is_dir()
