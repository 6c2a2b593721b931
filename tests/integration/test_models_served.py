"""Every committed model is in the catalogue, ready, and answers through the real gateway."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tritone

REPOSITORY = Path(__file__).resolve().parents[2] / "model_repository"
MODELS = sorted(p.name for p in REPOSITORY.iterdir() if (p / "config.pbtxt").is_file())


async def test_every_committed_model_is_listed_and_ready(client: tritone.AsyncClient) -> None:
    listed = {m.name: m for m in await client.list_models()}
    assert sorted(listed) == MODELS
    assert all(m.ready for m in listed.values())


@pytest.mark.parametrize("name", MODELS)
async def test_each_model_answers(client: tritone.AsyncClient, name: str) -> None:
    info = await client.get_model(name)
    rng = np.random.default_rng(7)
    audio = (rng.standard_normal(info.sample_rate * 2) * 0.05).astype(np.float32)
    if info.task == "embedding":
        result = await client.embed(audio, sample_rate=info.sample_rate, model=name)
        assert result.vector and all(np.isfinite(result.vector))
        return
    classified = await client.classify(audio, sample_rate=info.sample_rate, model=name, top_k=3)
    assert len(classified.labels) == min(3, len(info.labels))
    assert {x.label for x in classified.labels} <= set(info.labels)
    assert classified.duration_s == pytest.approx(2.0)
