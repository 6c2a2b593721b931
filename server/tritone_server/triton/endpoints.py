"""The Triton endpoints the pool sends to: which exist, which are usable, which comes next.

Membership follows an answer (fixed URLs plus what discovered names resolve to). An endpoint
that leaves the answer is drained, not cut: it gets no new request, and its channels close
once the requests it holds have ended. A request goes to the usable endpoint with the fewest
requests outstanding (ties in rotation), so a slow Triton is sent less; endpoints benched
after a failure or not ready at the last health check come after every usable one, as a last
resort rather than never.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol


class TritonClient(Protocol):
    """The part of ``tritonclient.grpc.aio.InferenceServerClient`` the pool uses."""

    async def infer(
        self,
        model_name: str,
        inputs: Any,
        outputs: Any = None,
        client_timeout: float | None = None,
    ) -> Any: ...

    async def is_server_ready(self, client_timeout: float | None = None) -> Any: ...

    async def get_model_repository_index(
        self, as_json: bool = False, client_timeout: float | None = None
    ) -> Any: ...

    async def get_model_config(
        self, model_name: str, as_json: bool = False, client_timeout: float | None = None
    ) -> Any: ...

    async def load_model(self, model_name: str) -> Any: ...

    async def close(self) -> None: ...


ClientFactory = Callable[[str], TritonClient]


@dataclass(eq=False)
class Endpoint:
    """One Triton address and its channels."""

    address: str
    clients: list[TritonClient]
    outstanding: int = 0
    """Requests sent and not yet answered."""
    ready: bool = False
    """At the last health check; a new endpoint is unproven until then."""
    benched_until: float = 0.0
    draining: bool = False
    _turn: itertools.cycle[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._turn = itertools.cycle(range(len(self.clients)))

    @contextlib.contextmanager
    def in_use(self) -> Iterator[TritonClient]:
        """A client for one call, counted as outstanding while the call runs: a drained
        endpoint closes only once no call holds it."""
        self.outstanding += 1
        try:
            yield self.clients[next(self._turn)]
        finally:
            self.outstanding -= 1

    def bench(self, seconds: float) -> None:
        self.benched_until = time.monotonic() + seconds

    def usable(self, now: float) -> bool:
        return self.ready and not self.draining and now >= self.benched_until


class EndpointSet:
    """Live and draining endpoints; ``follow`` an answer, ``order`` the next request."""

    def __init__(self, factory: ClientFactory, channels_per_endpoint: int) -> None:
        self._factory = factory
        self._channels = max(1, channels_per_endpoint)
        self._live: dict[str, Endpoint] = {}
        self._draining: dict[str, Endpoint] = {}
        self._turn = itertools.count()

    @property
    def live(self) -> list[Endpoint]:
        return list(self._live.values())

    @property
    def draining(self) -> list[Endpoint]:
        return list(self._draining.values())

    def follow(self, addresses: Iterable[str]) -> tuple[list[str], list[str]]:
        """Make the live endpoints exactly ``addresses``; (added, drained) addresses."""
        wanted = list(dict.fromkeys(addresses))
        added: list[str] = []
        for address in wanted:
            if address in self._live:
                continue
            endpoint = self._draining.pop(address, None)  # back before its channels closed
            if endpoint is None:
                clients = [self._factory(address) for _ in range(self._channels)]
                endpoint = Endpoint(address, clients)
            endpoint.draining = False
            self._live[address] = endpoint
            added.append(address)
        drained = [a for a in self._live if a not in wanted]
        for address in drained:
            endpoint = self._live.pop(address)
            endpoint.draining = True
            self._draining[address] = endpoint
        return added, drained

    def take_drained(self) -> list[Endpoint]:
        """Drained endpoints that hold no request any more: theirs to close now."""
        done = [e for e in self._draining.values() if e.outstanding == 0]
        for endpoint in done:
            del self._draining[endpoint.address]
        return done

    def take_all(self) -> list[Endpoint]:
        """Every endpoint, live and draining, removed from the set (closing the pool)."""
        everything = [*self._live.values(), *self._draining.values()]
        self._live.clear()
        self._draining.clear()
        return everything

    def order(self) -> list[Endpoint]:
        """Live endpoints in the order to try: usable ones by fewest outstanding requests
        (rotation breaks ties), then the rest."""
        live = list(self._live.values())
        if not live:
            return []
        start = next(self._turn) % len(live)
        rotated = live[start:] + live[:start]
        now = time.monotonic()
        usable = sorted((e for e in rotated if e.usable(now)), key=lambda e: e.outstanding)
        return usable + [e for e in rotated if not e.usable(now)]
