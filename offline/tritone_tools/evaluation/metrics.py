"""Scores of predicted labels against true labels: accuracy, per-class P/R/F1, confusion;
and detection scores of window scores: false alarms per hour and recall against threshold.

Shared by ``tritone evaluate`` (predictions from a running gateway) and ``tritone train``
(predictions on its validation split), so both print the same table the same way. The
detection part (DET curves, a threshold per label for a false-alarm budget) is what
``tritone evaluate --detect`` reports and what recipes/speech_commands calibrated its model
with, so a user calibrates a model of their own by the same rules. What counts as one
detection is the gateway's rule itself (`tritone_server.core.detection`; `detection_spans`
and `count_detections` are re-exported from there).

A label that is predicted but not among the true labels (``unknown`` for instance) is an
error for the clip's true label; it gets a row in the per-class table and a column in the
confusion matrix, but no weight in the macro averages. A precision or recall of 0/0 counts
as 0 (as scikit-learn's ``zero_division=0``; the unit tests compare with scikit-learn).

numpy, the standard library and the gateway's numpy-only detection rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from tritone_server.core.detection import check_min_windows, count_detections, detection_spans

__all__ = [
    "DEFAULT_DETECTION_THRESHOLDS",
    "Calibration",
    "ClassMetrics",
    "DetectionCurve",
    "DetectionMetrics",
    "Metrics",
    "OperatingPointDetection",
    "allowed_false_alarms",
    "calibrate_detection",
    "compute_detection_metrics",
    "compute_metrics",
    "count_detections",
    "detection_spans",
    "format_detection",
    "format_metrics",
    "format_operating_point",
    "lowest_threshold",
    "operating_point_detection",
]


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
        """The JSON form ``tritone evaluate --report`` writes."""
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


# ---------------------------------------------------------------- detection: DET curves
#
# A stream detects a label over a span of consecutive windows whose score for that label
# stays at or above the threshold, reported when the score falls back (or the stream ends),
# and only if the span lasted ``min_windows`` windows (the gateway's rule, and the one a
# model's calibrated ``detection_thresholds`` / ``detection_min_windows`` were chosen under).
# The functions below count those spans on window scores, for one threshold or a whole grid.

DEFAULT_DETECTION_THRESHOLDS: tuple[float, ...] = (
    *(round(0.01 * i, 2) for i in range(1, 100)),
    0.995,
    0.999,
)
"""The grid a DET curve is drawn on: 0.01 to 0.99 in steps of 0.01, then 0.995 and 0.999
(calibrated keyword thresholds often sit above 0.9, where the curve moves fastest)."""


def allowed_false_alarms(budget_per_hour: float, hours: float, labels: int) -> int:
    """Each label's share of a false-alarm budget: ``floor(budget * hours / labels)``, so
    that the labels together stay within the budget on `hours` of negative audio."""
    if budget_per_hour < 0 or hours < 0 or labels < 1:
        raise ValueError("budget and hours must be >= 0 and there must be a label")
    return math.floor(budget_per_hour * hours / labels)


def lowest_threshold(
    thresholds: Sequence[float], false_alarms: Sequence[int], allowed: int
) -> float | None:
    """The lowest threshold reached scanning from the highest down before the false alarms
    (one count per threshold) first exceed `allowed`; None if even the highest exceeds it.

    The scan stops at the first excess rather than taking the lowest threshold that
    complies anywhere: the count is not monotonic (a higher threshold can split one span into
    two), and a compliant dip below a noisy region would be luck of the data.
    """
    if len(thresholds) != len(false_alarms):
        raise ValueError(f"{len(thresholds)} thresholds but {len(false_alarms)} counts")
    chosen: float | None = None
    for t, count in sorted(zip(thresholds, false_alarms, strict=True), reverse=True):
        if count > allowed:
            break
        chosen = float(t)
    return chosen


@dataclass(frozen=True, slots=True)
class DetectionCurve:
    """One watched label's (or all of them together) detections at each threshold."""

    label: str
    """The watched label, or ``"all"`` for every watched label together."""
    positives: int
    """Clips of this label (all: of any watched label)."""
    hits: tuple[int, ...]
    """Positive clips with at least one detection of their own label, per threshold."""
    false_alarms: tuple[int, ...]
    """Detections of this label (all: of any watched label) in negative clips."""
    other_detections: tuple[int, ...]
    """Detections of this label in clips of another watched label (all: any such)."""
    negative_hours: float
    """Hours of negative audio the false alarms were counted on."""

    @property
    def recall(self) -> tuple[float, ...]:
        """hits / positives per threshold (NaN when the data has no clip of the label)."""
        if not self.positives:
            return tuple(math.nan for _ in self.hits)
        return tuple(h / self.positives for h in self.hits)

    @property
    def miss_rate(self) -> tuple[float, ...]:
        """1 - recall per threshold."""
        return tuple(1.0 - r for r in self.recall)

    @property
    def false_alarms_per_hour(self) -> tuple[float, ...]:
        """false_alarms / negative_hours per threshold."""
        return tuple(f / self.negative_hours for f in self.false_alarms)


