"""`tritone evaluate --detect` against the real gateway: DET curves in the JSON report, the
markdown table and the PNG, on tones whose detections are known.

The ``tones`` model (0.5 s windows, 0.25 s hop) answers which band holds the tone, with a
score near 1. Positives: clips of 1000 Hz and 2000 Hz tones (both watched). Negative audio
(label ``other``): 7 s of tones the model should not report as watched labels, one of them
holding a 1 s burst of 1000 Hz between two 1 s stretches of 250 Hz; that burst is the one
false alarm at threshold 0.5, which is 3600 / 7 false alarms per hour.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import numpy.typing as npt
import pytest

from support.gateway import RunningGateway
from support.tones import encode, tone

pytestmark = pytest.mark.integration

RATE = 16000


def write(path: Path, samples: npt.NDArray[np.float32]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode(samples.astype(np.float32), RATE, "wav"))


def build(root: Path) -> None:
    write(root / "tone_1000" / "a.wav", tone(1000, 1.0, RATE))
    write(root / "tone_1000" / "b.wav", tone(1000, 1.5, RATE))
    write(root / "tone_2000" / "a.wav", tone(2000, 1.0, RATE))
    write(root / "other" / "low.wav", tone(250, 2.0, RATE))
    write(root / "other" / "mid.wav", tone(500, 2.0, RATE))
    burst = np.concatenate([tone(250, 1.0, RATE), tone(1000, 1.0, RATE), tone(250, 1.0, RATE)])
    write(root / "other" / "burst.wav", burst)


def test_evaluate_reports_false_alarms_per_hour_and_recall_against_threshold(
    gateway: RunningGateway, tmp_path: Path
) -> None:
    build(tmp_path / "data")
    report, png = tmp_path / "report.json", tmp_path / "evaluation.png"
    tritone_bin = Path(sys.executable).parent / "tritone"
    argv = [
        str(tritone_bin),
        "evaluate",
        str(tmp_path / "data"),
        "--model",
        "tones",
        "--target",
        gateway.target,
        "--quiet",
        "--detect",
        "tone_1000,tone_2000",
        "--budget",
        "0",
        "--report",
        str(report),
        "--confusion",
        str(png),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    per_hour = 3600 / 7
    assert f"| 0.5 | 1 | {per_hour:.2f} | 1.0000 | 3/3 |" in done.stdout.splitlines()

    detection = json.loads(report.read_text())["detection"]
    assert detection["labels"] == ["tone_1000", "tone_2000"]
    assert detection["negative_clips"] == 3
    assert detection["negative_hours"] == pytest.approx(7 / 3600, rel=1e-6)
    assert detection["positive_clips"] == 3
    thresholds = detection["thresholds"]
    assert len(thresholds) == 101 and thresholds == sorted(thresholds)
    half = thresholds.index(0.5)
    overall = detection["all"]
    assert len(overall["false_alarms_per_hour"]) == len(overall["recall"]) == 101
    assert overall["false_alarms"][half] == 1
    assert overall["false_alarms_per_hour"][half] == pytest.approx(per_hour, rel=1e-6)
    assert overall["recall"][half] == 1.0
    tone_1000, tone_2000 = detection["per_label"]["tone_1000"], detection["per_label"]["tone_2000"]
    assert (tone_1000["hits"][half], tone_1000["false_alarms"][half]) == (2, 1)
    assert (tone_2000["hits"][half], tone_2000["false_alarms"][half]) == (1, 0)
    # Lower thresholds never lose a hit on these clips: recall falls as the threshold rises.
    assert overall["recall"] == sorted(overall["recall"], reverse=True)
    calibration = detection["calibration"]
    assert calibration["allowed_false_alarms_per_label"] == 0
    for label, t in calibration["detection_thresholds"].items():
        curve = detection["per_label"][label]
        assert curve["false_alarms"][thresholds.index(t)] == 0
        assert calibration["hits"][label] == curve["hits"][thresholds.index(t)]
    assert calibration["detection_thresholds"]["tone_2000"] <= 0.5

    pixels = matplotlib.image.imread(png)[..., :3]
    height, width = pixels.shape[:2]
    assert width > 2 * height  # the DET panel beside the matrix
    right = pixels[:, width // 2 :]
    assert (right.max(axis=-1) < 0.1).sum() > 200  # its thick black curve (and axes text)
