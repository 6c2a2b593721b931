"""Labelled clips for training: an audiofolder or a ``path,label`` CSV, decoded to 16 kHz mono.

The listing is evaluation's (`tritone_tools.evaluation.datasets.list_dataset`), so
``tritone train`` and ``tritone evaluate`` read the same data the same way. Every file is
decoded with soundfile (any container and sample rate libsndfile reads), downmixed to mono
by averaging channels and resampled with soxr to the backbone's rate.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr
from tqdm import tqdm

from tritone_tools.evaluation.datasets import DatasetError, list_dataset

__all__ = ["Dataset", "DatasetError", "check_labels", "load_audio", "load_dataset"]

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Dataset:
    """Decoded clips with their labels; `labels` is the sorted set of label names."""

    waves: list[FloatArray]
    targets: npt.NDArray[np.int64]
    labels: tuple[str, ...]
    paths: list[Path]

    def counts(self) -> dict[str, int]:
        counter = Counter(int(t) for t in self.targets)
        return {label: counter[i] for i, label in enumerate(self.labels)}


def load_audio(path: str | os.PathLike[str], sample_rate: int) -> FloatArray:
    """A file's samples as float32 mono at `sample_rate`; raises on unreadable or empty files."""
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    if data.shape[0] == 0:
        raise ValueError("no audio frames")
    mono: npt.NDArray[Any] = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.all(np.isfinite(mono)):
        raise ValueError("samples that are not finite numbers")
    if int(rate) != sample_rate:
        mono = soxr.resample(mono, int(rate), sample_rate, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


def check_labels(pairs: list[tuple[Path, str]]) -> None:
    """At least two labels, each with at least two clips (one to train, one to validate)."""
    counts = Counter(label for _, label in pairs)
    if len(counts) < 2:
        found = ", ".join(sorted(counts)) or "none"
        raise DatasetError(f"training needs at least 2 labels; the data has {found}")
    few = sorted(label for label, n in counts.items() if n < 2)
    if few:
        raise DatasetError(
            "every label needs at least 2 clips (one for training, one for validation); "
            + ", ".join(f"{label!r} has {counts[label]}" for label in few)
        )


def load_dataset(
    data: str | os.PathLike[str], sample_rate: int, *, progress: bool = True
) -> Dataset:
    """List, check and decode a data set; all unreadable files are named in one error."""
    pairs = list_dataset(data)
    check_labels(pairs)
    labels = tuple(sorted({label for _, label in pairs}))
    index = {label: i for i, label in enumerate(labels)}
    waves: list[FloatArray] = []
    failures: list[str] = []
    for path, _ in tqdm(pairs, desc="decode", unit="clip", disable=not progress):
        try:
            waves.append(load_audio(path, sample_rate))
        except Exception as exc:  # soundfile raises several types; name the file either way
            failures.append(f"{path}: {exc}")
    if failures:
        shown = "\n  ".join(failures[:20])
        more = f"\n  ... and {len(failures) - 20} more" if len(failures) > 20 else ""
        raise DatasetError(f"{len(failures)} file(s) could not be read:\n  {shown}{more}")
    targets = np.asarray([index[label] for _, label in pairs], dtype=np.int64)
    return Dataset(waves, targets, labels, [path for path, _ in pairs])


def split_off(data: Dataset, label: str) -> tuple[Dataset, list[FloatArray]]:
    """The data set without `label`'s clips, and those clips; the rest re-indexed."""
    if label not in data.labels:
        return data, []
    drop = data.labels.index(label)
    keep = [i for i, t in enumerate(data.targets) if t != drop]
    labels = tuple(x for x in data.labels if x != label)
    index = {x: i for i, x in enumerate(labels)}
    targets = np.asarray([index[data.labels[data.targets[i]]] for i in keep], dtype=np.int64)
    check_labels([(data.paths[i], labels[t]) for i, t in zip(keep, targets, strict=True)])
    others = [data.waves[i] for i, t in enumerate(data.targets) if t == drop]
    kept = Dataset([data.waves[i] for i in keep], targets, labels, [data.paths[i] for i in keep])
    return kept, others
