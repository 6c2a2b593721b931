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
from tritonclient.utils import InferenceServerException

from tritone_server.errors import BackendUnavailable
from tritone_server.triton.client import TritonBackend
from tritone_server.triton.model_listing import common_models

A, B = "10.0.0.1:8001", "10.0.0.2:8001"


def config(name: str, labels: str = "[]") -> dict[str, Any]:
    return {"name": name, "parameters": {"labels": {"string_value": labels}}}


class Tritons:
    """Each fake Triton's models ({name: state}), and which are down."""

    def __init__(self) -> None:
        self.models: dict[str, dict[str, str]] = {A: {}, B: {}}
        self.configs: dict[str, dict[str, dict[str, Any]]] = {A: {}, B: {}}
        self.down: set[str] = set()
        self.loads: list[tuple[str, str]] = []
        self.served: list[str] = []

    def add(self, address: str, name: str, state: str = "READY", labels: str = "[]") -> None:
        self.models[address][name] = state
        self.configs[address][name] = config(name, labels)

    def client(self, address: str) -> FakeClient:
        return FakeClient(address, self)


class FakeClient:
    def __init__(self, address: str, tritons: Tritons) -> None:
        self.address = address
        self.tritons = tritons

    def _refuse_if_down(self) -> None:
        if self.address in self.tritons.down:
            raise InferenceServerException("connection refused", status="StatusCode.UNAVAILABLE")

    async def infer(
        self, model_name: str, inputs: Any, outputs: Any = None, client_timeout: Any = None
    ) -> Any:
        self._refuse_if_down()
        if self.tritons.models[self.address].get(model_name) != "READY":
            raise InferenceServerException(
                f"Request for unknown model: '{model_name}' is not found",
                status="StatusCode.NOT_FOUND",
            )
        self.tritons.served.append(self.address)
        return Result()

    async def is_server_ready(self, client_timeout: float | None = None) -> bool:
        self._refuse_if_down()
        return True

    async def get_model_repository_index(
        self, as_json: bool = False, client_timeout: float | None = None
    ) -> Any:
        self._refuse_if_down()
        models = self.tritons.models[self.address]
        return {"models": [{"name": n, "version": "1", "state": s} for n, s in models.items()]}

    async def get_model_config(
        self, model_name: str, as_json: bool = False, client_timeout: float | None = None
    ) -> Any:
        self._refuse_if_down()
        return {"config": self.tritons.configs[self.address][model_name]}

    async def load_model(self, model_name: str) -> None:
        self._refuse_if_down()
        self.tritons.loads.append((self.address, model_name))
        self.tritons.add(self.address, model_name)

    async def close(self) -> None:
        return None


class Result:
    def as_numpy(self, name: str) -> Any:
        return np.ones((1, 2), dtype=np.float32)


@pytest.fixture
def tritons() -> Tritons:
    return Tritons()


@pytest_asyncio.fixture
async def pool(tritons: Tritons) -> AsyncIterator[TritonBackend]:
    async with TritonBackend([A, B], channels_per_endpoint=1, client_factory=tritons.client) as p:
        await p.endpoint_health()
        yield p


def names(listing: list[tuple[dict[str, Any], str, bool]]) -> list[str]:
    return [c["name"] for c, _, _ in listing]


async def test_only_models_ready_on_every_triton_are_listed(
    pool: TritonBackend, tritons: Tritons
) -> None:
    for address in (A, B):
        tritons.add(address, "both")
    tritons.add(A, "only-a")
    tritons.add(B, "only-b")
    tritons.add(B, "loading-on-a")
    tritons.add(A, "loading-on-a", state="LOADING")
    assert names(await pool.model_configs()) == ["both"]


async def test_load_model_reaches_every_triton_and_then_it_is_listed(
    pool: TritonBackend, tritons: Tritons
) -> None:
    assert names(await pool.model_configs()) == []
    await pool.load_model("new")
    assert sorted(tritons.loads) == [(A, "new"), (B, "new")]
    assert names(await pool.model_configs()) == ["new"]


async def test_a_triton_that_does_not_answer_is_left_out_of_the_comparison(
    pool: TritonBackend, tritons: Tritons
) -> None:
    tritons.add(A, "m")
    tritons.down.add(B)
    assert names(await pool.model_configs()) == ["m"]
    tritons.down.add(A)
    with pytest.raises(BackendUnavailable, match="no Triton endpoint answered"):
        await pool.model_configs()


async def test_a_triton_that_missed_a_health_check_still_has_to_hold_the_model(
    pool: TritonBackend, tritons: Tritons
) -> None:
    tritons.add(A, "m")
    tritons.down.add(B)
    await pool.endpoint_health()  # B is not ready now
    tritons.down.clear()  # but it answers the listing: it lacks m
    assert names(await pool.model_configs()) == []


async def test_a_batch_sent_to_a_triton_that_lacks_the_model_goes_to_another(
    pool: TritonBackend, tritons: Tritons
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
