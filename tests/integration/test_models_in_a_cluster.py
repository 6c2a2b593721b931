"""Models with two real Tritons and two real gateways in front of both.

LoadModel through one gateway loads the model on both Tritons; the other gateway, which got
no call, lists it at its next model refresh and serves it. A model READY on one Triton only
(loaded there by hand) is listed by neither gateway, and LoadModel of a model that one
Triton cannot load fails and leaves it unlisted too.

The Tritons run in explicit model control with a repository of their own each (what every
Triton pod has: the model image copied out); a model "added to the image" is derived into
both, one added by hand into one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import tritonclient.grpc.aio as triton_aio

import tritone
from support.gateway import REPO, GatewayStartError, RunningGateway, start_gateway
from support.tones import FREQS, LABELS, tone
from support.waiting import wait_for
from tritone_server.triton.local import LocalTriton

pytestmark = pytest.mark.integration

REFRESH_S = 1.0
LISTED_WITHIN_S = 30.0
"""Far above the refresh period (the machine is shared): a bound for the wait, not a timing."""


@contextlib.asynccontextmanager
async def two_tritons(source: Path) -> AsyncIterator[list[LocalTriton]]:
    source.mkdir()
    shutil.copytree(REPO / "model_repository" / "tones", source / "tones")
    started = [LocalTriton(source, model_control_explicit=True) for _ in range(2)]
    try:
        await asyncio.gather(*(t.__aenter__() for t in started))
        yield started
    finally:
        await asyncio.gather(*(t.__aexit__(None, None, None) for t in started))


def add_model(source: Path, name: str, *tritons: LocalTriton) -> None:
    """A copy of ``tones`` named ``name`` in the repository of each of ``tritons``."""
    copy = source / name
    shutil.copytree(source / "tones", copy)
    config = (copy / "config.pbtxt").read_text()
    (copy / "config.pbtxt").write_text(config.replace('name: "tones"', f'name: "{name}"'))
    for triton in tritons:
        triton.refresh_model(name)


def grpc_url(triton: LocalTriton) -> str:
    assert triton.endpoints is not None
    return triton.endpoints.grpc_url


async def load_directly(triton: LocalTriton, name: str) -> None:
    """Load a model on one Triton without any gateway."""
    client = triton_aio.InferenceServerClient(grpc_url(triton))
    try:
        await client.load_model(name)
    finally:
        await client.close()


async def listed(client: tritone.AsyncClient) -> set[str]:
    return {m.name for m in await client.list_models()}


async def until(check: Callable[[], Awaitable[bool]], what: str) -> float:
    """Seconds until ``check`` held; AssertionError naming ``what`` past the bound."""
    return await wait_for(check, LISTED_WITHIN_S, poll_s=0.1, what=what)


async def test_models_are_listed_only_when_every_triton_has_them(tmp_path: Path) -> None:
    source = tmp_path / "source"
    async with two_tritons(source) as (first, second):
        urls = ("--triton-url", grpc_url(first), "--triton-url", grpc_url(second))
        flags = (*urls, "--default-model", "tones", "--model-refresh-s", str(REFRESH_S))
        try:
            with (
                start_gateway(*flags) as loader,
                start_gateway(*flags) as other,
            ):
                await cluster_lifecycle(source, first, second, loader, other)
        except GatewayStartError as exc:
            pytest.fail(str(exc))


async def cluster_lifecycle(
    source: Path,
    first: LocalTriton,
    second: LocalTriton,
    loader: RunningGateway,
    other: RunningGateway,
) -> None:
    audio = tone(FREQS[2], 0.5, 16000)
    async with (
        tritone.AsyncClient(loader.target, timeout=60, retries=0) as via_loader,
        tritone.AsyncClient(other.target, timeout=60, retries=0) as via_other,
    ):
        assert await listed(via_loader) == await listed(via_other) == {"tones"}

        # A model READY on the first Triton only is listed by no gateway. Ordering, not
        # time, shows a refresh saw it: `both` is loaded on both Tritons after it, so the
        # refresh that lists `both` has seen `solo` too.
        add_model(source, "solo", first)
        await load_directly(first, "solo")
        add_model(source, "both", first, second)
        await load_directly(first, "both")
        await load_directly(second, "both")

        async def both_listed() -> bool:
            return "both" in await listed(via_other) and "both" in await listed(via_loader)

        await until(both_listed, "a model loaded on every Triton was not listed")
        for client in (via_loader, via_other):
            assert "solo" not in await listed(client)
            with pytest.raises(tritone.ModelNotFoundError):
                await client.classify(audio, sample_rate=16000, model="solo")

        # LoadModel through one gateway: both Tritons load it; the other gateway lists it
        # within its refresh period and serves it.
        add_model(source, "added", first, second)
        info = await via_loader.load_model("added")
        assert info.name == "added" and info.ready and info.labels == LABELS

        async def other_lists_it() -> bool:
            return "added" in await listed(via_other)

        seconds = await until(other_lists_it, "the other gateway did not list the loaded model")
        print(f"\nthe other gateway listed the model {seconds:.2f} s after LoadModel returned")
        for _ in range(4):  # windows go to both Tritons: each of them has it
            result = await via_other.classify(audio, sample_rate=16000, model="added")
            assert result.model == "added" and result.labels[0].label == LABELS[2]

        # LoadModel of a model only the first Triton has on disk fails on the second, and
        # is not listed although the first one loaded it.
        add_model(source, "half", first)
        with pytest.raises(tritone.TritoneError, match="could not load model 'half'"):
            await via_loader.load_model("half")
        assert "half" not in await listed(via_loader)
        with pytest.raises(tritone.ModelNotFoundError):
            await via_loader.classify(audio, sample_rate=16000, model="half")
