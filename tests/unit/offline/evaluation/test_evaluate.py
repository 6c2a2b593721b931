"""`tritone evaluate`: the confusion picture, the command end to end against the fake
server, and the install hints of the [eval] extra (the metrics: test_eval_metrics.py)."""

from __future__ import annotations

import asyncio
import json
import struct
import sys
import wave
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.colors
import matplotlib.image
import numpy as np
import numpy.typing as npt
import pytest

from tritone_tools.evaluation import cli as evaluate
from tritone_tools.evaluation import plots
from tritone_tools.extras import MissingExtraError

if TYPE_CHECKING:
    from support.fake_gateway import FakeServer


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG file's signature and IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def test_confusion_png_draws_each_cell_by_its_share_of_the_row(tmp_path: Path) -> None:
    confusion = [[5, 0, 0], [1, 3, 0], [0, 0, 0]]
    labels = ["cat", "dog", "unknown"]
    path = tmp_path / "c.png"
    plots.confusion_png(path, confusion, labels)
    figure = plots.confusion_figure(confusion, labels)
    figure.canvas.draw()  # the same layout confusion_png saved
    width, height = png_size(path)
    assert (width, height) == tuple(round(v) for v in figure.bbox.size)
    pixels = matplotlib.image.imread(path)[..., :3]
    assert pixels.shape == (height, width, 3)
    axes = figure.axes[0]
    assert [t.get_text() for t in axes.get_xticklabels()] == labels
    assert [t.get_text() for t in axes.get_yticklabels()] == labels

    def colour(row: int, column: int) -> npt.NDArray[np.float32]:
        # Off the cell's centre, where its count is written.
        x, y = axes.transData.transform((column - 0.3, row - 0.3))
        return np.asarray(pixels[height - 1 - round(y), round(x)])

    blues, reds = matplotlib.colormaps["Blues"], matplotlib.colormaps["Reds"]
    assert colour(0, 0) == pytest.approx(blues(1.0)[:3], abs=2 / 255)  # all of row 0 right
    assert colour(1, 1) == pytest.approx(blues(0.75)[:3], abs=2 / 255)
    assert colour(1, 0) == pytest.approx(reds(0.25)[:3], abs=2 / 255)  # a quarter wrong
    assert colour(0, 1) == pytest.approx((1.0, 1.0, 1.0), abs=2 / 255)  # no clips: white
    assert colour(2, 2) == pytest.approx((1.0, 1.0, 1.0), abs=2 / 255)  # an empty row
    texts = {(round(t.get_position()[1]), round(t.get_position()[0])): t for t in axes.texts}
    assert {k: t.get_text() for k, t in texts.items()} == {(0, 0): "5", (1, 0): "1", (1, 1): "3"}
    assert matplotlib.colors.same_color(texts[(0, 0)].get_color(), "white")  # on dark blue


def test_confusion_png_refuses_a_matrix_that_does_not_fit_the_labels(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="2 x 2"):
        plots.confusion_png(tmp_path / "c.png", [[1, 2, 3]], ["a", "b"])


def test_confusion_png_without_matplotlib_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    with pytest.raises(MissingExtraError, match=r"pip install 'tritone\[eval\]'"):
        plots.confusion_png(tmp_path / "c.png", [[1]], ["a"])
    assert not (tmp_path / "c.png").exists()


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
    assert "accuracy 0.4000" in out.out
    assert "evaluate: 100%" in out.err and "5/5" in out.err  # tqdm's bar on stderr
    data = json.loads(report.read_text())
    assert data["accuracy"] == pytest.approx(0.4)
    assert data["labels"] == ["cat", "cow", "dog"]
    assert data["confusion"] == [[0, 0, 2], [0, 0, 1], [0, 0, 2]]
    assert data["per_class"]["cat"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert data["per_class"]["dog"]["precision"] == pytest.approx(0.4)
    assert data["macro"]["recall"] == pytest.approx(1 / 3)
    assert {p["predicted"] for p in data["predictions"]} == {"dog"}
    assert data["errors"] == []
    assert png_size(png)[0] > 100
    assert matplotlib.image.imread(png).ndim == 3


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


@pytest.mark.parametrize(
    ("missing", "flag", "needed"),
    [("tqdm", None, "progress bar"), ("matplotlib", "--confusion", "--confusion")],
)
async def test_evaluate_without_the_eval_extra_stops_before_sending(
    fake_server: FakeServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    missing: str,
    flag: str | None,
    needed: str,
) -> None:
    write_wav(tmp_path / "data" / "dog" / "1.wav")
    monkeypatch.setitem(sys.modules, missing, None)  # as if not installed
    argv = [str(tmp_path / "data"), "--model", "pets", "--target", fake_server.target]
    if flag is not None:
        argv += ["--quiet", flag, str(tmp_path / "c.png")]
    before = len(fake_server.servicer.classify_requests)
    assert await asyncio.to_thread(evaluate.main, argv) == 2
    err = capsys.readouterr().err
    assert needed in err and f"needs {missing}: pip install 'tritone[eval]'" in err
    assert len(fake_server.servicer.classify_requests) == before


async def test_evaluate_quiet_needs_no_tqdm(
    fake_server: FakeServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_wav(tmp_path / "data" / "dog" / "1.wav")
    monkeypatch.setitem(sys.modules, "tqdm", None)
    argv = [str(tmp_path / "data"), "--model", "pets", "--target", fake_server.target, "--quiet"]
    assert await asyncio.to_thread(evaluate.main, argv) == 0
    out = capsys.readouterr()
    assert "accuracy 1.0000" in out.out and out.err == ""
