"""Prometheus metrics of one gateway, in a registry of its own (several gateways can share a
process, as tests do).

The model of the current RPC is put in ``current_model`` by the DataPlane call that resolves
it (classify, embed, opening a stream), so the metrics interceptor can label requests by
model without parsing them.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

current_model: contextvars.ContextVar[str] = contextvars.ContextVar("current_model", default="")

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._stages: dict[tuple[str, str], Histogram] = {}
        self._requests: dict[tuple[str, str, str], Counter] = {}
        r = self.registry
        self.requests = Counter(
            "tritone_requests",
            "Requests handled, by RPC (or HTTP route), model and final status.",
            ["rpc", "model", "code"],
            registry=r,
        )
        self.errors = Counter(
            "tritone_request_errors",
            "Requests that ended with a status other than OK.",
            ["rpc", "model", "code"],
            registry=r,
        )
        self.latency = Histogram(
            "tritone_request_seconds",
            "Latency by stage: decode, queue (a stream chunk waiting for its classifier), "
            "triton (one backend request), total (the whole request).",
            ["stage", "model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.open_streams = Gauge(
            "tritone_open_streams", "StreamClassify calls in progress.", registry=r
        )
        self.audio_seconds = Counter(
            "tritone_audio_seconds",
            "Seconds of audio classified, by model.",
            ["model"],
            registry=r,
        )
        self.triton_up = Gauge(
            "tritone_triton_endpoint_up",
            "1 when the Triton endpoint answered its last readiness check, else 0.",
            ["url"],
            registry=r,
        )
        self.triton_restarts = Counter(
            "tritone_triton_restarts",
            "Restarts of the local Triton after it died (each attempt, counted as it starts).",
            registry=r,
        )
        self.loop_tasks = Gauge(
            "tritone_event_loop_tasks",
            "asyncio tasks alive on the gateway's event loop (a leak shows here first).",
            registry=r,
        )
        self.loop_tasks.set_function(_task_count)
        # process_resident_memory_bytes and friends, for leak checks from outside
        ProcessCollector(registry=r)

    def stage_histogram(self, stage: str, model: str) -> Histogram:
        """The latency histogram of one stage and model (looked up once, then cached)."""
        key = (stage, model)
        child = self._stages.get(key)
        if child is None:
            child = self._stages[key] = self.latency.labels(stage, model)
        return child

    @contextmanager
    def stage(self, stage: str, model: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.stage_histogram(stage, model).observe(time.perf_counter() - started)

    def record_request(self, rpc: str, model: str, code: str, seconds: float) -> None:
        key = (rpc, model, code)
        counter = self._requests.get(key)
        if counter is None:  # labels() validates and locks: once per combination
            counter = self._requests[key] = self.requests.labels(rpc, model, code)
        counter.inc()
        if code != "OK":
            self.errors.labels(rpc, model, code).inc()
        self.stage_histogram("total", model).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _task_count() -> float:
    try:
        return float(len(asyncio.all_tasks()))
    except RuntimeError:  # scraped outside the event loop (a test's registry)
        return 0.0
