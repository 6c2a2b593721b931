"""recipes/model_hashes.py tells a rebuild whose weights equal the committed ones from one
whose weights differ, whatever its debug records (the checkout's path) say."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import torch

from recipes import model_hashes

# Triton's libtorch backend serves TorchScript, which torch 2.13 deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.:DeprecationWarning")


def save_model(repository: Path, name: str, weight: float) -> Path:
    module = torch.nn.Linear(2, 1)
    with torch.no_grad():
        module.weight.fill_(weight)
        module.bias.zero_()
    model_dir = repository / name
    (model_dir / "1").mkdir(parents=True)
    path = model_dir / "1" / "model.pt"
    torch.jit.save(torch.jit.script(module), str(path))
    (model_dir / "config.pbtxt").write_text(f'name: "{name}"\n')
    return path


def rewrite_debug_records(path: Path) -> None:
    """As a build from another checkout would: other source paths in the debug records."""
    with zipfile.ZipFile(path) as archive:
        records = {name: archive.read(name) for name in archive.namelist()}
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in records.items():
            archive.writestr(name, data + b" " if name.endswith(".debug_pkl") else data)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    model_hashes.main(argv)
    return capsys.readouterr().out


def test_other_debug_records_change_the_file_but_not_the_graph_or_weights(tmp_path: Path) -> None:
    committed = save_model(tmp_path / "committed", "m", 0.5)
    rebuilt = save_model(tmp_path / "rebuilt", "m", 0.5)
    rewrite_debug_records(rebuilt)
    ours = model_hashes.model_hashes(rebuilt.parents[1])
    theirs = model_hashes.model_hashes(committed.parents[1])
    assert ours.file != theirs.file
    assert (ours.graph, ours.weights) == (theirs.graph, theirs.weights)


def test_other_weights_are_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save_model(tmp_path / "committed", "m", 0.5)
    save_model(tmp_path / "rebuilt", "m", 0.25)
    out = run(
        ["--repository", str(tmp_path / "rebuilt"), "--against", str(tmp_path / "committed")],
        capsys,
    )
    assert "graph DIFFERS, weights DIFFERS" in out


def test_same_weights_and_files_are_reported_same(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save_model(tmp_path / "committed", "m", 0.5)
    save_model(tmp_path / "rebuilt", "m", 0.5)
    out = run(
        ["--repository", str(tmp_path / "rebuilt"), "--against", str(tmp_path / "committed")],
        capsys,
    )
    assert "file same, graph same, weights same" in out
    assert "differs" not in out
