"""tritonclient.grpc.aio channel pool to one or more Triton endpoints.

All streams and clips share the pool. Targets are fixed ``host:port`` endpoints or
``dns:///name:port`` names, resolved again every ``resolve_interval_s`` so that Tritons
added behind the name get requests and removed ones are drained (`endpoints`). A request
goes to the ready endpoint with the fewest requests outstanding; one that answers
UNAVAILABLE is benched for a moment and the request is re-sent to the next endpoint, within
the caller's deadline. tritonclient reports every failure as one exception type whose status
is a string ("StatusCode.UNAVAILABLE"); this module is the only place that reads it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
from tritonclient.grpc import InferInput, InferRequestedOutput
from tritonclient.utils import InferenceServerException

from tritone_server.errors import BackendFailed, BackendUnavailable, GatewayError, InvalidRequest
from tritone_server.triton.endpoints import ClientFactory, Endpoint, EndpointSet
from tritone_server.triton.model_listing import ModelListing, common_models, ready_models
from tritone_server.triton.resolver import DnsResolver, Resolver, TritonTarget
from tritone_server.triton.tls import TritonTls
from tritone_server.triton.tls import client_factory as triton_client_factory

log = logging.getLogger(__name__)

BENCH_S = 2.0
"""How long an endpoint that answered UNAVAILABLE is tried only after every other one."""
LISTING_TIMEOUT_S = 5.0
"""How long one Triton may take to answer each question of a model listing."""
RESOLVE_TIMEOUT_S = 5.0
"""A name not resolved within this keeps its last answer until the next round."""
_UNAVAILABLE = {"StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED"}
_CHANNEL_ARGS: list[tuple[str, object]] = [
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


def _model_missing(exc: InferenceServerException) -> bool:
    message = exc.message() or str(exc)
    return str(exc.status() or "") == "StatusCode.NOT_FOUND" or "unknown model" in message.lower()


def _map_error(exc: InferenceServerException, model: str, url: str) -> GatewayError:
    status = str(exc.status() or "")
    message = exc.message() or str(exc)
    if status in _UNAVAILABLE:
        return BackendUnavailable(f"Triton at {url} is unavailable: {message}")
    if _model_missing(exc):
        return BackendUnavailable(f"model {model!r} is not loaded in Triton at {url}")
    if status == "StatusCode.INVALID_ARGUMENT":
        return InvalidRequest(f"Triton rejected the request for model {model!r}: {message}")
    return BackendFailed(f"Triton failed on model {model!r}: {message}")


class TritonBackend:
    """A pool of gRPC channels to Triton endpoints; use as an async context manager (which
    resolves ``dns:///`` targets, and keeps resolving them until it exits)."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        channels_per_endpoint: int = 2,
        resolver: Resolver | None = None,
        resolve_interval_s: float = 10.0,
        client_factory: ClientFactory | None = None,
        tls: TritonTls | None = None,
    ) -> None:
        if not urls:
            raise ValueError("at least one Triton URL is needed")
        self._targets = [TritonTarget.parse(u) for u in urls]
        self._resolver: Resolver = resolver or DnsResolver()
        self._resolve_interval_s = resolve_interval_s
        factory = client_factory or triton_client_factory(list(_CHANNEL_ARGS), tls)
        self._endpoints = EndpointSet(factory, channels_per_endpoint)
        # each target's latest answer; a fixed target is its own answer
        self._answers: dict[str, list[str]] = {
            t.url: [t.url] for t in self._targets if not t.discovered
        }
        self._endpoints.follow(self._wanted())
        self._resolving: asyncio.Task[None] | None = None

    async def __aenter__(self) -> TritonBackend:
        if any(t.discovered for t in self._targets):
            await self.refresh()
            self._resolving = asyncio.create_task(self._keep_resolving(), name="triton-resolve")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._resolving is not None:
            # wait for the task without swallowing a cancellation of our own
            self._resolving.cancel()
            await asyncio.wait({self._resolving})
            self._resolving = None
        await _close(self._endpoints.take_all())

    def _wanted(self) -> list[str]:
        return list(itertools.chain.from_iterable(self._answers.values()))

    async def refresh(self) -> None:
        """Resolve every ``dns:///`` target once and follow the answers: add endpoints that
        appeared, drain those that left. A name that fails to resolve keeps its last answer."""
        for target in self._targets:
            if not target.discovered:
                continue
            try:
                async with asyncio.timeout(RESOLVE_TIMEOUT_S):
                    answer = await self._resolver.resolve(target.host, target.port)
            except OSError as exc:  # TimeoutError included
                log.warning("event=triton_resolve_failed url=%s error=%r", target.url, exc)
                continue
            self._answers[target.url] = answer
        added, drained = self._endpoints.follow(self._wanted())
        if added or drained:
            log.info(
                "event=triton_endpoints added=%s drained=%s live=%s",
                ",".join(added),
                ",".join(drained),
                ",".join(self.addresses),
            )
        await _close(self._endpoints.take_drained())

    async def _keep_resolving(self) -> None:
        while True:
            await asyncio.sleep(self._resolve_interval_s)
            try:
                await self.refresh()
            except Exception:  # a bug must not end discovery for the life of the process
                log.exception("event=triton_resolve_error")

    @property
    def addresses(self) -> list[str]:
        """Live endpoints (draining ones excluded)."""
        return [e.address for e in self._endpoints.live]

    def _none_known(self) -> BackendUnavailable:
        names = ", ".join(t.url for t in self._targets)
        return BackendUnavailable(f"no Triton endpoint is known: {names} resolved to nothing")

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
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        last: GatewayError = self._none_known()
        for endpoint in self._endpoints.order():
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                break  # the caller's deadline is spent: no time for another endpoint
            try:
                with endpoint.in_use() as client:
                    result = await client.infer(
                        model,
                        triton_inputs,
                        outputs=requested,
                        client_timeout=remaining,
                    )
            except InferenceServerException as exc:
                mapped = _map_error(exc, model, endpoint.address)
                if not isinstance(mapped, BackendUnavailable):
                    raise mapped from exc
                if _model_missing(exc):
                    # this Triton lacks the model (it joined since the catalogue was read):
                    # try another, and keep sending it the models it has
                    log.warning(
                        "event=triton_model_missing url=%s model=%s", endpoint.address, model
                    )
                else:
                    endpoint.bench(BENCH_S)
                    log.warning("event=triton_unavailable url=%s model=%s", endpoint.address, model)
                last = mapped
                continue
            return {name: np.asarray(result.as_numpy(name)) for name in outputs}
        raise last

    async def model_configs(self) -> ModelListing:
        """The models READY on every live endpoint that answers (`model_listing.
        common_models`), asked of all of them at once. Readiness does not excuse one: a
        Triton that missed a health check while busy still has to hold the model. One that
        does not answer within ``LISTING_TIMEOUT_S`` is benched and left out of the
        comparison (it takes requests only when no other can); BackendUnavailable when none
        answers."""
        endpoints = self._endpoints.live
        if not endpoints:
            raise self._none_known()

        async def listing(endpoint: Endpoint) -> ModelListing | InferenceServerException:
            try:
                with endpoint.in_use() as client:
                    return await ready_models(client, LISTING_TIMEOUT_S)
            except InferenceServerException as exc:
                endpoint.bench(BENCH_S)
                log.warning("event=triton_listing_failed url=%s error=%r", endpoint.address, exc)
                return exc

        answers = await asyncio.gather(*(listing(e) for e in endpoints))
        listings = [
            (e.address, a)
            for e, a in zip(endpoints, answers, strict=True)
            if not isinstance(a, InferenceServerException)
        ]
        if not listings:
            raise BackendUnavailable(f"no Triton endpoint answered: {answers[-1]}")
        return common_models(listings)

    async def load_model(self, name: str) -> None:
        """Load or reload a model on every live endpoint (Triton in explicit model control)."""
        endpoints = self._endpoints.live
        if not endpoints:
            raise self._none_known()
        for endpoint in endpoints:
            try:
                with endpoint.in_use() as client:
                    await client.load_model(name)
            except InferenceServerException as exc:
                message = exc.message() or str(exc)
                if "explicit" in message.lower() or "polling" in message.lower():
                    raise InvalidRequest(
                        f"Triton at {endpoint.address} does not allow loading models: start "
                        "it with --model-control-mode=explicit"
                    ) from exc
                raise BackendFailed(
                    f"Triton at {endpoint.address} could not load model {name!r}: {message}"
                ) from exc

    async def endpoint_health(self, timeout_s: float = 2.0) -> dict[str, bool]:
        """Readiness of every live endpoint, remembered for choosing where requests go (a
        ready one also comes off the bench at once). Closes drained endpoints that have
        finished their requests."""

        async def ready(endpoint: Endpoint) -> bool:
            try:
                with endpoint.in_use() as client:
                    up = bool(await client.is_server_ready(client_timeout=timeout_s))
            except InferenceServerException:
                up = False
            endpoint.ready = up
            if up:
                endpoint.benched_until = 0.0
            return up

        endpoints = self._endpoints.live
        states = await asyncio.gather(*(ready(e) for e in endpoints))
        await _close(self._endpoints.take_drained())
        return {e.address: up for e, up in zip(endpoints, states, strict=True)}

    async def is_ready(self) -> bool:
        return any((await self.endpoint_health()).values())


async def _close(endpoints: Sequence[Endpoint]) -> None:
    clients = [c for e in endpoints for c in e.clients]
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
