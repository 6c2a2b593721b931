"""Hashes of the models in a repository, and whether a rebuild reproduced the committed ones.

A TorchScript file is a zip: its tensors (``*/data/<n>``), the pickled module, the scripted
code and that code's debug records (``*.debug_pkl``, which hold the source path of the
recipe that scripted it, so the path of the checkout) and ``.data/serialization_id`` (a hash
of the other records). Two builds from different checkouts therefore differ as files while
everything that runs is bit-identical. This prints three sha256 hashes: the file's; the
graph's (every record but the debug records and the serialization id: code, module pickle,
constants, tensors); the tensors' alone (name and bytes, in name order).

Usage: python -m recipes.model_hashes [--repository DIR] [--against model_repository]
"""

from __future__ import annotations

import argparse
import hashlib
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class ModelHashes:
    file: str
    graph: str
    weights: str
    files: dict[str, str]
    """sha256 of every other file of the model directory (config, labels, card)."""


def records_sha256(model: Path, keep: Callable[[str], bool]) -> str:
    """sha256 over the records `keep` accepts, by name without the archive's top folder."""
    digest = hashlib.sha256()
    with zipfile.ZipFile(model) as archive:
        for name in sorted(archive.namelist(), key=lambda n: n.split("/", 1)[1]):
            inner = name.split("/", 1)[1]
            if keep(inner):
                digest.update(inner.encode())
                digest.update(archive.read(name))
    return digest.hexdigest()


def is_tensor(inner: str) -> bool:
    return inner.startswith("data/")


def is_graph(inner: str) -> bool:
    return not inner.endswith(".debug_pkl") and inner != ".data/serialization_id"


def model_hashes(model_dir: Path) -> ModelHashes:
    model = model_dir / "1" / "model.pt"
    others = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(model_dir.iterdir())
        if p.is_file()
    }
    return ModelHashes(
        hashlib.sha256(model.read_bytes()).hexdigest(),
        records_sha256(model, is_graph),
        records_sha256(model, is_tensor),
        others,
    )


def models(repository: Path) -> list[str]:
    return sorted(p.parent.parent.name for p in repository.glob("*/1/model.pt"))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--repository", type=Path, default=ROOT / "model_repository")
    parser.add_argument("--against", type=Path, help="the committed repository to compare with")
    args = parser.parse_args(argv)
    for name in models(args.repository):
        built = model_hashes(args.repository / name)
        print(
            f"{name}: file {built.file[:16]}  graph {built.graph[:16]}  "
            f"weights {built.weights[:16]}"
        )
        if args.against is None:
            continue
        if not (args.against / name / "1" / "model.pt").is_file():
            print("  not in", args.against)
            continue
        ref = model_hashes(args.against / name)
        verdicts = [
            f"{what} {'same' if mine == theirs else 'DIFFERS'}"
            for what, mine, theirs in (
                ("file", built.file, ref.file),
                ("graph", built.graph, ref.graph),
                ("weights", built.weights, ref.weights),
            )
        ]
        print(f"  against {args.against}: " + ", ".join(verdicts))
        for other in sorted(set(built.files) | set(ref.files)):
            if built.files.get(other) != ref.files.get(other):
                print(f"  {other} differs")


if __name__ == "__main__":
    main()
