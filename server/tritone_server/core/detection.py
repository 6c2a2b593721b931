"""The detection rule, in one place: the gateway's streams and offline scoring both use it.

A detection of a watched label is a run of consecutive windows whose score for that label is
at or above the label's threshold, lasting at least ``min_windows`` windows; it spans from
the first window's start to the last window's end, and its peak is the run's highest score.

Two forms of the one rule: `SpanDetector` follows a live stream window by window (the
gateway, `tritone_server.core.streams`); `detection_spans` and `count_detections` apply it
to one label's whole column of window scores at once (``tritone evaluate --detect``,
`tritone_tools.evaluation.metrics`, and the recipes that calibrate thresholds on cached
scores). tests/unit/server/core/test_detection.py checks that the forms agree.

numpy and the standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["SpanDetector", "check_min_windows", "count_detections", "detection_spans"]

FloatArray = npt.NDArray[np.float32]


class SpanDetector:
    """The rule as a live stream applies it, one window at a time: a span opens when a watched
    label's score reaches its threshold and is reported when the score falls back (or the
    stream ends, `close_all`), if it lasted ``min_windows`` windows."""

    def __init__(self, labels: tuple[str, ...], thresholds: Mapping[str, float], min_windows: int):
        self.thresholds = {labels.index(label): t for label, t in thresholds.items()}
        self.min_windows = min_windows
        self.labels = labels
        self.open: dict[int, tuple[float, float, float, int]] = {}  # index -> start, end, peak, n
        self.count = 0

    def update(
        self, scores: FloatArray, start_s: float, end_s: float
    ) -> list[tuple[str, float, float, float]]:
        closed = []
        for i, threshold in self.thresholds.items():
            score = float(scores[i])
            span = self.open.get(i)
            if score >= threshold:
                if span is None:
                    self.open[i] = (start_s, end_s, score, 1)
                else:
                    self.open[i] = (span[0], end_s, max(span[2], score), span[3] + 1)
            elif span is not None:
                if span[3] >= self.min_windows:
                    closed.append((self.labels[i], *span[:3]))
                del self.open[i]
        self.count += len(closed)
        return closed

    def close_all(self, end_s: float) -> list[tuple[str, float, float, float]]:
        closed = [
            (self.labels[i], s, min(e, end_s), p)
            for i, (s, e, p, n) in sorted(self.open.items())
            if n >= self.min_windows
        ]
        self.open.clear()
        self.count += len(closed)
        return closed


def _column(scores: npt.ArrayLike) -> npt.NDArray[np.floating[Any]]:
    # Compared in the scores' own precision, as numpy compares an array with a Python float.
    # The gateway widens each float32 score to a Python float before comparing, so float64
    # scores (what ``tritone evaluate`` builds from the wire's values) follow it exactly; a
    # float32 column can differ only for a score within float32 rounding of the threshold.
    column = np.asarray(scores)
    if not np.issubdtype(column.dtype, np.floating):
        column = column.astype(np.float64)
    if column.ndim != 1:
        raise ValueError(f"expected one label's window scores (1-D), got shape {column.shape}")
    return column


def check_min_windows(min_windows: int) -> None:
    if isinstance(min_windows, bool) or not isinstance(min_windows, int) or min_windows < 1:
        raise ValueError(f"min_windows must be an int >= 1, got {min_windows!r}")


def detection_spans(
    scores: npt.ArrayLike, threshold: float, min_windows: int = 1
) -> list[tuple[int, int]]:
    """(first, last) window of each detection a stream makes on one label's window scores:
    every run of windows at or above `threshold` lasting at least `min_windows` windows."""
    check_min_windows(min_windows)
    column = _column(scores)
    above = np.concatenate(([False], column >= threshold, [False]))
    edges = np.flatnonzero(np.diff(above.astype(np.int8)))
    starts, stops = edges[0::2], edges[1::2]  # stops are one past the run's last window
    keep = stops - starts >= min_windows
    return [(int(a), int(b) - 1) for a, b in zip(starts[keep], stops[keep], strict=True)]


def count_detections(
    scores: npt.ArrayLike, thresholds: Sequence[float], min_windows: int = 1
) -> npt.NDArray[np.int64]:
    """Detections on one label's window scores at each of `thresholds` (as many counts as
    thresholds): ``len(detection_spans(scores, t, min_windows))`` for every t at once."""
    check_min_windows(min_windows)
    column = _column(scores)
    grid = np.asarray(thresholds, dtype=column.dtype).reshape(-1)
    above = column[None, :] >= grid[:, None]  # [thresholds, windows]
    before = np.zeros((grid.shape[0], 1), dtype=bool)
    starts = above & ~np.concatenate((before, above[:, :-1]), axis=1)  # a run begins here
    if min_windows > 1:
        # A run that begins at window j lasts min_windows windows iff all of
        # above[j : j + min_windows] hold; prefix sums answer that for every j at once.
        n = column.shape[0]
        sums: npt.NDArray[np.int64] = np.concatenate(
            (before.astype(np.int64), np.cumsum(above, axis=1, dtype=np.int64)), axis=1
        )
        j = np.arange(max(0, n - min_windows + 1))
        long_enough = np.zeros_like(above)
        long_enough[:, j] = sums[:, j + min_windows] - sums[:, j] == min_windows
        starts &= long_enough
    counts: npt.NDArray[np.int64] = starts.sum(axis=1).astype(np.int64)
    return counts
