"""Labelled data sets on disk: an *audiofolder* or a ``path,label`` CSV, listed as clips.

One listing for every tool that reads labelled audio, so ``tritone evaluate`` and
``tritone train`` see the same clips in the same order:

- an audiofolder has one sub-folder per label; every non-hidden regular file in a label's
  folder (recursively) is one of its clips; files directly in the root are ignored;
- a CSV has two columns, path and label, and may start with a ``path,label`` header; blank
  rows and rows starting with ``#`` are skipped; relative paths are taken from the CSV's
  folder.

Nothing is decoded here: the listing only names files. Standard library only.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

__all__ = ["DatasetError", "list_dataset"]


class DatasetError(ValueError):
    """The data set cannot be used: a missing folder, a bad CSV row, no clips."""


def list_dataset(data: str | os.PathLike[str]) -> list[tuple[Path, str]]:
    """The clips of an audiofolder or a ``path,label`` CSV, as (path, label) pairs.

    The order is deterministic: labels, then paths, sorted (a CSV keeps its row order).
    Raises `DatasetError` when `data` is neither, or holds no clips.
    """
    root = Path(data)
    if root.is_dir():
        return _list_audiofolder(root)
    if root.is_file():
        return _list_csv(root)
    raise DatasetError(f"{root} is neither a folder (one sub-folder per label) nor a CSV file")


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _list_audiofolder(root: Path) -> list[tuple[Path, str]]:
    clips: list[tuple[Path, str]] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(p for p in folder.rglob("*") if p.is_file() and not _hidden(p, folder))
        clips.extend((p, folder.name) for p in files)
    if not clips:
        raise DatasetError(
            f"{root} holds no clips: expected one sub-folder per label with audio files in it"
        )
    return clips


def _list_csv(path: Path) -> list[tuple[Path, str]]:
    clips: list[tuple[Path, str]] = []
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"cannot read the CSV {path}: {exc}") from exc
    for number, row in enumerate(rows, start=1):
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if number == 1 and [c.lower() for c in cells[:2]] == ["path", "label"]:
            continue
        if len(cells) != 2 or not cells[0] or not cells[1]:
            raise DatasetError(f"{path}:{number}: expected two columns 'path,label', got {row}")
        clip = Path(cells[0]).expanduser()
        if not clip.is_absolute():
            clip = path.parent / clip
        clips.append((clip, cells[1]))
    if not clips:
        raise DatasetError(f"{path} holds no 'path,label' rows")
    return clips
