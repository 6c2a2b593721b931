"""``tritone evaluate``: classify a labelled data set through a gateway and score the model.

    tritone evaluate DATA --model NAME [--target HOST:PORT] [--concurrency 8]
                          [--report out.json] [--confusion out.png]

DATA is an *audiofolder* (one sub-folder per label, every non-hidden file in it a clip) or
a CSV file of ``path,label`` rows (an optional ``path,label`` header; relative paths are
relative to the CSV's folder). Every clip is sent to the server as its encoded bytes (the
server decodes WAV, FLAC, OGG, MP3 ... at any rate), ``--concurrency`` at a time, and the
model's best label is compared with the clip's label.

Printed and written to the JSON report: accuracy, per-class precision, recall and F1, and
their macro averages over the labels in the data. A label the model predicts that is not in
the data (``unknown`` for instance) is an error for the clip's true label; it gets a row in
the per-class table and a column in the confusion matrix, but no weight in the macro
averages. A precision or recall of 0/0 counts as 0 (as scikit-learn's ``zero_division=0``).
The confusion matrix (rows: true labels, columns: predicted labels, label names in the JSON)
can also be written as a PNG heat map.

This module is part of the light SDK: standard library, numpy and the SDK only.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import math
import os
import struct
import sys
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt

from tritone._client import AsyncClient
from tritone.cli import add_connection_arguments, connection_options
from tritone.errors import TritoneError, UsageError

__all__ = [
    "ClassMetrics",
    "DatasetError",
    "Metrics",
    "ProgressBar",
    "compute_metrics",
    "confusion_png",
    "list_dataset",
    "main",
]

DEFAULT_CONCURRENCY = 8


class DatasetError(ValueError):
    """The data set cannot be used: a missing folder, a bad CSV row, no clips."""


# --------------------------------------------------------------------------- data sets


def list_dataset(data: str | os.PathLike[str]) -> list[tuple[Path, str]]:
    """The clips of an audiofolder or a ``path,label`` CSV, as (path, label) pairs.

    An audiofolder has one sub-folder per label; every non-hidden regular file in a label's
    folder (recursively) is one of its clips. Files directly in DATA are ignored. A CSV has
    two columns, path and label, and may start with a ``path,label`` header; relative paths
    are taken from the CSV's folder. The order is deterministic: labels, then paths, sorted.
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


# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True, slots=True)
class ClassMetrics:
    """Precision, recall and F1 of one label; support is its number of true clips."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True, slots=True)
class Metrics:
    """Scores of predictions against true labels."""

    labels: tuple[str, ...]
    """Rows and columns of `confusion`: the data's labels sorted, then predicted-only ones."""
    data_labels: tuple[str, ...]
    """The labels present in the true labels; the macro averages are over these."""
    accuracy: float
    per_class: tuple[ClassMetrics, ...]
    """One entry per label of `labels`, in that order."""
    macro_precision: float
    macro_recall: float
    macro_f1: float
    confusion: tuple[tuple[int, ...], ...]
    """confusion[i][j]: clips of true label labels[i] predicted as labels[j]."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "macro": {
                "precision": self.macro_precision,
                "recall": self.macro_recall,
                "f1": self.macro_f1,
            },
            "per_class": {
                c.label: {
                    "precision": c.precision,
                    "recall": c.recall,
                    "f1": c.f1,
                    "support": c.support,
                }
                for c in self.per_class
            },
            "labels": list(self.labels),
            "data_labels": list(self.data_labels),
            "confusion": [list(row) for row in self.confusion],
        }


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else 0.0


def compute_metrics(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str] | None = None
) -> Metrics:
    """Accuracy, per-class P/R/F1, macro averages and the confusion matrix.

    `labels` fixes the order of the data's labels (default: sorted); labels that only occur
    in `y_pred` follow them, sorted. 0/0 counts as 0.
    """
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} true labels but {len(y_pred)} predictions")
    if not y_true:
        raise ValueError("no predictions to score")
    data_labels = list(labels) if labels is not None else sorted(set(y_true))
    missing = set(y_true) - set(data_labels)
    if missing:
        raise ValueError(f"true labels {sorted(missing)} are not in labels")
    extra = sorted(set(y_pred) - set(data_labels))
    order = [*data_labels, *extra]
    index = {label: i for i, label in enumerate(order)}
    matrix: npt.NDArray[np.int64] = np.zeros((len(order), len(order)), dtype=np.int64)
    for t, p in zip(y_true, y_pred, strict=True):
        matrix[index[t], index[p]] += 1
    tp = np.diag(matrix)
    predicted = matrix.sum(axis=0)
    actual = matrix.sum(axis=1)
    per_class = []
    for i, label in enumerate(order):
        precision = _ratio(tp[i], predicted[i])
        recall = _ratio(tp[i], actual[i])
        f1 = _ratio(2 * tp[i], predicted[i] + actual[i])
        per_class.append(ClassMetrics(label, precision, recall, f1, int(actual[i])))
    macro = per_class[: len(data_labels)]
    return Metrics(
        labels=tuple(order),
        data_labels=tuple(data_labels),
        accuracy=float(tp.sum()) / len(y_true),
        per_class=tuple(per_class),
        macro_precision=float(np.mean([c.precision for c in macro])),
        macro_recall=float(np.mean([c.recall for c in macro])),
        macro_f1=float(np.mean([c.f1 for c in macro])),
        confusion=tuple(tuple(int(v) for v in row) for row in matrix),
    )


def format_metrics(metrics: Metrics) -> str:
    """A plain-text table: accuracy, per-class P/R/F1/support, macro averages."""
    width = max(12, *(len(label) for label in metrics.labels))
    lines = [
        f"accuracy {metrics.accuracy:.4f}",
        "",
        f"{'label':<{width}}  precision  recall      f1  support",
    ]
    for c in metrics.per_class:
        lines.append(
            f"{c.label:<{width}}  {c.precision:9.4f}  {c.recall:6.4f}  {c.f1:6.4f}  {c.support:7d}"
        )
    lines.append(
        f"{'macro avg':<{width}}  {metrics.macro_precision:9.4f}  {metrics.macro_recall:6.4f}  "
        f"{metrics.macro_f1:6.4f}  {sum(c.support for c in metrics.per_class):7d}"
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------- PNG


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def write_png(path: str | os.PathLike[str], rgb: npt.NDArray[np.uint8]) -> None:
    """Write an RGB image (uint8 [height, width, 3]) as an 8-bit truecolour PNG."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected uint8 [height, width, 3], got {rgb.dtype} {rgb.shape}")
    height, width = int(rgb.shape[0]), int(rgb.shape[1])
    # Filter type 0 (None) in front of every scanline.
    raw = np.zeros((height, 1 + 3 * width), dtype=np.uint8)
    raw[:, 1:] = rgb.reshape(height, 3 * width)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(raw.tobytes(), 9))
        + _png_chunk(b"IEND", b"")
    )
    Path(path).write_bytes(data)


def confusion_png(
    path: str | os.PathLike[str], confusion: Sequence[Sequence[int]], cell: int = 24
) -> None:
    """The confusion matrix as a heat map: one square per cell, rows are true labels.

    Each row is normalised by its total (white 0 -> dark blue 1), cells on the diagonal
    are drawn in blue, errors in red, and a grey grid separates the cells. Labels are not
    drawn: they are in the JSON report, in the same order.
    """
    matrix = np.asarray(confusion, dtype=np.float64)
    n = matrix.shape[0]
    if matrix.ndim != 2 or matrix.shape[1] != n or n == 0:
        raise ValueError(f"expected a square, non-empty matrix, got shape {matrix.shape}")
    totals = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    size = n * cell + 1
    image = np.full((size, size, 3), 160, dtype=np.uint8)  # the grid colour
    good = np.array([8, 48, 107], dtype=np.float64)
    bad = np.array([165, 15, 21], dtype=np.float64)
    white = np.array([255, 255, 255], dtype=np.float64)
    for i in range(n):
        for j in range(n):
            tint = good if i == j else bad
            colour = white + (tint - white) * share[i, j]
            top, left = i * cell + 1, j * cell + 1
            image[top : top + cell - 1, left : left + cell - 1] = np.rint(colour).astype(np.uint8)
    write_png(path, image)


# --------------------------------------------------------------------------- progress