@dataclass(frozen=True, slots=True)
class Calibration:
    """Per-label thresholds for a false-alarm budget, as `calibrate_detection` chose them."""

    budget_per_hour: float
    allowed_per_label: int
    """Each label's share of the budget on the data's negative hours."""
    thresholds: tuple[tuple[str, float | None], ...]
    """(label, threshold) in watched order; None: even the highest threshold exceeds it."""
    false_alarms: tuple[tuple[str, int], ...]
    """False alarms of each label at its threshold (0 where it has none)."""
    hits: tuple[tuple[str, int], ...]
    """Hits of each label at its threshold (0 where it has none)."""


@dataclass(frozen=True, slots=True)
class DetectionMetrics:
    """False alarms per hour and recall of watched labels against threshold (DET curves)."""

    labels: tuple[str, ...]
    """The watched labels; a clip of any other label is negative audio."""
    thresholds: tuple[float, ...]
    """The grid, ascending; every curve has one value per threshold."""
    min_windows: int
    negative_clips: int
    negative_hours: float
    per_label: tuple[DetectionCurve, ...]
    """One curve per watched label, in `labels` order."""
    overall: DetectionCurve
    """Every watched label together: false alarms summed, hits and positives pooled."""

    def index(self, threshold: float) -> int:
        """Position of `threshold` in the grid (ValueError if it is not on it)."""
        for i, t in enumerate(self.thresholds):
            if math.isclose(t, threshold, abs_tol=1e-9):
                return i
        raise ValueError(f"threshold {threshold} is not on the grid")

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (``detection`` in ``tritone evaluate --report``); a recall the data
        cannot give (no clip of the label) is null."""

        def curve(c: DetectionCurve) -> dict[str, Any]:
            return {
                "positives": c.positives,
                "hits": list(c.hits),
                "recall": [None if math.isnan(r) else r for r in c.recall],
                "false_alarms": list(c.false_alarms),
                "false_alarms_per_hour": list(c.false_alarms_per_hour),
                "other_label_detections": list(c.other_detections),
            }

        return {
            "labels": list(self.labels),
            "min_windows": self.min_windows,
            "negative_clips": self.negative_clips,
            "negative_hours": self.negative_hours,
            "positive_clips": self.overall.positives,
            "thresholds": list(self.thresholds),
            "all": curve(self.overall),
            "per_label": {c.label: curve(c) for c in self.per_label},
        }


def compute_detection_metrics(
    y_true: Sequence[str],
    window_scores: Sequence[npt.ArrayLike],
    durations_s: Sequence[float],
    labels: Sequence[str],
    *,
    thresholds: Sequence[float] = DEFAULT_DETECTION_THRESHOLDS,
    min_windows: int = 1,
) -> DetectionMetrics:
    """DET curves of the watched `labels` on labelled clips.

    Args:
        y_true: Each clip's label. A clip of a watched label is a positive: a hit at a
            threshold when its own label is detected at least once in it. A clip of any
            other label is negative audio: every detection of a watched label in it is a
            false alarm, and its duration counts towards the hours.
        window_scores: Each clip's window scores, [windows, len(labels)], columns in
            `labels` order.
        durations_s: Each clip's duration in seconds.
        labels: The watched labels.
        thresholds: The grid (sorted ascending in the result).
        min_windows: The shortest span that counts as a detection.
    """
    watched = list(labels)
    grid = sorted({float(t) for t in thresholds})
    if not grid:
        raise ValueError("no thresholds")
    negative_clips, per_label = _detection_curves(
        y_true, window_scores, durations_s, watched, [grid] * len(watched), min_windows
    )
    overall = _pooled(per_label)
    return DetectionMetrics(
        tuple(watched),
        tuple(grid),
        min_windows,
        negative_clips,
        overall.negative_hours,
        per_label,
        overall,
    )


def _detection_curves(
    y_true: Sequence[str],
    window_scores: Sequence[npt.ArrayLike],
    durations_s: Sequence[float],
    watched: list[str],
    grids: Sequence[Sequence[float]],
    min_windows: int,
) -> tuple[int, tuple[DetectionCurve, ...]]:
    """(negative clips, one curve per watched label), label j counted at ``grids[j]`` (all
    grids of one length); the data is read as `compute_detection_metrics` says."""
    if not len(y_true) == len(window_scores) == len(durations_s):
        raise ValueError("y_true, window_scores and durations_s differ in length")
    if not watched or len(set(watched)) != len(watched):
        raise ValueError(f"labels must be distinct and non-empty, got {watched}")
    check_min_windows(min_windows)
    index = {label: i for i, label in enumerate(watched)}
    shape = (len(watched), len(grids[0]))
    hits = np.zeros(shape, dtype=np.int64)
    false_alarms = np.zeros(shape, dtype=np.int64)
    other = np.zeros(shape, dtype=np.int64)
    positives = np.zeros(len(watched), dtype=np.int64)
    negative_clips, negative_s = 0, 0.0
    for truth, raw, seconds in zip(y_true, window_scores, durations_s, strict=True):
        scores = np.asarray(raw, dtype=np.float64)
        if scores.ndim != 2 or scores.shape[1] != len(watched):
            raise ValueError(
                f"window scores must be [windows, {len(watched)}], got shape {scores.shape}"
            )
        own = index.get(truth)
        if own is None:
            negative_clips += 1
            negative_s += float(seconds)
        else:
            positives[own] += 1
        for j in range(len(watched)):
            counts = count_detections(scores[:, j], grids[j], min_windows)
            if own is None:
                false_alarms[j] += counts
            elif own == j:
                hits[j] += counts > 0
            else:
                other[j] += counts
    if negative_clips == 0 or negative_s <= 0:
        raise ValueError(
            "no negative audio: false alarms per hour need clips whose label is not watched "
            f"(watched: {', '.join(watched)})"
        )
    if not positives.any():
        raise ValueError(f"no clip of a watched label ({', '.join(watched)}): no recall")
    hours = negative_s / 3600.0
    return negative_clips, tuple(
        DetectionCurve(
            label,
            int(positives[j]),
            tuple(int(v) for v in hits[j]),
            tuple(int(v) for v in false_alarms[j]),
            tuple(int(v) for v in other[j]),
            hours,
        )
        for j, label in enumerate(watched)
    )


def _pooled(curves: Sequence[DetectionCurve]) -> DetectionCurve:
    """Every curve together: counts summed per threshold, positives pooled."""

    def summed(values: list[tuple[int, ...]]) -> tuple[int, ...]:
        return tuple(int(v) for v in np.sum(values, axis=0))

    return DetectionCurve(
        "all",
        sum(c.positives for c in curves),
        summed([c.hits for c in curves]),
        summed([c.false_alarms for c in curves]),
        summed([c.other_detections for c in curves]),
        curves[0].negative_hours,
    )


def calibrate_detection(metrics: DetectionMetrics, budget_per_hour: float) -> Calibration:
    """Per-label thresholds for a budget of false alarms per hour, the way the speech-commands
    recipe calibrated its model: each label gets an equal share of the budget on the data's
    negative hours (`allowed_false_alarms`) and the lowest grid threshold that keeps within
    it (`lowest_threshold`)."""
    allowed = allowed_false_alarms(budget_per_hour, metrics.negative_hours, len(metrics.labels))
    thresholds: list[tuple[str, float | None]] = []
    false_alarms: list[tuple[str, int]] = []
    hits: list[tuple[str, int]] = []
    for c in metrics.per_label:
        t = lowest_threshold(metrics.thresholds, c.false_alarms, allowed)
        thresholds.append((c.label, t))
        i = None if t is None else metrics.index(t)
        false_alarms.append((c.label, 0 if i is None else c.false_alarms[i]))
        hits.append((c.label, 0 if i is None else c.hits[i]))
    return Calibration(
        budget_per_hour, allowed, tuple(thresholds), tuple(false_alarms), tuple(hits)
    )


@dataclass(frozen=True, slots=True)
class OperatingPointDetection:
    """Detections at one threshold per label: a model's calibrated operating point, the one
    a stream with ``detection_threshold="model"`` uses. Each curve holds one value."""

    thresholds: tuple[tuple[str, float], ...]
    min_windows: int
    per_label: tuple[DetectionCurve, ...]
    overall: DetectionCurve

    def as_dict(self) -> dict[str, Any]:
        def point(c: DetectionCurve) -> dict[str, Any]:
            recall = c.recall[0]
            return {
                "positives": c.positives,
                "hits": c.hits[0],
                "recall": None if math.isnan(recall) else recall,
                "false_alarms": c.false_alarms[0],
                "false_alarms_per_hour": c.false_alarms_per_hour[0],
                "other_label_detections": c.other_detections[0],
            }

        return {
            "thresholds": dict(self.thresholds),
            "min_windows": self.min_windows,
            "all": point(self.overall),
            "per_label": {c.label: point(c) for c in self.per_label},
        }


def operating_point_detection(
    y_true: Sequence[str],
    window_scores: Sequence[npt.ArrayLike],
    durations_s: Sequence[float],
    labels: Sequence[str],
    thresholds: Mapping[str, float],
    min_windows: int,
) -> OperatingPointDetection:
    """Detections of the watched `labels` that have a threshold in `thresholds`, each at
    its own threshold; the data is read as in `compute_detection_metrics`."""
    chosen = [(label, float(thresholds[label])) for label in labels if label in thresholds]
    if not chosen:
        raise ValueError(f"no threshold for any of {', '.join(labels)}")
    # a label without a threshold is still watched (its clips are not negative audio), at a
    # threshold no score reaches
    grids = [[float(thresholds.get(label, math.inf))] for label in labels]
    _, every = _detection_curves(
        y_true, window_scores, durations_s, list(labels), grids, min_windows
    )
    curves = [c for c in every if c.label in thresholds]
    overall = _pooled(curves)
    return OperatingPointDetection(tuple(chosen), min_windows, tuple(curves), overall)


def format_operating_point(point: OperatingPointDetection) -> str:
    """A markdown table of each label at its own threshold, and all of them together."""
    lines = [
        f"at the model's operating point (min_windows {point.min_windows}):",
        "",
        "| label | threshold | false alarms | per hour | recall | hits |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    shown = dict(point.thresholds)
    for c in (*point.per_label, point.overall):
        threshold = f"{shown[c.label]:g}" if c.label in shown else "-"
        recall = "n/a" if not c.positives else f"{c.recall[0]:.4f}"
        lines.append(
            f"| {c.label} | {threshold} | {c.false_alarms[0]} | "
            f"{c.false_alarms_per_hour[0]:.2f} | {recall} | {c.hits[0]}/{c.positives} |"
        )
    return "\n".join(lines)


def _on_grid(metrics: DetectionMetrics, threshold: float) -> int | None:
    try:
        return metrics.index(threshold)
    except ValueError:
        return None


def format_detection(
    metrics: DetectionMetrics,
    shown: Sequence[float] = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99),
    calibration: Calibration | None = None,
) -> str:
    """Markdown tables (they paste into a model card): all watched labels together at the
    `shown` thresholds that are on the grid, each label at 0.5 (if on the grid), and the
    `calibration`'s thresholds if given."""
    m, o = metrics, metrics.overall
    lines = [
        f"detection of {', '.join(m.labels)} (min_windows {m.min_windows}): "
        f"{m.negative_clips} negative clips, {m.negative_hours:.4f} h; "
        f"{o.positives} positive clips",
        "",
        "| threshold | false alarms | per hour | recall | hits |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for t in shown:
        i = _on_grid(m, t)
        if i is not None:
            lines.append(
                f"| {t:g} | {o.false_alarms[i]} | {o.false_alarms_per_hour[i]:.2f} | "
                f"{o.recall[i]:.4f} | {o.hits[i]}/{o.positives} |"
            )
    half = _on_grid(m, 0.5)
    if half is not None:
        lines += [
            "",
            "| label | positives | recall at 0.5 | false alarms/h at 0.5 |",
            "| --- | ---: | ---: | ---: |",
        ]
        for c in m.per_label:
            recall = "n/a" if not c.positives else f"{c.recall[half]:.4f}"
            lines.append(
                f"| {c.label} | {c.positives} | {recall} | {c.false_alarms_per_hour[half]:.2f} |"
            )
    if calibration is not None:
        lines += [
            "",
            f"thresholds for {calibration.budget_per_hour:g} false alarms/h "
            f"({calibration.allowed_per_label} per label on these hours):",
            "",
            "| label | threshold | false alarms | recall |",
            "| --- | ---: | ---: | ---: |",
        ]
        chosen_of = dict(calibration.thresholds)
        counts = dict(calibration.false_alarms)
        hit_counts = dict(calibration.hits)
        for c in m.per_label:
            chosen = chosen_of[c.label]
            if chosen is None:
                lines.append(f"| {c.label} | none on the grid | | |")
                continue
            recall = "n/a" if not c.positives else f"{hit_counts[c.label] / c.positives:.4f}"
            lines.append(f"| {c.label} | {chosen:g} | {counts[c.label]} | {recall} |")
    return "\n".join(lines)
