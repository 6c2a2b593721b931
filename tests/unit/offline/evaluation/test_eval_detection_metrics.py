"""`tritone_tools.evaluation.metrics`' detection part: spans as a stream reports them, counts
over a threshold grid, the budget rule, and DET curves of labelled clips, each on small
hand-computed cases; plus the DET panel of the evaluation picture (its lines carry exactly
the curves' values)."""

from __future__ import annotations

import json
import math

import numpy as np
import numpy.typing as npt
import pytest

from tritone_tools.evaluation import plots
from tritone_tools.evaluation.metrics import (
    DEFAULT_DETECTION_THRESHOLDS,
    allowed_false_alarms,
    calibrate_detection,
    compute_detection_metrics,
    count_detections,
    detection_spans,
    format_detection,
    format_operating_point,
    lowest_threshold,
    operating_point_detection,
)

#                 0    1    2    3    4    5    6    7
COLUMN = np.array([0.2, 0.6, 0.7, 0.1, 0.8, 0.8, 0.8, 0.3])


def test_spans_are_runs_at_or_above_the_threshold_that_last_min_windows() -> None:
    assert detection_spans(COLUMN, 0.5) == [(1, 2), (4, 6)]
    assert detection_spans(COLUMN, 0.5, min_windows=3) == [(4, 6)]
    assert detection_spans(COLUMN, 0.5, min_windows=4) == []
    assert detection_spans(COLUMN, 0.7) == [(2, 2), (4, 6)]  # equal to the threshold counts
    assert detection_spans(COLUMN, 0.1) == [(0, 7)]
    # A span still open when the stream ends is reported (the gateway closes it at the end).
    assert detection_spans([0.1, 0.9, 0.9], 0.5) == [(1, 2)]
    assert detection_spans([], 0.5) == []


def test_counts_over_a_grid_match_the_spans() -> None:
    grid = [0.5, 0.65, 0.75, 0.9]
    assert count_detections(COLUMN, grid).tolist() == [2, 2, 1, 0]
    assert count_detections(COLUMN, grid, min_windows=2).tolist() == [2, 1, 1, 0]
    assert count_detections(COLUMN, grid, min_windows=3).tolist() == [1, 1, 1, 0]
    rng = np.random.default_rng(7)
    for _ in range(50):
        column = rng.random(int(rng.integers(1, 30)))
        thresholds = sorted(rng.random(5))
        for k in (1, 2, 4):
            expected = [len(detection_spans(column, t, k)) for t in thresholds]
            assert count_detections(column, thresholds, k).tolist() == expected


def test_float32_scores_are_compared_in_their_own_precision() -> None:
    # 0.9 as float32 is 0.89999998: numpy's rule (the recipe's) vs the gateway's float64 one.
    single = np.array([0.9], dtype=np.float32)
    assert detection_spans(single, 0.9) == [(0, 0)]
    assert detection_spans(single.astype(np.float64), 0.9) == []
    assert count_detections(single, [0.9]).tolist() == [1]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="min_windows"):
        detection_spans(COLUMN, 0.5, min_windows=0)
    with pytest.raises(ValueError, match="1-D"):
        count_detections(np.zeros((2, 2)), [0.5])


def test_the_budget_is_shared_equally_and_rounded_down() -> None:
    assert allowed_false_alarms(2.0, 10.0, 3) == 6  # 20 / 3 = 6.67
    assert allowed_false_alarms(2.0, 0.2083, 10) == 0
    with pytest.raises(ValueError):
        allowed_false_alarms(2.0, 1.0, 0)


def test_lowest_threshold_stops_at_the_first_excess_from_the_top() -> None:
    thresholds = [0.5, 0.6, 0.7, 0.8]
    assert lowest_threshold(thresholds, [0, 3, 0, 0], allowed=1) == 0.7  # not 0.5 below it
    assert lowest_threshold(thresholds, [5, 3, 1, 0], allowed=1) == 0.7
    assert lowest_threshold(thresholds, [0, 0, 0, 0], allowed=0) == 0.5
    assert lowest_threshold(thresholds, [9, 9, 9, 2], allowed=1) is None
    assert lowest_threshold(thresholds[::-1], [0, 0, 3, 0], allowed=1) == 0.7  # any order


