"""`tritone evaluate --detect`: what it refuses before any clip is sent (against the fake
server; the curves themselves against the real gateway: test_evaluate_detection.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from unit.offline.evaluation.test_evaluate import write_wav

from tritone_tools.evaluation import cli as evaluate

if TYPE_CHECKING:
    from support.fake_gateway import FakeServer


@pytest.mark.parametrize(
    ("folders", "detect", "says"),
    [
        (("dog", "other"), "dog,horse", "labels the model lacks: horse"),
        (("cat", "other"), "dog", "no clip of a watched label"),
        (("dog", "cat"), "dog,cat", "no negative audio"),
    ],
)
async def test_detect_refuses_data_that_cannot_give_curves(
    fake_server: FakeServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    folders: tuple[str, str],
    detect: str,
    says: str,
) -> None:
    for folder in folders:
        write_wav(tmp_path / "data" / folder / "1.wav")
    before = len(fake_server.servicer.classify_requests)
    argv = [str(tmp_path / "data"), "--model", "pets", "--target", fake_server.target]
    status = await asyncio.to_thread(evaluate.main, [*argv, "--quiet", "--detect", detect])
    assert status == 1
    assert says in capsys.readouterr().err
    assert len(fake_server.servicer.classify_requests) == before


@pytest.mark.parametrize(
    "extra", [["--budget", "2"], ["--min-windows", "2"], ["--detect", "dog", "--min-windows", "0"]]
)
async def test_detection_options_are_checked_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    argv = [str(tmp_path), "--model", "pets", "--quiet", *extra]
    assert await asyncio.to_thread(evaluate.main, argv) == 2
    assert "--min-windows" in capsys.readouterr().err


async def test_answers_without_every_watched_score_are_errors_not_zeros(
    fake_server: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The fake's segments carry one label each, whatever top_k asks: no score is made up.
    write_wav(tmp_path / "data" / "dog" / "1.wav")
    write_wav(tmp_path / "data" / "other" / "1.wav")
    before = len(fake_server.servicer.classify_requests)
    argv = [str(tmp_path / "data"), "--model", "pets", "--target", fake_server.target]
    assert await asyncio.to_thread(evaluate.main, [*argv, "--quiet", "--detect", "dog"]) == 1
    requests = fake_server.servicer.classify_requests[before:]
    assert [(r.segments, r.top_k) for r in requests] == [(True, 3), (True, 3)]
    err = capsys.readouterr().err
    assert err.count("window scores lack labels ['dog']") == 2
