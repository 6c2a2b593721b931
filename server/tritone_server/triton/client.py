"""tritonclient.grpc.aio channel pool to one or more Triton endpoints.

All streams and clips share the pool. Requests rotate over the channels of healthy
endpoints; an endpoint that answers UNAVAILABLE is benched for a moment and the request is
tried on the next one. tritonclient reports every failure as one exception type whose status
is a string ("StatusCode.UNAVAILABLE"); this module is the only place that reads it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import tritonclient.grpc.aio as triton_aio
from tritonclient.grpc import InferInput, InferRequestedOutput
from tritonclient.utils import InferenceServerException

from tritone_server.errors import BackendFailed, BackendUnavailable, GatewayError, InvalidRequest

log = logging.getLogger(__name__)

BENCH_S = 2.0
_UNAVAILABLE = {"StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED"}
_CHANNEL_ARGS = [
    ("grpc.max_send_message_length", 256 * 1024 * 1024),
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
    # Reconnect to a Triton that came back within ~2 s, not gRPC's default of up to 120 s.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
]


@dataclass
class _Endpoint:
    url: str
    clients: list[triton_aio.InferenceServerClient]
    benched_until: float = 0.0
    rotation: itertools.cycle[int] = field(init=False)

    def __post_init__(self) -> None:
        self.rotation = itertools.cycle(range(len(self.clients)))

    def next_client(self) -> triton_aio.InferenceServerClient:
        return self.clients[next(self.rotation)]

    @property
    def healthy(self) -> bool:
        return time.monotonic() >= self.benched_until


def _map_error(exc: InferenceServerException, model: str, url: str) -> GatewayError:
    status = str(exc.status() or "")
    message = exc.message() or str(exc)
    if status in _UNAVAILABLE:
        return BackendUnavailable(f"Triton at {url} is unavailable: {message}")
    if status == "StatusCode.NOT_FOUND" or "unknown model" in message.lower():
        return BackendUnavailable(f"model {model!r} is not loaded in Triton at {url}")
    if status == "StatusCode.INVALID_ARGUMENT":
        return InvalidRequest(f"Triton rejected the request for model {model!r}: {message}")
    return BackendFailed(f"Triton failed on model {model!r}: {message}")


class TritonBackend:
    """A pool of gRPC channels to Triton endpoints; use as an async context manager."""

    def __init__(self, urls: Sequence[str], *, channels_per_endpoint: int = 2) -> None:
        if not urls:
            raise ValueError("at least one Triton URL is needed")
        self._endpoints = [
            _Endpoint(
                url,
                [
                    triton_aio.InferenceServerClient(url, channel_args=_CHANNEL_ARGS)
                    for _ in range(max(1, channels_per_endpoint))
                ],
            )
            for url in urls
        ]
        self._rotation = itertools.cycle(range(len(self._endpoints)))

    async def __aenter__(self) -> TritonBackend:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        clients = [c for e in self._endpoints for c in e.clients]
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)

    def _order(self) -> list[_Endpoint]:
        """Endpoints to try: healthy ones first, starting from the next in rotation."""
        start = next(self._rotation)
        ordered = self._endpoints[start:] + self._endpoints[:start]
        return [e for e in ordered if e.healthy] + [e for e in ordered if not e.healthy]

    @property
    def urls(self) -> list[str]:
        return [e.url for e in self._endpoints]

    async def infer(
        self,
        model: str,
        inputs: Mapping[str, npt.NDArray[np.float32]],
        outputs: Sequence[str],
        *,
        timeout_s: float | None = None,
    ) -> dict[str, npt.NDArray[np.float32]]:
        triton_inputs = []
        for name, array in inputs.items():
            tensor = InferInput(name, list(array.shape), "FP32")
            # tobytes() inside makes the one copy a strided view of windows needs
            tensor.set_data_from_numpy(
                array if array.dtype == np.float32 else array.astype(np.float32)
            )
            triton_inputs.append(tensor)
        requested = [InferRequestedOutput(name) for name in outputs]
        last: GatewayError | None = None
        for endpoint in self._order():
            try:
                result = await endpoint.next_client().infer(
                    model,
                    triton_inputs,
                    outputs=requested,
                    client_timeout=timeout_s,
                )
            except InferenceServerException as exc:
                mapped = _map_error(exc, model, endpoint.url)
                if not isinstance(mapped, BackendUnavailable):
                    raise mapped from exc
                endpoint.benched_until = time.monotonic() + BENCH_S
                log.warning("event=triton_unavailable url=%s model=%s", endpoint.url, model)
                last = mapped
                continue
            return {name: np.asarray(result.as_numpy(name)) for name in outputs}
        assert last is not None
        raise last

    async def model_configs(self) -> list[tuple[dict[str, Any], str, bool]]:
        last: Exception | None = None
        for endpoint in self._order():
            client = endpoint.next_client()
            try:
                index = await client.get_model_repository_index(as_json=True)
                found: list[tuple[dict[str, Any], str, bool]] = []
                for entry in index.get("models", []):
                    name = entry["name"]
                    ready = entry.get("state") == "READY"
                    if not ready:
                        continue
                    config = await client.get_model_config(name, as_json=True)
                    found.append((config["config"], str(entry.get("version", "1")), ready))
                return found
            except InferenceServerException as exc:
                last = exc
                endpoint.benched_until = time.monotonic() + BENCH_S
        raise BackendUnavailable(f"no Triton endpoint answered: {last}")

    async def load_model(self, name: str) -> None:
        """Load or reload a model on every endpoint (Triton in explicit model control)."""
        for endpoint in self._endpoints:
            try:
                await endpoint.next_client().load_model(name)
            except InferenceServerException as exc:
                message = exc.message() or str(exc)
                if "explicit" in message.lower() or "polling" in message.lower():
                    raise InvalidRequest(
                        f"Triton at {endpoint.url} does not allow loading models: start it "
                        "with --model-control-mode=explicit"
                    ) from exc
                raise BackendFailed(
                    f"Triton at {endpoint.url} could not load model {name!r}: {message}"
                ) from exc

    async def endpoint_health(self, timeout_s: float = 2.0) -> dict[str, bool]:
        """Readiness of every endpoint; a ready endpoint comes off the bench at once."""

        async def ready(endpoint: _Endpoint) -> bool:
            try:
                up = bool(await endpoint.next_client().is_server_ready(client_timeout=timeout_s))
            except InferenceServerException:
                up = False
            if up:
                endpoint.benched_until = 0.0
            return up

        states = await asyncio.gather(*(ready(e) for e in self._endpoints))
        return {e.url: up for e, up in zip(self._endpoints, states, strict=True)}

    async def is_ready(self) -> bool:
        return any((await self.endpoint_health()).values())
