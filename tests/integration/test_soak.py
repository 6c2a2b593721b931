"""The soak's growth measurement sees a leak: run against the real gateway and against the
same gateway with a deliberate per-request leak (support/fuzzing/leaky_gateway.py), it
passes the first and flags the second.

Both are fresh gateways on the session's Triton, started the same way and driven by the same
mix for the same number of requests; growth is measured against requests done (not time), so
a slow machine changes the pace but not the figure. The leak (1 MiB per request, ~70 leaking
requests in the second half) is twice the 32 MB threshold; the real gateway's growth is a
few MB. The 10-minute soak with figures is ``benchmarks/soak.py``.
"""

from __future__ import annotations

from support.fuzzing.leaky_gateway import LEAK_ENV
from support.fuzzing.memory import MB, Growth, triton_grpc_url
from support.fuzzing.seeds import make_seeds
from support.fuzzing.soak import Soak, SoakReport
from support.gateway import RunningGateway, start_gateway

OPS = 160
THRESHOLD = 32 * MB
LEAK_BYTES = 1024 * 1024


async def _soak(running: RunningGateway, ops: int) -> SoakReport:
    seeds, _ = make_seeds()
    soak = Soak(running.target, running.http_url, seeds, seed=7)
    return await soak.run(running.process.pid, max_ops=ops, concurrency=4, interval_s=0.1)


async def _measure(running: RunningGateway) -> tuple[Growth, SoakReport]:
    await _soak(running, OPS // 4)  # warm-up: pools, caches and first calls out of the figure
    report = await _soak(running, OPS)
    return report.growth(by="requests"), report


async def test_growth_measurement_flags_the_leaking_control_only(gateway: RunningGateway) -> None:
    triton = triton_grpc_url(gateway.process.pid)
    with start_gateway("--triton-url", triton) as clean:
        clean_growth, clean_report = await _measure(clean)
    with start_gateway(
        "--triton-url",
        triton,
        module="support.fuzzing.leaky_gateway",
        env={LEAK_ENV: str(LEAK_BYTES)},
    ) as leaky:
        leaky_growth, leaky_report = await _measure(leaky)

    print(f"gateway {clean_growth.as_mb()}, leaking control {leaky_growth.as_mb()}")
    for report in (clean_report, leaky_report):
        assert report.done == OPS
        assert report.unexpected() == {}, report.ops
    assert not clean_growth.leaks(THRESHOLD), clean_growth.as_mb()
    assert leaky_growth.leaks(THRESHOLD), leaky_growth.as_mb()
