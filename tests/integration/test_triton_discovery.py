"""Real Tritons found through one name: spread over, SIGKILLed, added, removed, live.

The gateway runs as ``python -m support.resolved_gateway``: ``tritone serve`` itself, with
the DNS answer for ``dns:///tritons.test`` read from a file the test rewrites (the local
Tritons share 127.0.0.1, so the answer carries their ports). Windows counted by each
Triton's own metrics show where the batches went.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

import tritone
from support.faults import SERVING, Outcome, health, http_get, paced_stream
from support.gateway import REPO, GatewayStartError, RunningGateway, start_gateway
from support.resolved_gateway import ANSWERS_ENV, write_answers
from support.tones import FREQS, LABELS, tone
from support.waiting import wait_for
from tritone_server.triton.local import LocalTriton, LocalTritonEndpoints

pytestmark = pytest.mark.integration

NAME = "tritons.test"
STREAMS = 50
"""The issue's figure: 50 live streams through a Triton killed, one added, one drained."""
RESOLVE_S = 0.5
ADDED_WITHIN_S = 30.0
"""The issue's contract: a Triton added behind the name gets windows within 30 s."""


@contextlib.asynccontextmanager
async def tritons(repository: Path, count: int) -> AsyncIterator[list[LocalTriton]]:
    """Local Tritons serving the committed ``tones`` model only (quick to start), started
    side by side."""
    repository.mkdir()
    (repository / "tones").symlink_to(REPO / "model_repository" / "tones")
    started = [LocalTriton(repository) for _ in range(count)]
    try:
        await asyncio.gather(*(t.__aenter__() for t in started))
        yield started
    finally:
        await asyncio.gather(*(t.__aexit__(None, None, None) for t in started))


def endpoints(triton: LocalTriton) -> LocalTritonEndpoints:
    assert triton.endpoints is not None
    return triton.endpoints


async def windows_served(triton: LocalTriton) -> int:
    """Windows of the model ``tones`` this Triton has run (its nv_inference_count)."""
    _, text = await asyncio.to_thread(http_get, endpoints(triton).metrics_url)
    found = re.findall(r'^nv_inference_count\{[^}]*model="tones"[^}]*\} (\d+)', text, re.M)
    return sum(int(n) for n in found)


async def watch_health(target: str, stop: asyncio.Event) -> list[int | None]:
    """Every health answer that was not SERVING until ``stop``."""
    lapses: list[int | None] = []
    while not stop.is_set():
        status = await health(target, wait_s=5.0)
        if status != SERVING:
            lapses.append(status)
        await asyncio.sleep(0.1)  # the behaviour: health sampled all along, not an event
    return lapses


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``check`` until it holds; AssertionError naming ``what`` past the contract."""
    await wait_for(check, ADDED_WITHIN_S, poll_s=0.2, what=what)


async def live_streams_through_a_changing_answer(
    gateway: RunningGateway,
    answers: Path,
    first: LocalTriton,
    second: LocalTriton,
    third: LocalTriton,
) -> tuple[list[Outcome], list[int | None]]:
    """Live streams while the first Triton is SIGKILLed, the third joins the answer as the
    dead one leaves it, and then the second (alive, busy) leaves it too; how the streams
    ended, and health's lapses meanwhile."""
    a, b, c = (endpoints(t).grpc_url for t in (first, second, third))
    async with tritone.AsyncClient(gateway.target, timeout=60, retries=0) as client:
        stop_streams, stop_watch = asyncio.Event(), asyncio.Event()
        watcher = asyncio.create_task(watch_health(gateway.target, stop_watch))
        opened = asyncio.Semaphore(0)
        streams = [
            asyncio.create_task(paced_stream(client, stop_streams, opened)) for _ in range(STREAMS)
        ]
        for _ in streams:
            await asyncio.wait_for(opened.acquire(), 60)

        async def both_serve() -> bool:
            return min([await windows_served(first), await windows_served(second)]) > 0

        await until(both_serve, "windows were not spread over both Tritons of the answer")

        # The first dies mid-stream: its batches are re-sent to the second.
        pid = first.pid
        assert pid is not None
        spread = [await windows_served(first), await windows_served(second)]
        os.kill(pid, signal.SIGKILL)
        at_kill = await windows_served(second)

        async def streams_go_on() -> bool:
            return await windows_served(second) >= at_kill + 2 * STREAMS

        await until(streams_go_on, "windows stopped after the first Triton died")

        # The dead one leaves the answer and the third joins: it gets windows, no restart.
        assert await windows_served(third) == 0
        write_answers(answers, {NAME: [b, c]})
        joined = time.monotonic()

        async def third_serves() -> bool:
            return await windows_served(third) > 0

        await until(third_serves, "the added Triton got no window")
        first_window_s = time.monotonic() - joined

        # The second, alive and busy, leaves the answer: drained, and no call fails.
        write_answers(answers, {NAME: [c]})

        async def only_third_listed() -> bool:
            _, text = await asyncio.to_thread(http_get, gateway.http_url + "/metrics")
            return f'url="{a}"' not in text and f'url="{b}"' not in text

        await until(only_third_listed, "the gateway still lists Tritons that left the answer")
        at_drain = await windows_served(third)

        async def third_carries_all() -> bool:
            return await windows_served(third) >= at_drain + 2 * STREAMS

        await until(third_carries_all, "windows stopped after the second Triton was drained")
        result = await client.classify(tone(FREQS[3], 0.5, 16000), sample_rate=16000, model="tones")
        assert result.labels[0].label == LABELS[3]
        stop_streams.set()
        outcomes = list(await asyncio.gather(*streams))
        stop_watch.set()
        lapses = await watcher
    print(
        f"\nwindows before the kill: {spread[0]} and {spread[1]}; the added Triton's first "
        f"window {first_window_s:.2f} s after it joined the answer (resolved every "
        f"{RESOLVE_S} s); windows served in all: {await windows_served(second)} by the "
        f"drained one, {await windows_served(third)} by the added one"
    )
    return outcomes, lapses


async def test_tritons_behind_one_name_share_streams_come_and_go(tmp_path: Path) -> None:
    answers = tmp_path / "answers.json"
    async with tritons(tmp_path / "repository", 3) as (first, second, third):
        write_answers(answers, {NAME: [endpoints(first).grpc_url, endpoints(second).grpc_url]})
        try:
            with start_gateway(
                *("--triton-url", f"dns:///{NAME}:8001", "--triton-resolve-s", str(RESOLVE_S)),
                *("--default-model", "tones"),
                module="support.resolved_gateway",
                env={ANSWERS_ENV: str(answers)},
            ) as gateway:
                outcomes, lapses = await live_streams_through_a_changing_answer(
                    gateway, answers, first, second, third
                )
                assert gateway.process.poll() is None
        except GatewayStartError as exc:
            pytest.fail(str(exc))

    assert [o.error for o in outcomes if o.error is not None] == []
    for o in outcomes:
        assert o.summary is not None
        assert o.frames_sent > 0
        assert o.summary.frames_received == o.frames_sent  # every frame sent is accounted
        assert o.summary.windows >= o.windows
    assert lapses == [], "health left SERVING while a Triton was still ready"
    assert "event=triton_endpoints" in gateway.log()
