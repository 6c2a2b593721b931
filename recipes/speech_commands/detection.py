"""Detections as a stream makes them, offline: windows, spans above threshold, statistics.

The gateway (`tritone_server.core.streams.LiveStream`) classifies 1 s windows every hop
while whole windows are available, then one zero-padded window for the tail; this module
cuts the same windows (tests/unit/recipes/test_kws_evaluation.py compares the two). What
counts as a detection is the gateway's own rule, `tritone_server.core.detection`, applied
to cached window scores, so thresholds can be calibrated without a gateway; the final
figures are measured through the gateway itself (evaluate_real.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats  # type: ignore[import-untyped]

from tritone_server.core.detection import detection_spans

FloatArray = npt.NDArray[np.float32]


def stream_window_starts(total: int, window: int, hop: int) -> list[int]:
    """Window starts of a stream of ``total`` samples, as LiveStream classifies them: whole
    windows every hop, then (if samples are left uncovered) one zero-padded tail window."""
    starts: list[int] = []
    start = 0
    covered = 0
    while start + window <= total:
        starts.append(start)
        covered = start + window
        start += hop
    if total > covered and start < total:
        starts.append(start)
    return starts


def stream_windows(x: FloatArray, window: int = 16_000, hop: int = 4_000) -> FloatArray:
    """The windows LiveStream would classify for audio ``x`` (already at the model's rate)."""
    starts = stream_window_starts(int(x.shape[0]), window, hop)
    out = np.zeros((len(starts), window), dtype=np.float32)
    for i, s in enumerate(starts):
        part = x[s : s + window]
        out[i, : part.shape[0]] = part
    return out


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """Per-label thresholds (labels not named are not watched) and the shortest span."""

    thresholds: Mapping[str, float]
    min_windows: int = 1


def detections(
    scores: FloatArray, labels: Sequence[str], point: OperatingPoint
) -> list[tuple[str, int, int, float]]:
    """(label, first window, last window, peak) of each detection in one stream's scores; the
    spans are the gateway's rule (`tritone_server.core.detection.detection_spans`), which
    ``tritone evaluate --detect`` counts by too."""
    found: list[tuple[str, int, int, float]] = []
    for label, threshold in point.thresholds.items():
        column = scores[:, labels.index(label)]
        for first, last in detection_spans(column, threshold, point.min_windows):
            found.append((label, first, last, float(column[first : last + 1].max())))
    return found


def poisson_interval(count: int, exposure: float, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Garwood) interval for a Poisson rate: ``count`` events in ``exposure`` units."""
    alpha = 1.0 - confidence
    low = 0.0 if count == 0 else stats.chi2.ppf(alpha / 2, 2 * count) / 2
    high = stats.chi2.ppf(1 - alpha / 2, 2 * count + 2) / 2
    return float(low / exposure), float(high / exposure)


def binomial_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval for a proportion k / n."""
    if n == 0:
        return (math.nan, math.nan)
    alpha = 1.0 - confidence
    low = 0.0 if k == 0 else stats.beta.ppf(alpha / 2, k, n - k + 1)
    high = 1.0 if k == n else stats.beta.ppf(1 - alpha / 2, k + 1, n - k)
    return float(low), float(high)
