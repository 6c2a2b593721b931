"""Scores of predicted labels against true labels: accuracy, per-class P/R/F1, confusion.

Shared by ``tritone evaluate`` (predictions from a running gateway) and ``tritone train``
(predictions on its validation split), so both print the same table the same way.

A label that is predicted but not among the true labels (``unknown`` for instance) is an
error for the clip's true label; it gets a row in the per-class table and a column in the
confusion matrix, but no weight in the macro averages. A precision or recall of 0/0 counts
as 0 (as scikit-learn's ``zero_division=0``; the unit tests compare with scikit-learn).

numpy and the standard library only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["ClassMetrics", "Metrics", "compute_metrics", "format_metrics"]


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
