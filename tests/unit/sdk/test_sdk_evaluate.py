"""`tritone evaluate`: metrics against scikit-learn, the PNG writer, the command end to end."""

from __future__ import annotations

import asyncio
import io
import json
import struct
import wave
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pytest
from sklearn.metrics import (  # type: ignore[import-untyped]
    accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
)

from tritone import evaluate
from tritone.evaluate import ProgressBar, compute_metrics, confusion_png

if TYPE_CHECKING:
    from unit.sdk.conftest import FakeServer

CASES = {
    "random": (
        list(np.random.default_rng(0).choice(["a", "b", "c", "d"], 200)),
        list(np.random.default_rng(1).choice(["a", "b", "c", "d"], 200)),
    ),
    # "c" is never predicted (precision 0/0) and "unknown" is predicted but not in the data.
    "zero division": (
        ["a", "a", "b", "b", "c", "c"],
        ["a", "unknown", "b", "a", "unknown", "a"],
    ),
    "perfect": (["x", "y", "y"], ["x", "y", "y"]),
    "all wrong": (["x", "y"], ["y", "x"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_metrics_match_scikit_learn(case: str) -> None:
    y_true, y_pred = (list(map(str, v)) for v in CASES[case])
    metrics = compute_metrics(y_true, y_pred)
    data_labels = sorted(set(y_true))
    assert list(metrics.data_labels) == data_labels
    assert list(metrics.labels) == data_labels + sorted(set(y_pred) - set(y_true))
    assert metrics.accuracy == pytest.approx(accuracy_score(y_true, y_pred))

    p, r, f, s = precision_recall_fscore_support(
        y_true, y_pred, labels=list(metrics.labels), zero_division=0
    )
    for i, c in enumerate(metrics.per_class):
        assert (c.precision, c.recall, c.f1, c.support) == pytest.approx((p[i], r[i], f[i], s[i]))
    macro = precision_recall_fscore_support(
        y_true, y_pred, labels=data_labels, average="macro", zero_division=0
    )
    assert (metrics.macro_precision, metrics.macro_recall, metrics.macro_f1) == pytest.approx(
        macro[:3]
    )
    expected = confusion_matrix(y_true, y_pred, labels=list(metrics.labels))
    assert np.array_equal(np.asarray(metrics.confusion), expected)


def read_png(data: bytes) -> tuple[int, int, npt.NDArray[np.uint8]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, payload = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + payload) & 0xFFFFFFFF
        chunks.append((kind, payload))
        pos += 12 + length
    assert [k for k, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour, interlace) == (8, 2, 0)
    raw = zlib.decompress(b"".join(p for k, p in chunks if k == b"IDAT"))
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, 1 + 3 * width)
    assert np.all(rows[:, 0] == 0), "filter type None on every row"
    return width, height, rows[:, 1:].reshape(height, width, 3)


def test_confusion_png_is_a_valid_heat_map(tmp_path: Path) -> None:
    path = tmp_path / "c.png"
    confusion_png(path, [[5, 0, 0], [1, 3, 0], [0, 0, 0]], cell=10)
    width, height, pixels = read_png(path.read_bytes())
    assert (width, height) == (31, 31)
    assert tuple(pixels[0, 0]) == (160, 160, 160)  # the grid
    assert tuple(pixels[5, 5]) == (8, 48, 107)  # row 0 all on the diagonal: darkest blue
    assert tuple(pixels[25, 25]) == (255, 255, 255)  # an empty row stays white
    red = pixels[15, 5]  # row 1, column 0: a quarter of its row, reddish
    assert red[0] > red[1] and red[0] > red[2] and red[0] < 255


def test_progress_bar_draws_to_its_stream() -> None:
    out = io.StringIO()
    bar = ProgressBar(4, "evaluate", out=out)
    for _ in range(4):
        bar.update()
    bar.close()
    assert "\revaluate [" in out.getvalue() and "4/4" in out.getvalue()
    assert out.getvalue().endswith("\n")


def write_wav(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(16000)
        f.writeframes(b"\x00\x01" * 1600)


async def test_evaluate_through_a_server(
    fake_server: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The fake always answers "dog": 2 of 5 right; "cat" is never predicted (precision 0/0).
    for name in ("dog/1.wav", "dog/2.wav", "cat/1.wav", "cat/2.wav", "cow/1.wav"):
        write_wav(tmp_path / "data" / name)
    report, png = tmp_path / "report.json", tmp_path / "confusion.png"
    before = len(fake_server.servicer.classify_requests)
    argv = [
        str(tmp_path / "data"),
        "--model",
        "pets",
        "--target",
        fake_server.target,
        "--concurrency",
        "3",
        "--report",
        str(report),
        "--confusion",
        str(png),
    ]
    status = await asyncio.to_thread(evaluate.main, argv)
    assert status == 0
    requests = fake_server.servicer.classify_requests[before:]
    assert len(requests) == 5
    assert all(r.audio.WhichOneof("source") == "encoded" and r.model == "pets" for r in requests)
    out = capsys.readouterr()
    assert "accuracy 0.4000" in out.out and "5/5" in out.err
    data = json.loads(report.read_text())
    assert data["accuracy"] == pytest.approx(0.4)
    assert data["labels"] == ["cat", "cow", "dog"]
    assert data["confusion"] == [[0, 0, 2], [0, 0, 1], [0, 0, 2]]
    assert data["per_class"]["cat"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert data["per_class"]["dog"]["precision"] == pytest.approx(0.4)
    assert data["macro"]["recall"] == pytest.approx(1 / 3)
    assert {p["predicted"] for p in data["predictions"]} == {"dog"}
    assert data["errors"] == []
    read_png(png.read_bytes())


async def test_evaluate_reports_failed_clips(
    fake_server: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_wav(tmp_path / "data" / "dog" / "1.wav")
    argv = [
        str(tmp_path / "data"),
        "--model",
        "abort:INVALID_ARGUMENT",
        "--target",
        fake_server.target,
        "--quiet",
    ]
    # GetModel of the fake accepts any name; every Classify is refused.
    assert await asyncio.to_thread(evaluate.main, argv) == 1
    err = capsys.readouterr().err
    assert "1.wav" in err and "no clip could be classified" in err
    assert await asyncio.to_thread(evaluate.main, [str(tmp_path / "none"), "--model", "m"]) == 1
    assert "neither a folder" in capsys.readouterr().err
