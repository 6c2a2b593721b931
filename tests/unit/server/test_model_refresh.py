"""The gateway reads Triton's model list again on its own, every ``model_refresh_s``.

A model that appears in Triton (loaded through another gateway) is listed and servable
without a call to this gateway; one that leaves is no longer listed. The gateway is the real
``app.Gateway`` in-process, over the fake Triton of the unit tests.
"""

from __future__ import annotations

from support.fake_backend import config
from support.inprocess import (
    DEFAULT_MODEL,
    FakeTriton,
    gateway_settings,
    in_process_gateway,
)
from support.waiting import wait_for
from tritone_server.app import Gateway

BOUND_S = 30.0
"""How long to wait for a refresh at most: a bound, not a timing (refreshes every 0.05 s)."""


async def models_become(gateway: Gateway, expected: set[str]) -> None:
    await wait_for(
        lambda: {m.name for m in gateway.catalogue.all()} == expected,
        BOUND_S,
        what=f"the catalogue lists {sorted(expected)}",
    )


async def test_models_added_or_removed_in_triton_follow_without_a_call() -> None:
    backend = FakeTriton([config(DEFAULT_MODEL)])
    settings = gateway_settings(model_refresh_s=0.05)
    async with in_process_gateway(backend, settings) as gateway:
        assert {m.name for m in gateway.catalogue.all()} == {DEFAULT_MODEL}
        backend.configs.append(config("loaded-elsewhere"))
        await models_become(gateway, {DEFAULT_MODEL, "loaded-elsewhere"})
        assert gateway.catalogue.get("loaded-elsewhere").ready
        del backend.configs[0]
        await models_become(gateway, {"loaded-elsewhere"})