def small_set() -> tuple[list[str], list[npt.NDArray[np.float64]], list[float]]:
    """Columns (yes, no). Two positives and an hour of negative audio in two clips."""
    y_true = ["yes", "no", "unknown", "silence"]
    scores = [
        np.array([[0.9, 0.1], [0.4, 0.6]]),  # yes: its own peak 0.9; "no" 0.6 in it
        np.array([[0.2, 0.7]]),  # no: peak 0.7
        np.array([[0.6, 0.1], [0.3, 0.1], [0.6, 0.55]]),  # yes twice (split by 0.3), no once
        np.array([[0.05, 0.05]]),
    ]
    return y_true, scores, [2.0, 1.0, 1800.0, 1800.0]


def test_det_curves_of_a_hand_computed_set() -> None:
    y_true, scores, durations = small_set()
    m = compute_detection_metrics(
        y_true, scores, durations, ["yes", "no"], thresholds=[0.95, 0.5, 0.65]
    )
    assert m.thresholds == (0.5, 0.65, 0.95)  # sorted
    assert m.negative_clips == 2 and m.negative_hours == pytest.approx(1.0)
    yes, no = m.per_label
    assert (yes.label, yes.positives, no.positives) == ("yes", 1, 1)
    assert yes.false_alarms == (2, 0, 0) and yes.hits == (1, 1, 0)
    assert no.false_alarms == (1, 0, 0) and no.hits == (1, 1, 0)
    assert yes.other_detections == (0, 0, 0) and no.other_detections == (1, 0, 0)
    o = m.overall
    assert o.label == "all" and o.positives == 2
    assert o.false_alarms == (3, 0, 0) and o.false_alarms_per_hour == pytest.approx((3, 0, 0))
    assert o.recall == (1.0, 1.0, 0.0) and o.miss_rate == (0.0, 0.0, 1.0)
    with_two = compute_detection_metrics(
        y_true, scores, durations, ["yes", "no"], thresholds=[0.5], min_windows=2
    )
    assert with_two.overall.false_alarms == (0,) and with_two.overall.hits == (0,)


def test_the_model_operating_point_puts_each_label_at_its_own_threshold() -> None:
    y_true, scores, durations = small_set()
    # yes at 0.5 (same counts as the grid's 0.5 column), no at 0.65 (the 0.65 column)
    point = operating_point_detection(
        y_true, scores, durations, ["yes", "no"], {"no": 0.65, "yes": 0.5, "up": 0.1}, 1
    )
    assert point.thresholds == (("yes", 0.5), ("no", 0.65))  # watched order, watched only
    yes, no = point.per_label
    assert (yes.false_alarms, yes.hits, no.false_alarms, no.hits) == ((2,), (1,), (0,), (1,))
    assert point.overall.false_alarms == (2,) and point.overall.hits == (2,)
    assert point.overall.positives == 2 and point.overall.false_alarms_per_hour == (2.0,)
    report = json.loads(json.dumps(point.as_dict()))
    assert report["thresholds"] == {"yes": 0.5, "no": 0.65}
    assert report["all"]["recall"] == 1.0 and report["per_label"]["no"]["false_alarms"] == 0
    table = format_operating_point(point)
    assert "| yes | 0.5 | 2 | 2.00 | 1.0000 | 1/1 |" in table
    assert "| all | - | 2 | 2.00 | 1.0000 | 2/2 |" in table
    # min_windows is the model's: no span of these lasts two windows
    longer = operating_point_detection(
        y_true, scores, durations, ["yes", "no"], {"yes": 0.5, "no": 0.5}, 2
    )
    assert longer.overall.false_alarms == (0,) and longer.overall.hits == (0,)
    with pytest.raises(ValueError, match="no threshold"):
        operating_point_detection(y_true, scores, durations, ["yes", "no"], {"up": 0.5}, 1)


