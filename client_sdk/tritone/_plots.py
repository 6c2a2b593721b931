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

from tritone._extras import require

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["confusion_figure", "confusion_png"]

# Counts are written in the cells up to this many labels; beyond it they would not fit.
_ANNOTATE_UP_TO = 30


def confusion_figure(confusion: Sequence[Sequence[int]], labels: Sequence[str]) -> Figure:
    """The confusion matrix as a heat map: rows are true labels, columns predicted labels.

    Each cell's colour is its share of the row (so a rare label's errors show as plainly as
    a common one's): blue on the diagonal, red off it, white for nothing. The counts are
    written in the cells.
    """
    require("matplotlib", "drawing the confusion matrix")
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

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

    side = 2.5 + 0.45 * n
    figure = Figure(figsize=(side + 0.5, side), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
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
    return figure


def confusion_png(
    path: str | os.PathLike[str], confusion: Sequence[Sequence[int]], labels: Sequence[str]
) -> None:
    """Write `confusion_figure` as a PNG file at `path`."""
    figure = confusion_figure(confusion, labels)
    figure.savefig(os.fspath(path), format="png", dpi=figure.dpi)