class ProgressBar:
    """A one-line progress bar on a terminal stream (stderr), redrawn at most 10x a second."""

    def __init__(self, total: int, description: str, out: TextIO | None = None) -> None:
        self.total = total
        self.done = 0
        self.description = description
        self.out = out if out is not None else sys.stderr
        self._started = time.monotonic()
        self._drawn = 0.0
        self._draw(force=True)

    def update(self, n: int = 1) -> None:
        self.done += n
        self._draw(force=self.done >= self.total)

    def close(self) -> None:
        self._draw(force=True)
        self.out.write("\n")
        self.out.flush()

    def _draw(self, *, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._drawn < 0.1:
            return
        self._drawn = now
        width = 30
        fraction = self.done / self.total if self.total else 1.0
        filled = math.floor(width * fraction)
        elapsed = now - self._started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        bar = "#" * filled + "." * (width - filled)
        self.out.write(
            f"\r{self.description} [{bar}] {self.done}/{self.total} "
            f"{elapsed:5.1f} s {rate:6.1f} clips/s"
        )
        self.out.flush()


# --------------------------------------------------------------------------- the command


@dataclass
class _Outcome:
    predictions: dict[int, str] = field(default_factory=dict)
    scores: dict[int, float] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)


async def classify_all(
    client: AsyncClient,
    clips: Sequence[tuple[Path, str]],
    model: str,
    concurrency: int,
    progress: ProgressBar | None = None,
) -> _Outcome:
    """Classify every clip (its file's bytes), `concurrency` requests in flight."""
    outcome = _Outcome()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(clips)):
        queue.put_nowait(i)

    async def worker() -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            try:
                result = await client.classify(clips[i][0], model=model, top_k=1)
            except (TritoneError, OSError) as exc:
                outcome.errors[i] = str(exc)
            else:
                top = result.top
                if top is None:
                    outcome.errors[i] = f"model {model!r} returned no labels"
                else:
                    outcome.predictions[i] = top.label
                    outcome.scores[i] = top.score
            if progress is not None:
                progress.update()

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(clips))))))
    return outcome


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tritone evaluate",
        description="Classify every clip of a labelled audiofolder or CSV through the gateway "
        "and print accuracy and per-class precision, recall and F1.",
    )
    parser.add_argument("data", metavar="DATA", help="audiofolder (a folder per label) or CSV")
    parser.add_argument("--model", required=True, help="model to evaluate")
    add_connection_arguments(parser)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help="requests in flight (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds allowed per clip, queueing included (default: %(default)s)",
    )
    parser.add_argument("--report", type=Path, help="write a JSON report here")
    parser.add_argument("--confusion", type=Path, help="write the confusion matrix as a PNG here")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


async def _run(args: argparse.Namespace) -> int:
    clips = list_dataset(args.data)
    options = connection_options(args)
    async with AsyncClient(args.target, timeout=args.timeout, **options) as c:
        info = await c.get_model(args.model)
        progress = None if args.quiet else ProgressBar(len(clips), "evaluate")
        try:
            outcome = await classify_all(c, clips, args.model, args.concurrency, progress)
        finally:
            if progress is not None:
                progress.close()
    for i, why in sorted(outcome.errors.items()):
        print(f"error: {clips[i][0]}: {why}", file=sys.stderr)
    scored = sorted(outcome.predictions)
    if not scored:
        print("error: no clip could be classified", file=sys.stderr)
        return 1
    y_true = [clips[i][1] for i in scored]
    y_pred = [outcome.predictions[i] for i in scored]
    metrics = compute_metrics(y_true, y_pred)
    print(f"model {info.name} {info.version} on {args.data}: {len(scored)} clips")
    print(format_metrics(metrics))
    unknown_to_model = sorted(set(y_true) - set(info.labels))
    if unknown_to_model:
        print(f"note: labels in the data that the model lacks: {', '.join(unknown_to_model)}")
    if args.report is not None:
        report = {
            "model": info.name,
            "model_version": info.version,
            "model_labels": list(info.labels),
            "data": str(args.data),
            "clips": len(clips),
            "classified": len(scored),
            **metrics.as_dict(),
            "predictions": [
                {
                    "path": str(clips[i][0]),
                    "label": clips[i][1],
                    "predicted": outcome.predictions[i],
                    "score": outcome.scores[i],
                }
                for i in scored
            ],
            "errors": [
                {"path": str(clips[i][0]), "label": clips[i][1], "error": why}
                for i, why in sorted(outcome.errors.items())
            ],
        }
        args.report.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.report}")
    if args.confusion is not None:
        confusion_png(args.confusion, metrics.confusion)
        print(f"wrote {args.confusion} (rows: true labels, columns: predicted; order as in JSON)")
    return 1 if outcome.errors else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tritone evaluate``; returns the exit status (1 if any clip failed)."""
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.concurrency < 1:
        print("error: --concurrency must be >= 1", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_run(args))
    except TritoneError as exc:
        print(f"error: {exc.code.name}: {exc.details}", file=sys.stderr)
    except (DatasetError, UsageError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
