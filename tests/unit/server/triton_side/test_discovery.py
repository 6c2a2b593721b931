"""The channel pool follows a ``dns:///`` name, spreads batches, drains, and fails over.

An injected resolver plays DNS (its answer changes when the test says) and fake
tritonclient clients play the Tritons, one per address: each can be down, or hold its
requests until the test opens its gate.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest
import pytest_asyncio

from support.fake_tritons import FakeTritons
from tritone_server.errors import BackendUnavailable
from tritone_server.triton.client import TritonBackend
from tritone_server.triton.resolver import DnsResolver, TritonTarget

NAME = "dns:///tritons.test:8001"
WINDOWS = {"waveform": np.zeros((2, 4), dtype=np.float32)}


class Answer:
    """The resolver: what ``tritons.test`` resolves to now (an OSError: it fails)."""

    def __init__(self, *hosts: str) -> None:
        self.hosts: tuple[str, ...] | OSError = hosts
        self.asked: list[tuple[str, int]] = []
        self.asking = asyncio.Condition()

    async def asked_times(self, times: int) -> None:
        async with self.asking:
            await self.asking.wait_for(lambda: len(self.asked) >= times)

    async def resolve(self, host: str, port: int) -> list[str]:
        self.asked.append((host, port))
        async with self.asking:
            self.asking.notify_all()
        if isinstance(self.hosts, OSError):
            raise self.hosts
        return [f"{h}:{port}" for h in self.hosts]


@pytest.fixture
def tritons() -> FakeTritons:
    return FakeTritons(every_model=True, result_shape=(2, 3))


@pytest.fixture
def answer() -> Answer:
    return Answer("10.0.0.1", "10.0.0.2")


@pytest_asyncio.fixture
async def pool(tritons: FakeTritons, answer: Answer) -> AsyncIterator[TritonBackend]:
    # resolved again only when a test calls refresh(): the answers change on cue
    async with TritonBackend(
        [NAME],
        channels_per_endpoint=1,
        resolver=answer,
        resolve_interval_s=3600,
        client_factory=tritons.client,
    ) as backend:
        yield backend


async def infer(pool: TritonBackend, timeout_s: float | None = 30.0) -> None:
    result = await pool.infer("m", WINDOWS, ["logits"], timeout_s=timeout_s)
    assert result["logits"].shape == (2, 3)


async def test_endpoints_follow_the_answer_as_it_changes(
    pool: TritonBackend, answer: Answer, tritons: FakeTritons
) -> None:
    assert answer.asked == [("tritons.test", 8001)]
    assert pool.addresses == ["10.0.0.1:8001", "10.0.0.2:8001"]

    answer.hosts = ("10.0.0.2", "10.0.0.3")
    await pool.refresh()
    assert pool.addresses == ["10.0.0.2:8001", "10.0.0.3:8001"]
    assert tritons.closed == ["10.0.0.1:8001"]  # it held no request: closed at once

    answer.hosts = ("10.0.0.1", "10.0.0.2", "10.0.0.3")
    await pool.refresh()
    assert sorted(pool.addresses) == ["10.0.0.1:8001", "10.0.0.2:8001", "10.0.0.3:8001"]
    assert await pool.endpoint_health() == dict.fromkeys(pool.addresses, True)


async def test_a_failed_resolution_keeps_the_last_answer(
    pool: TritonBackend, answer: Answer
) -> None:
    answer.hosts = OSError("Name or service not known")
    await pool.refresh()
    assert pool.addresses == ["10.0.0.1:8001", "10.0.0.2:8001"]


async def test_the_name_is_resolved_again_on_its_own(tritons: FakeTritons) -> None:
    answer = Answer("10.0.0.1")
    async with TritonBackend(
        [NAME], resolver=answer, resolve_interval_s=0.01, client_factory=tritons.client
    ) as pool:
        answer.hosts = ("10.0.0.4",)
        await answer.asked_times(3)  # the pool followed the 2nd answer before asking a 3rd
        assert pool.addresses == ["10.0.0.4:8001"]
    assert sorted(set(tritons.closed)) == ["10.0.0.1:8001", "10.0.0.4:8001"]


async def test_a_removed_endpoint_is_drained_not_cut(
    pool: TritonBackend, answer: Answer, tritons: FakeTritons
) -> None:
    answer.hosts = ("10.0.0.1",)
    await pool.refresh()
    await pool.endpoint_health()
    tritons.gates["10.0.0.1:8001"] = gate = asyncio.Event()
    held = asyncio.create_task(infer(pool))
    await tritons.arrived(1)

    answer.hosts = ("10.0.0.2",)
    await pool.refresh()
    await pool.endpoint_health()
    assert pool.addresses == ["10.0.0.2:8001"]
    assert "10.0.0.1:8001" not in tritons.closed  # its request is still running
    await infer(pool)
    assert tritons.served == ["10.0.0.2:8001"]  # new requests go to the answer's endpoints

    gate.set()
    await held  # the drained endpoint's request completes
    assert tritons.served == ["10.0.0.2:8001", "10.0.0.1:8001"]
    await pool.endpoint_health()  # the next health check closes what was drained
    assert "10.0.0.1:8001" in tritons.closed


async def test_batches_go_to_the_endpoint_with_fewest_outstanding(
    pool: TritonBackend, answer: Answer, tritons: FakeTritons
) -> None:
    answer.hosts = ("10.0.0.1", "10.0.0.2", "10.0.0.3")
    await pool.refresh()
    await pool.endpoint_health()
    gate = asyncio.Event()
    for address in pool.addresses:
        tritons.gates[address] = gate
    held = [asyncio.create_task(infer(pool)) for _ in range(6)]
    await tritons.arrived(6)
    gate.set()
    await asyncio.gather(*held)
    assert sorted(tritons.served) == sorted(pool.addresses * 2)


async def test_a_slow_triton_is_sent_less(pool: TritonBackend, tritons: FakeTritons) -> None:
    await pool.endpoint_health()
    tritons.gates["10.0.0.1:8001"] = gate = asyncio.Event()
    sent: list[asyncio.Task[None]] = []
    while all(t.done() for t in sent):  # until one request is held by the slow Triton
        sent.append(asyncio.create_task(infer(pool)))
        for _ in range(3):
            await asyncio.sleep(0)
    for _ in range(5):  # round robin would send some of these to the slow one: held there
        await asyncio.wait_for(infer(pool), 10)
    assert tritons.served[-5:] == ["10.0.0.2:8001"] * 5
    gate.set()
    await asyncio.gather(*sent)


async def test_a_batch_whose_triton_died_is_sent_to_another_within_the_deadline(
    pool: TritonBackend, tritons: FakeTritons
) -> None:
    await pool.endpoint_health()
    tritons.down.add("10.0.0.1:8001")
    for _ in range(4):
        await infer(pool, timeout_s=30.0)
    assert tritons.served == ["10.0.0.2:8001"] * 4
    # the dead one is benched after its first failure: tried at most once, with a re-sent
    # batch getting what was left of the caller's 30 s, never a fresh 30 s
    assert len(tritons.timeouts) <= 5
    assert all(t is not None and t <= 30.0 for t in tritons.timeouts)
    assert await pool.endpoint_health() == {"10.0.0.1:8001": False, "10.0.0.2:8001": True}
    assert await pool.is_ready()


async def test_unavailable_only_when_no_endpoint_answers(
    pool: TritonBackend, tritons: FakeTritons
) -> None:
    tritons.down.update({"10.0.0.1:8001", "10.0.0.2:8001"})
    with pytest.raises(BackendUnavailable, match="unavailable"):
        await infer(pool)
    assert not await pool.is_ready()


async def test_a_name_that_never_resolved_is_unavailable(tritons: FakeTritons) -> None:
    answer = Answer()
    answer.hosts = OSError("Name or service not known")
    async with TritonBackend(
        [NAME], resolver=answer, resolve_interval_s=3600, client_factory=tritons.client
    ) as pool:
        assert pool.addresses == []
        with pytest.raises(BackendUnavailable, match="no Triton endpoint is known"):
            await infer(pool)
        assert not await pool.is_ready()
        answer.hosts = ("10.0.0.9",)
        await pool.refresh()
        await infer(pool)
    assert tritons.served == ["10.0.0.9:8001"]


async def test_fixed_urls_are_used_as_given_next_to_names(tritons: FakeTritons) -> None:
    answer = Answer("10.0.0.1")
    async with TritonBackend(
        ["triton-a:8001", NAME],
        resolver=answer,
        resolve_interval_s=3600,
        client_factory=tritons.client,
    ) as pool:
        assert pool.addresses == ["triton-a:8001", "10.0.0.1:8001"]
        answer.hosts = ()
        await pool.refresh()
        assert pool.addresses == ["triton-a:8001"]
    assert answer.asked == [("tritons.test", 8001)] * 2


@pytest.mark.parametrize(
    ("url", "host", "port", "discovered"),
    [
        ("triton:8001", "triton", 8001, False),
        ("127.0.0.1:9000", "127.0.0.1", 9000, False),
        ("dns:///tritone-triton-headless.ns.svc.cluster.local:8001", None, 8001, True),
        ("dns:///tritons", "tritons", 8001, True),
        ("dns:///[fd00::1]:8005", "fd00::1", 8005, True),
    ],
)
def test_targets_parse(url: str, host: str | None, port: int, discovered: bool) -> None:
    target = TritonTarget.parse(url)
    assert (target.port, target.discovered) == (port, discovered)
    assert target.host == (host or "tritone-triton-headless.ns.svc.cluster.local")


@pytest.mark.parametrize("url", ["dns://8.8.8.8/tritons:8001", "triton", "dns:///:8001"])
def test_unusable_targets_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="Triton URL"):
        TritonTarget.parse(url)


async def test_the_system_resolver_answers_addresses_with_the_port() -> None:
    addresses = await DnsResolver().resolve("127.0.0.1", 8001)
    assert addresses == ["127.0.0.1:8001"]
    with pytest.raises(OSError):
        await DnsResolver().resolve("no-such-host.invalid", 8001)
