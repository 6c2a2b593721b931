"""Which models several Tritons serve together: those READY on every one of them.

A gateway in front of several Tritons may list a model only when every ready Triton behind
it has it, or a window batch sent to the one that lacks it would fail there. So the listing
of each Triton is asked, and the catalogue gets the models they have in common: a model
that one Triton lacks (loaded on another by hand, or by a LoadModel that a Triton added
since never saw) stays out of the list until it is READY on all of them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from tritone_server.triton.endpoints import TritonClient

log = logging.getLogger(__name__)

ModelListing = list[tuple[dict[str, Any], str, bool]]
"""(config JSON, version, ready) of each model."""


async def ready_models(client: TritonClient, timeout_s: float) -> ModelListing:
    """(config, version, ready) of each model READY in one Triton; ``timeout_s`` for each
    question asked."""
    index = await client.get_model_repository_index(as_json=True, client_timeout=timeout_s)
    found: ModelListing = []
    for entry in index.get("models", []):
        if entry.get("state") != "READY":
            continue
        config = await client.get_model_config(
            entry["name"], as_json=True, client_timeout=timeout_s
        )
        found.append((config["config"], str(entry.get("version", "1")), True))
    return found


def common_models(listings: Sequence[tuple[str, ModelListing]]) -> ModelListing:
    """The models of the first listing that every other listing has too (by name), with
    the first one's config. ``listings`` are (address, listing) pairs; a model left out is
    logged with the addresses that lack it, one whose config differs between Tritons (a
    rollout of a new model image in progress) with a warning."""
    if not listings:
        return []
    by_address = [
        (address, {str(config.get("name", "")): config for config, _, _ in listing})
        for address, listing in listings
    ]
    common: ModelListing = []
    for config, version, ready in listings[0][1]:
        name = str(config.get("name", ""))
        lacking = [address for address, models in by_address if name not in models]
        if lacking:
            log.info("event=model_not_on_every_triton model=%s lacking=%s", name, ",".join(lacking))
            continue
        differing = [address for address, models in by_address if models[name] != config]
        if differing:
            log.warning(
                "event=model_config_differs model=%s tritons=%s first=%s",
                name,
                ",".join(differing),
                listings[0][0],
            )
        common.append((config, version, ready))
    return common
