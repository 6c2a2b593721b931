"""LoadModel: a model directory added while the gateway runs becomes servable, no restart."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import tritone
from support.gateway import REPO, start_gateway
from support.tones import FREQS, LABELS, tone


async def test_a_model_added_at_run_time_is_loaded_and_served(tmp_path: Path) -> None:
    repository = tmp_path / "models"
    repository.mkdir()
    shutil.copytree(REPO / "model_repository" / "tones", repository / "tones")
    with start_gateway("--model-repository", str(repository)) as gateway:
        async with tritone.AsyncClient(gateway.target) as client:
            assert [m.name for m in await client.list_models()] == ["tones"]
            with pytest.raises(tritone.ModelNotFoundError):
                await client.get_model("tones-copy")

            copy = repository / "tones-copy"
            shutil.copytree(repository / "tones", copy)
            config = (copy / "config.pbtxt").read_text()
            (copy / "config.pbtxt").write_text(
                config.replace('name: "tones"', 'name: "tones-copy"')
            )
            info = await client.load_model("tones-copy")
            assert info.name == "tones-copy" and info.ready and info.labels == LABELS

            audio = tone(FREQS[2], 0.5, 16000)
            result = await client.classify(audio, sample_rate=16000, model="tones-copy")
            assert result.model == "tones-copy" and result.labels[0].label == LABELS[2]
            assert {m.name for m in await client.list_models()} == {"tones", "tones-copy"}

            with pytest.raises(tritone.InvalidArgumentError):
                await client.load_model("../escape")
            with pytest.raises(tritone.ModelNotFoundError):
                await client.load_model("not-there")
            still = await client.classify(audio, sample_rate=16000, model="tones")
            assert still.labels[0].label == LABELS[2]
