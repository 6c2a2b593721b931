"""detection_threshold="model": the stream asks for the model's own operating point."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from unit.sdk.test_sdk_cli import run, write_wav

import tritone

if TYPE_CHECKING:
    from support.fake_gateway import FakeServer


async def test_model_threshold_is_sent_as_model_thresholds(
    client: tritone.AsyncClient, fake_server: FakeServer
) -> None:
    async with client.stream_classify(
        sample_rate=16000, model="form-m", detection_threshold="model", detection_labels=["dog"]
    ) as stream:
        await stream.send(b"\x01\x00")
        await stream.end()
        _ = [event async for event in stream]
    config = fake_server.servicer.streams["form-m"].config
    assert config.model_thresholds and config.detection_threshold == 0.0
    assert list(config.detection_labels) == ["dog"]


async def test_a_number_does_not_ask_for_the_models_point(
    client: tritone.AsyncClient, fake_server: FakeServer
) -> None:
    async with client.stream_classify(
        sample_rate=16000, model="form-n", detection_threshold=0.7
    ) as stream:
        await stream.end()
        _ = [event async for event in stream]
    config = fake_server.servicer.streams["form-n"].config
    assert not config.model_thresholds and config.detection_threshold == pytest.approx(0.7)


def test_other_strings_are_refused(client: tritone.AsyncClient) -> None:
    with pytest.raises(tritone.InvalidArgumentError, match='"model"'):
        client.stream_classify(sample_rate=16000, detection_threshold="high")  # type: ignore[arg-type]


async def test_cli_threshold_model(fake_server: FakeServer, tmp_path: Path) -> None:
    clip = tmp_path / "s.wav"
    write_wav(clip, 1600, channels=1)
    argv = ["stream", str(clip), "--no-realtime", "--model", "cli-model-point"]
    assert await run(*argv, "--threshold", "model", "--target", fake_server.target) == 0
    config = fake_server.servicer.streams["cli-model-point"].config
    assert config.model_thresholds and config.detection_threshold == 0.0
