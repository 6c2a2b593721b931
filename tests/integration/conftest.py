"""One real gateway per test run, with the real local Triton behind it.

The gateway runs as its own process (``python -m tritone_server``), exactly as ``tritone
serve`` does, on free loopback ports; tests get SDK clients connected to it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

import tritone
from support.gateway import GatewayStartError, RunningGateway, start_gateway


@pytest.fixture(scope="session")
def gateway() -> Iterator[RunningGateway]:
    try:
        with start_gateway() as running:
            yield running
    except GatewayStartError as exc:
        pytest.fail(str(exc))


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def client(gateway: RunningGateway) -> AsyncIterator[tritone.AsyncClient]:
    async with tritone.AsyncClient(gateway.target, timeout=60.0) as c:
        yield c