def test_calibration_gives_each_label_its_share_of_the_budget() -> None:
    y_true, scores, durations = small_set()
    m = compute_detection_metrics(
        y_true, scores, durations, ["yes", "no"], thresholds=[0.5, 0.65, 0.95]
    )
    c = calibrate_detection(m, budget_per_hour=2.0)  # 1 hour, 2 labels: 1 each
    assert c.allowed_per_label == 1
    assert dict(c.thresholds) == {"yes": 0.65, "no": 0.5}
    assert dict(c.false_alarms) == {"yes": 0, "no": 1}
    assert dict(c.hits) == {"yes": 1, "no": 1}
    only_yes = [s[:, :1] for s in scores]
    strict = calibrate_detection(
        compute_detection_metrics(y_true, only_yes, durations, ["yes"], thresholds=[0.5]), 0.0
    )
    assert dict(strict.thresholds) == {"yes": None}


def test_json_and_markdown_carry_the_curves() -> None:
    y_true, scores, durations = small_set()
    with_up = [np.concatenate((s, np.zeros((len(s), 1))), axis=1) for s in scores]
    m = compute_detection_metrics(y_true, with_up, durations, ["yes", "no", "up"])
    assert m.thresholds == DEFAULT_DETECTION_THRESHOLDS
    data = json.loads(json.dumps(m.as_dict()))
    half = data["thresholds"].index(0.5)
    assert data["all"]["false_alarms"][half] == 3
    assert data["all"]["false_alarms_per_hour"][half] == pytest.approx(3.0)
    assert data["per_label"]["yes"]["recall"][half] == 1.0
    assert data["per_label"]["up"]["recall"][half] is None  # no clip of "up": no recall
    assert data["negative_hours"] == pytest.approx(1.0) and data["positive_clips"] == 2
    text = format_detection(m, calibration=calibrate_detection(m, 2.0))
    assert "| 0.5 | 3 | 3.00 | 1.0000 | 2/2 |" in text.splitlines()
    assert "| up | 0 | n/a | 0.00 |" in text.splitlines()
    assert "| yes | 0.61 | 0 | 1.0000 |" in text.splitlines()  # lowest above the 0.6 scores


def test_data_without_negatives_or_positives_is_refused() -> None:
    y_true, scores, durations = small_set()
    with pytest.raises(ValueError, match="no negative audio"):
        compute_detection_metrics(y_true[:2], scores[:2], durations[:2], ["yes", "no"])
    with pytest.raises(ValueError, match="no clip of a watched label"):
        compute_detection_metrics(y_true[2:], scores[2:], durations[2:], ["yes", "no"])
    with pytest.raises(ValueError, match=r"\[windows, 3\]"):
        compute_detection_metrics(y_true, scores, durations, ["yes", "no", "up"])


def test_the_det_panel_draws_the_curves_next_to_the_matrix() -> None:
    y_true, scores, durations = small_set()
    m = compute_detection_metrics(y_true, scores, durations, ["yes", "no"])
    calibration = calibrate_detection(m, 2.0)
    figure = plots.evaluation_figure([[1, 0], [0, 1]], ["no", "yes"], m, calibration)
    matrix_axes, det_axes = figure.axes
    assert matrix_axes.get_title().startswith("confusion matrix")
    lines = {line.get_label(): line for line in det_axes.get_lines()}
    overall = lines["all watched labels"]
    assert np.asarray(overall.get_xdata()) == pytest.approx(m.overall.false_alarms_per_hour)
    assert np.asarray(overall.get_ydata()) == pytest.approx(m.overall.miss_rate)
    assert np.asarray(lines["yes"].get_ydata()) == pytest.approx(m.per_label[0].miss_rate)
    assert np.asarray(lines["budget 2/h"].get_xdata()).tolist() == [2.0, 2.0]
    assert det_axes.get_xscale() == "symlog"
    only_matrix = plots.evaluation_figure([[1, 0], [0, 1]], ["no", "yes"])
    assert len(only_matrix.axes) == 1
    assert figure.get_figwidth() > only_matrix.get_figwidth()
    assert not math.isnan(m.overall.recall[0])
