"""Pictures of an evaluation, drawn by matplotlib on its Agg canvas (the ``[eval]`` extra).

matplotlib is imported inside the functions, so importing this module costs nothing, and
only the object-oriented API is used (a `Figure` on a `FigureCanvasAgg`): pyplot's global
state and the caller's chosen backend are left alone, and no display is needed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from tritone_tools.extras import require

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from tritone_tools.evaluation.metrics import Calibration, DetectionMetrics

__all__ = ["confusion_figure", "confusion_png", "draw_det", "evaluation_figure"]

# Counts are written in the cells up to this many labels; beyond it they would not fit.
_ANNOTATE_UP_TO = 30


def confusion_figure(confusion: Sequence[Sequence[int]], labels: Sequence[str]) -> Figure:
    """The confusion matrix as a heat map: rows are true labels, columns predicted labels.

    Each cell's colour is its share of the row (so a rare label's errors show as plainly as
    a common one's): blue on the diagonal, red off it, white for nothing. The counts are
    written in the cells.
    """
    return evaluation_figure(confusion, labels)


def evaluation_figure(
    confusion: Sequence[Sequence[int]],
    labels: Sequence[str],
    detection: DetectionMetrics | None = None,
    calibration: Calibration | None = None,
) -> Figure:
    """The confusion matrix (`confusion_figure`) and, with `detection`, its DET curves on
    the right (`draw_det`); the figure's first axes are always the matrix."""
    require("matplotlib", "drawing the evaluation picture")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(labels)
    side = 2.5 + 0.45 * n
    width = side + 0.5 + (max(side, 6.0) + 1.5 if detection is not None else 0.0)
    figure = Figure(figsize=(width, max(side, 5.0 if detection is not None else 0.0)), dpi=100)
    figure.set_layout_engine("constrained")
    FigureCanvasAgg(figure)
    if detection is None:
        _draw_confusion(figure.add_subplot(), confusion, labels)
    else:
        matrix_axes, det_axes = figure.subplots(1, 2, width_ratios=[side + 0.5, max(side, 6.0)])
        _draw_confusion(matrix_axes, confusion, labels)
        draw_det(det_axes, detection, calibration)
    return figure


def _draw_confusion(axes: Axes, confusion: Sequence[Sequence[int]], labels: Sequence[str]) -> None:
    from matplotlib import colormaps

    matrix = np.asarray(confusion, dtype=np.int64)
    n = len(labels)
    if matrix.ndim != 2 or matrix.shape != (n, n) or n == 0:
        raise ValueError(f"expected a non-empty {n} x {n} matrix, got shape {matrix.shape}")
    totals = matrix.sum(axis=1, keepdims=True)
    share = np.divide(
        matrix, totals, out=np.zeros(matrix.shape, dtype=np.float64), where=totals > 0
    )
    colours = np.where(
        np.eye(n, dtype=bool)[..., None],
        colormaps["Blues"](share)[..., :3],
        colormaps["Reds"](share)[..., :3],
    )
    colours[share == 0] = 1.0  # nothing: white, whichever map
    axes.imshow(colours, interpolation="nearest")
    axes.set_xticks(range(n), labels=list(labels), rotation=90)
    axes.set_yticks(range(n), labels=list(labels))
    axes.set_xlabel("predicted label")
    axes.set_ylabel("true label")
    axes.set_title("confusion matrix (colour: share of each row)")
    if n <= _ANNOTATE_UP_TO:
        for i in range(n):
            for j in range(n):
                if matrix[i, j]:
                    dark = share[i, j] > 0.5
                    axes.text(
                        j,
                        i,
                        str(matrix[i, j]),
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="white" if dark else "black",
                    )


def draw_det(
    axes: Axes, detection: DetectionMetrics, calibration: Calibration | None = None
) -> None:
    """DET curves: false alarms per hour of negative audio (x, linear up to 1 then
    logarithmic, so 0 shows) against miss rate (y), one thin line per watched label with
    positives and a thick black one for all together, the overall point at threshold 0.5
    marked, and the budget of `calibration` as a dashed vertical line. Each line is one
    ``Line2D`` whose data are exactly the curve's values (tests read them back)."""
    for curve in detection.per_label:
        if curve.positives:
            axes.plot(
                curve.false_alarms_per_hour,
                curve.miss_rate,
                linewidth=1,
                alpha=0.8,
                label=curve.label,
            )
    overall = detection.overall
    axes.plot(
        overall.false_alarms_per_hour,
        overall.miss_rate,
        color="black",
        linewidth=2.5,
        label="all watched labels",
    )
    half = detection.index(0.5) if 0.5 in detection.thresholds else None
    if half is not None:
        x, y = overall.false_alarms_per_hour[half], overall.miss_rate[half]
        axes.plot([x], [y], "o", color="black")
        axes.annotate("threshold 0.5", (x, y), textcoords="offset points", xytext=(6, -14))
    if calibration is not None:
        axes.axvline(
            calibration.budget_per_hour,
            color="grey",
            linestyle="--",
            label=f"budget {calibration.budget_per_hour:g}/h",
        )
    axes.set_xscale("symlog", linthresh=1.0)
    axes.set_xlim(left=0)
    axes.set_ylim(-0.02, 1.02)
    axes.set_xlabel(f"false alarms per hour ({detection.negative_hours:.3g} h of negative audio)")
    axes.set_ylabel(f"miss rate ({overall.positives} positive clips)")
    axes.set_title(f"DET (min_windows {detection.min_windows})")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7, loc="upper right")


def confusion_png(
    path: str | os.PathLike[str],
    confusion: Sequence[Sequence[int]],
    labels: Sequence[str],
    detection: DetectionMetrics | None = None,
    calibration: Calibration | None = None,
) -> None:
    """Write `evaluation_figure` (the confusion matrix, and the DET curves when `detection` is
    given) as a PNG file at `path`."""
    figure = evaluation_figure(confusion, labels, detection, calibration)
    figure.savefig(os.fspath(path), format="png", dpi=figure.dpi)
