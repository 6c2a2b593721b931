"""A model's own detection operating point, read from its config's parameters.

``detection_thresholds`` (a JSON object, label -> threshold on the activated score) and
``detection_min_windows`` (an integer >= 1: a span of windows above threshold counts only
when it lasts that many windows) are chosen by whoever calibrated the model, for a
false-alarm budget on speech without its keywords. A stream that asks for detections without
a threshold of its own uses them; a model without them has no default operating point.
Kept apart from the catalogue so the catalogue only wires it in.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    thresholds: tuple[tuple[str, float], ...] = ()
    """(label, threshold) in the model's label order; empty: the model has none."""
    min_windows: int = 1


def parse_operating_point(
    thresholds: str | None, min_windows: str | None, labels: Sequence[str], bounded: bool
) -> OperatingPoint:
    """Check and parse the two parameters; raise ValueError with what is wrong.

    ``bounded``: the activation gives scores in [0, 1], so thresholds must lie in (0, 1].
    """
    windows = 1
    if min_windows is not None:
        try:
            windows = int(min_windows)
        except ValueError:
            raise ValueError(f"parameter 'detection_min_windows' is {min_windows!r}") from None
        if windows < 1:
            raise ValueError("parameter 'detection_min_windows' must be at least 1")
    if thresholds is None:
        if min_windows is not None:
            raise ValueError("parameter 'detection_min_windows' needs 'detection_thresholds'")
        return OperatingPoint()
    try:
        raw = json.loads(thresholds)
    except json.JSONDecodeError as exc:
        raise ValueError(f"parameter 'detection_thresholds' is not JSON: {exc}") from None
    if not isinstance(raw, dict) or not raw:
        raise ValueError("parameter 'detection_thresholds' must be a non-empty JSON object")
    unknown = sorted(set(raw) - set(labels))
    if unknown:
        raise ValueError(f"parameter 'detection_thresholds' names unknown labels {unknown}")
    for label, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"detection threshold of {label!r} is not a number: {value!r}")
        if not math.isfinite(value) or (bounded and not 0.0 < value <= 1.0):
            raise ValueError(f"detection threshold of {label!r} must be in (0, 1], got {value}")
    ordered = tuple((label, float(raw[label])) for label in labels if label in raw)
    return OperatingPoint(ordered, windows)
