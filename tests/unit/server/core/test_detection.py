"""The detection rule's two forms agree: `SpanDetector` fed a column window by window (as a
live stream feeds it) reports exactly the runs `detection_spans` finds in the whole column,
with the same peaks, and `count_detections` counts them."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from tritone_server.core.detection import SpanDetector, count_detections, detection_spans


def live_spans(
    column: npt.NDArray[np.float64], threshold: float, min_windows: int
) -> list[tuple[int, int, float]]:
    """(first window, last window, peak) of each detection a stream reports on `column`; window
    i spans [i, i + 1) seconds, so the reported times are the window indices."""
    detector = SpanDetector(("x",), {"x": threshold}, min_windows)
    found = []
    for i, score in enumerate(column):
        found += detector.update(np.array([score]), float(i), float(i + 1))
    found += detector.close_all(float(len(column)))
    assert detector.count == len(found)
    return [(round(start), round(end) - 1, peak) for _, start, end, peak in found]


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("min_windows", [1, 2, 3])
def test_live_and_offline_detections_are_the_same_runs(seed: int, min_windows: int) -> None:
    rng = np.random.default_rng(seed)
    column = rng.random(int(rng.integers(0, 40)))  # float64, as the gateway compares
    for threshold in (0.2, 0.5, 0.8, float(column[0]) if column.size else 0.5):
        spans = detection_spans(column, threshold, min_windows)
        expected = [(a, b, float(column[a : b + 1].max())) for a, b in spans]
        assert live_spans(column, threshold, min_windows) == expected
        assert count_detections(column, [threshold], min_windows).tolist() == [len(spans)]


def test_a_run_still_open_at_the_end_is_reported_by_close_all() -> None:
    detector = SpanDetector(("a", "b"), {"b": 0.5}, 2)
    assert detector.update(np.array([0.9, 0.6]), 0.0, 1.0) == []
    assert detector.update(np.array([0.9, 0.7]), 0.5, 1.5) == []
    [(label, start, end, peak)] = detector.close_all(1.2)
    assert (label, start, end, round(peak, 6)) == ("b", 0.0, 1.2, 0.7)
    assert detector.count == 1
