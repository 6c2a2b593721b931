"""Fake Tritons for the real channel pool (TritonBackend's ``client_factory``): unit tests only.

One FakeTritons plays every address: each address has its models ({name: state}) and their
configs, can be down (UNAVAILABLE), or hold its requests until the test opens its gate. The
record says what reached which Triton.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import numpy as np
from tritonclient.utils import InferenceServerException


def config(name: str, labels: str = "[]") -> dict[str, Any]:
    """A model config as Triton gives it (as_json), with the labels parameter."""
    return {"name": name, "parameters": {"labels": {"string_value": labels}}}


class FakeTritons:
    def __init__(
        self, *, every_model: bool = False, result_shape: tuple[int, ...] = (1, 2)
    ) -> None:
        """``every_model``: every address serves any model it is asked for (no listing)."""
        self.every_model = every_model
        self.result_shape = result_shape
        self.models: defaultdict[str, dict[str, str]] = defaultdict(dict)
        self.configs: defaultdict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.down: set[str] = set()
        self.gates: dict[str, asyncio.Event] = {}
        self.served: list[str] = []
        self.timeouts: list[float | None] = []
        self.loads: list[tuple[str, str]] = []
        self.closed: list[str] = []
        self.arrival = asyncio.Condition()

    def add(self, address: str, name: str, state: str = "READY", labels: str = "[]") -> None:
        self.models[address][name] = state
        self.configs[address][name] = config(name, labels)

    async def arrived(self, requests: int) -> None:
        """Wait until this many requests have reached the Tritons."""
        async with self.arrival:
            await self.arrival.wait_for(lambda: len(self.timeouts) >= requests)

    def client(self, address: str) -> FakeClient:
        return FakeClient(address, self)


class _Result:
    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def as_numpy(self, name: str) -> Any:
        return np.ones(self.shape, dtype=np.float32)


class FakeClient:
    """The part of tritonclient.grpc.aio.InferenceServerClient the pool uses."""

    def __init__(self, address: str, tritons: FakeTritons) -> None:
        self.address = address
        self.tritons = tritons

    def _refuse_if_down(self) -> None:
        if self.address in self.tritons.down:
            raise InferenceServerException("connection refused", status="StatusCode.UNAVAILABLE")

    async def infer(
        self,
        model_name: str,
        inputs: Any,
        outputs: Any = None,
        client_timeout: float | None = None,
    ) -> Any:
        self.tritons.timeouts.append(client_timeout)
        async with self.tritons.arrival:
            self.tritons.arrival.notify_all()
        self._refuse_if_down()
        gate = self.tritons.gates.get(self.address)
        if gate is not None:
            await gate.wait()
        self._refuse_if_down()
        ready = self.tritons.models[self.address].get(model_name) == "READY"
        if not (ready or self.tritons.every_model):
            raise InferenceServerException(
                f"Request for unknown model: '{model_name}' is not found",
                status="StatusCode.NOT_FOUND",
            )
        self.tritons.served.append(self.address)
        return _Result(self.tritons.result_shape)

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
        self.tritons.closed.append(self.address)
