"""Several Tritons: the pool lists only the models READY on every ready one of them.

Fake tritonclient clients play the Tritons, one per address, each with its own models; the
pool is the real one (fixed addresses, no resolution).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
import pytest_asyncio

from support.fake_tritons import FakeTritons, config
from tritone_server.errors import BackendUnavailable
from tritone_server.triton.client import TritonBackend
from tritone_server.triton.model_listing import common_models

A, B = "10.0.0.1:8001", "10.0.0.2:8001"


@pytest.fixture
def tritons() -> FakeTritons:
    return FakeTritons()


@pytest_asyncio.fixture
async def pool(tritons: FakeTritons) -> AsyncIterator[TritonBackend]:
    async with TritonBackend([A, B], channels_per_endpoint=1, client_factory=tritons.client) as p:
        await p.endpoint_health()
        yield p


def names(listing: list[tuple[dict[str, Any], str, bool]]) -> list[str]:
    return [c["name"] for c, _, _ in listing]


async def test_only_models_ready_on_every_triton_are_listed(
    pool: TritonBackend, tritons: FakeTritons
) -> None:
    for address in (A, B):
        tritons.add(address, "both")
    tritons.add(A, "only-a")
    tritons.add(B, "only-b")
    tritons.add(B, "loading-on-a")
    tritons.add(A, "loading-on-a", state="LOADING")
    assert names(await pool.model_configs()) == ["both"]


async def test_load_model_reaches_every_triton_and_then_it_is_listed(
    pool: TritonBackend, tritons: FakeTritons
) -> None:
    assert names(await pool.model_configs()) == []
    await pool.load_model("new")
    assert sorted(tritons.loads) == [(A, "new"), (B, "new")]
    assert names(await pool.model_configs()) == ["new"]


async def test_a_triton_that_does_not_answer_is_left_out_of_the_comparison(
    pool: TritonBackend, tritons: FakeTritons
) -> None:
    tritons.add(A, "m")
    tritons.down.add(B)
    assert names(await pool.model_configs()) == ["m"]
    tritons.down.add(A)
    with pytest.raises(BackendUnavailable, match="no Triton endpoint answered"):
        await pool.model_configs()


async def test_a_triton_that_missed_a_health_check_still_has_to_hold_the_model(
    pool: TritonBackend, tritons: FakeTritons
) -> None:
    tritons.add(A, "m")
    tritons.down.add(B)
    await pool.endpoint_health()  # B is not ready now
    tritons.down.clear()  # but it answers the listing: it lacks m
    assert names(await pool.model_configs()) == []


async def test_a_batch_sent_to_a_triton_that_lacks_the_model_goes_to_another(
    pool: TritonBackend, tritons: FakeTritons
) -> None:
    tritons.add(A, "m")  # B joined without it: the catalogue may not have noticed yet
    for _ in range(4):
        result = await pool.infer("m", {"waveform": np.zeros((1, 4), np.float32)}, ["logits"])
        assert result["logits"].shape == (1, 2)
    assert tritons.served == [A] * 4
    # B was not benched: it still takes the models it has
    tritons.add(B, "n")
    await pool.infer("n", {"waveform": np.zeros((1, 4), np.float32)}, ["logits"])
    assert tritons.served[-1] == B


def test_the_first_listing_gives_the_config_when_they_differ() -> None:
    first = [(config("m", '["x"]'), "1", True)]
    second = [(config("m", '["y"]'), "2", True)]
    assert common_models([(A, first), (B, second)]) == first
    assert common_models([]) == []
