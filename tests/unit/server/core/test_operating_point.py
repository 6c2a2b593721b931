"""A model's calibrated detection operating point: read from its config, used by streams that
ask for detections without a threshold of their own."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from support.fake_backend import LevelsBackend, config
from tritone_server.audio.formats import PcmEncoding, PcmFormat
from tritone_server.core.inference import Inference
from tritone_server.core.models import ModelConfigError, spec_from_config
from tritone_server.core.operating_point import OperatingPoint, parse_operating_point
from tritone_server.core.streams import DetectionEvent, LiveStream, StreamOptions, SummaryEvent
from tritone_server.errors import InvalidRequest

LABELS = ("zero", "one", "two", "three")
F32 = PcmFormat(PcmEncoding.F32LE, 1000, 1)


def calibrated(thresholds: Any, min_windows: str | None = None, **cfg: Any) -> dict[str, Any]:
    c = config(**cfg)
    raw = thresholds if isinstance(thresholds, str) else json.dumps(thresholds)
    c["parameters"]["detection_thresholds"] = {"string_value": raw}
    if min_windows is not None:
        c["parameters"]["detection_min_windows"] = {"string_value": min_windows}
    return c


def test_thresholds_are_read_in_label_order_with_the_minimum_span() -> None:
    spec = spec_from_config(calibrated({"two": 0.9, "one": 0.75}, "2", activation="softmax"), "1")
    assert spec.detection == OperatingPoint((("one", 0.75), ("two", 0.9)), 2)


def test_a_model_without_thresholds_has_no_operating_point() -> None:
    assert spec_from_config(config(), "1").detection == OperatingPoint()
    assert parse_operating_point(None, None, LABELS, bounded=True) == OperatingPoint((), 1)


@pytest.mark.parametrize(
    ("thresholds", "min_windows", "message"),
    [
        ("{not json", None, "not JSON"),
        ("[0.5]", None, "JSON object"),
        ("{}", None, "JSON object"),
        ({"four": 0.5}, None, "unknown labels \\['four'\\]"),
        ({"one": "high"}, None, "not a number"),
        ({"one": True}, None, "not a number"),
        ({"one": 0.0}, None, "in \\(0, 1\\]"),
        ({"one": 1.5}, None, "in \\(0, 1\\]"),
        ({"one": 0.5}, "0", "at least 1"),
        ({"one": 0.5}, "two", "detection_min_windows"),
    ],
)
def test_bad_operating_points_are_refused_with_the_reason(
    thresholds: Any, min_windows: str | None, message: str
) -> None:
    with pytest.raises(ModelConfigError, match=message):
        spec_from_config(calibrated(thresholds, min_windows, activation="softmax"), "1")


def test_min_windows_alone_is_refused() -> None:
    c = config()
    c["parameters"]["detection_min_windows"] = {"string_value": "2"}
    with pytest.raises(ModelConfigError, match="needs 'detection_thresholds'"):
        spec_from_config(c, "1")


def test_unbounded_scores_take_any_finite_threshold() -> None:
    spec = spec_from_config(calibrated({"two": 5.0}, activation="none"), "1")
    assert spec.detection.thresholds == (("two", 5.0),)


def levels(*parts: tuple[float, float]) -> bytes:
    return (
        np.concatenate([np.full(round(s * 1000), v, dtype=np.float32) for v, s in parts])
        .astype("<f4")
        .tobytes()
    )


# 0.3 s of "two" (5 whole windows of 0.1 s at a 0.05 s hop), then 0.2 s of it (3 windows);
# the windows that straddle a change of level read "one".
AUDIO = levels((0.0, 0.3), (0.2, 0.3), (0.0, 0.3), (0.2, 0.2))


async def detect(c: dict[str, Any], options: StreamOptions) -> list[tuple[str, float, float]]:
    stream = LiveStream(spec_from_config(c, "1"), Inference(LevelsBackend([c])), F32, options)
    events = []
    for i in range(0, len(AUDIO), 400):
        events += await stream.feed(AUDIO[i : i + 400])
    events += await stream.finish()
    found = [e for e in events if isinstance(e, DetectionEvent)]
    summary = events[-1]
    assert isinstance(summary, SummaryEvent) and summary.detections == len(found)
    return [(d.label, round(d.start_s, 2), round(d.end_s, 2)) for d in found]


async def test_a_stream_asking_for_the_model_point_uses_each_labels_threshold() -> None:
    c = calibrated({"one": 5.0, "two": 20.0})  # logits are 10: "two" never reaches 20
    found = await detect(c, StreamOptions(model_thresholds=True))
    assert found and {label for label, _, _ in found} == {"one"}


async def test_spans_shorter_than_min_windows_are_not_reported() -> None:
    assert await detect(calibrated({"two": 5.0}), StreamOptions(model_thresholds=True)) == [
        ("two", 0.3, 0.6),
        ("two", 0.9, 1.1),
    ]
    c = calibrated({"two": 5.0}, "4")
    assert await detect(c, StreamOptions(model_thresholds=True)) == [("two", 0.3, 0.6)]


async def test_a_threshold_of_the_streams_own_wins_over_the_models() -> None:
    c = calibrated({"one": 20.0, "two": 20.0}, "4")
    options = StreamOptions(
        detection_threshold=5.0, detection_labels=("two",), model_thresholds=True
    )
    assert await detect(c, options) == [("two", 0.3, 0.6), ("two", 0.9, 1.1)]
    assert await detect(c, StreamOptions()) == []  # no detections asked for


async def test_model_thresholds_for_chosen_labels_only() -> None:
    c = calibrated({"one": 5.0, "two": 5.0})
    options = StreamOptions(model_thresholds=True, detection_labels=("two",))
    assert {label for label, _, _ in await detect(c, options)} == {"two"}


def test_asking_for_a_point_the_model_lacks_is_an_invalid_request() -> None:
    c = config()
    with pytest.raises(InvalidRequest, match="no calibrated detection thresholds"):
        LiveStream(
            spec_from_config(c, "1"),
            Inference(LevelsBackend([c])),
            F32,
            StreamOptions(model_thresholds=True),
        )
    c = calibrated({"two": 5.0})
    with pytest.raises(InvalidRequest, match="no calibrated threshold for \\['one'\\]"):
        LiveStream(
            spec_from_config(c, "1"),
            Inference(LevelsBackend([c])),
            F32,
            StreamOptions(model_thresholds=True, detection_labels=("one", "two")),
        )
