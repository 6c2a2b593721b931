"""Assembles the gateway and owns its start and stop order.

Start: decode workers, gRPC server (health NOT_SERVING) and HTTP side listen first, so
probes answer while Triton comes up; then Triton (a local one unless URLs are given), the
channel pool and the model catalogue; then health turns SERVING. A monitor asks Triton every
quarter second and flips health both ways (gRPC health on every port and ``/readyz`` share
one state; ``/healthz`` is about this process only). A local Triton that dies is restarted
with backoff, and counted.

Stop (SIGTERM): NOT_SERVING everywhere at once; keep serving for ``drain_s`` while load
balancers take note; then every live stream classifies what it has queued, sends its
summary and ends (new calls are refused); once the streams have ended the connections stay
up a moment for their trailers, then ``server.stop`` lets calls still in flight finish, and
HTTP stops, within the same grace; then Triton channels, local Triton, decode workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

import grpc
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from tritone_protos import audio_classification_pb2 as pb
from tritone_protos import audio_classification_pb2_grpc as pb_grpc
from tritone_server.audio.decode_pool import DecodePool
from tritone_server.core.batching import MicroBatcher
from tritone_server.core.dataplane import DataPlane
from tritone_server.core.inference import Inference
from tritone_server.core.limits import StreamLimits
from tritone_server.core.models import Catalogue
from tritone_server.errors import BackendUnavailable, ModelNotFound
from tritone_server.frontends.auth import Authenticator, AuthInterceptor, http_auth_middleware
from tritone_server.frontends.http import build_app, build_metrics_app
from tritone_server.frontends.interceptors import (
    AccessLogInterceptor,
    ErrorInterceptor,
    MetricsInterceptor,
)
from tritone_server.frontends.service import AudioClassificationService
from tritone_server.frontends.tls import ServerTls
from tritone_server.metrics import Metrics
from tritone_server.settings import Settings, load_settings
from tritone_server.triton.client import TritonBackend
from tritone_server.triton.local import LocalTriton, TritonStartError
from tritone_server.triton.resolver import Resolver
from tritone_server.triton.tls import TritonTls

log = logging.getLogger("tritone_server")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["AudioClassification"].full_name
LIVENESS_SERVICE = "liveness"
"""Health name that is SERVING while the process runs, whatever Triton does: for liveness and
startup probes, which must not restart a gateway because Triton is down ("" and the service
name follow Triton, for readiness)."""
MONITOR_INTERVAL_S = 0.25
"""How often Triton's readiness is asked: a dead Triton is noticed well within 1 s."""
MONITOR_TIMEOUT_S = 0.75
"""A readiness answer slower than this counts as a failed check (a hung Triton)."""
MONITOR_FAILURES = 2
"""Failed checks in a row that turn health NOT_SERVING: a dead Triton refuses at once (two
checks take about 0.3 s), while one slow answer from a Triton busy on 2 cores does not make
health flap."""
MODEL_REFRESH_TIMEOUT_S = 10.0
"""A model-list refresh that takes longer is given up (the last list stays) until the next."""
RESTART_BACKOFF_S = (0.5, 30.0)
"""First and longest wait before restarting a local Triton that died; doubles per failure."""
RESTART_STABLE_S = 60.0
"""A local Triton that ran this long before dying is restarted after the first wait again."""
TRAILER_LINGER_S = 1.0
"""On stop, how long connections stay up after the last stream has ended, so that callers
read their streams' trailers before the sockets close. A socket closed while a caller's next
chunk sits unread in it is reset, and the reset can overtake the trailers: the caller then
sees UNAVAILABLE "Stream removed" instead of the end of a complete stream. Part of grace_s."""


class Gateway:
    """The running gateway; ``async with Gateway(settings) as gw: await gw.ready.wait()``."""

    def __init__(self, settings: Settings, *, resolver: Resolver | None = None) -> None:
        self.settings = settings
        self._resolver = resolver
        self.catalogue = Catalogue(settings.default_model)
        self.metrics = Metrics()
        self.ready = asyncio.Event()
        self.grpc_port = 0
        self.health_port: int | None = None
        self.http_port: int | None = None
        self.metrics_port: int | None = None
        self.auth = Authenticator.from_settings(settings)
        self.tls = ServerTls.from_settings(settings)
        self._triton_tls = (
            None
            if settings.triton_tls_ca is None
            else TritonTls.from_file(settings.triton_tls_ca, settings.triton_tls_server_name)
        )
        self.triton_urls: tuple[str, ...] = settings.triton_urls
        self._stack = contextlib.AsyncExitStack()
        self._health = health.aio.HealthServicer()
        self._servers: list[grpc.aio.Server] = []
        self._runners: list[web.AppRunner] = []
        self._bringup: asyncio.Task[None] | None = None
        self.backend: TritonBackend | None = None
        self.local_triton: LocalTriton | None = None
        self.batcher: MicroBatcher | None = None
        self.service: AudioClassificationService | None = None
        self._stopping = False
        self._failed_checks = 0
        self._endpoint_labels: set[str] = set()
        self._ready_endpoints: frozenset[str] = frozenset()
        self._models_stale = asyncio.Event()
        """Set when the ready Tritons changed: the model list is read again at once."""

    async def __aenter__(self) -> Gateway:
        try:
            await self._start()
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stop()

    async def _start(self) -> None:
        s = self.settings
        pool = await self._stack.enter_async_context(
            DecodePool(
                workers=s.decode_workers,
                limits=s.audio_limits,
                max_waiting=s.decode_queue,
                memory_limit_bytes=s.decode_worker_memory_mb * 1024 * 1024,
            )
        )
        options = [
            ("grpc.max_receive_message_length", s.max_message_bytes),
            ("grpc.max_send_message_length", s.max_message_bytes),
            ("grpc.keepalive_time_ms", 60_000),
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
            # BDP probing grows a stalled stream's receive window to megabytes of audio the
            # gateway holds beyond its queue; without it a stream holds ~its queue budget.
            ("grpc.http2.bdp_probe", 0),
        ]
        if s.max_connection_age_s > 0:
            # GOAWAY after this long: round_robin callers re-resolve and reach new gateways
            options += [
                ("grpc.max_connection_age_ms", round(s.max_connection_age_s * 1000)),
                ("grpc.max_connection_age_grace_ms", round(s.max_connection_age_grace_s * 1000)),
            ]
        # The first interceptor is the outermost: errors are mapped before they are logged
        # and counted; auth is innermost, so refused calls are logged and counted too.
        server = grpc.aio.server(
            interceptors=[
                MetricsInterceptor(self.metrics),
                AccessLogInterceptor(),
                ErrorInterceptor(),
                AuthInterceptor(self.auth),
            ],
            options=options,
        )
        self.batcher = MicroBatcher(
            max_delay_s=s.batch_delay_ms / 1000,
            busy_hold_s=s.batch_busy_hold_ms / 1000,
            capacity=self._triton_endpoints,
        )
        inference = Inference(
            _LazyBackend(self),
            timeout_s=s.triton_timeout_s,
            metrics=self.metrics,
            batcher=self.batcher,
        )
        self.dataplane = DataPlane(
            self.catalogue,
            inference,
            limits=s.audio_limits,
            decode_pool=pool,
            stream_limits=StreamLimits(
                max_stream_s=s.max_stream_s,
                stream_idle_s=s.stream_idle_s,
                config_timeout_s=s.config_timeout_s,
                max_chunk_bytes=s.max_chunk_bytes,
                max_queued_bytes=s.max_queued_bytes,
                max_queued_chunks=s.stream_queue_chunks,
            ),
            max_streams=s.max_streams,
        )
        self.service = AudioClassificationService(self.dataplane, max_unary_calls=s.max_unary_calls)
        pb_grpc.add_AudioClassificationServicer_to_server(self.service, server)  # type: ignore[no-untyped-call]
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            (
                SERVICE_NAME,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            server,
        )
        address = f"{s.host}:{s.port}"
        if self.tls is None:
            self.grpc_port = server.add_insecure_port(address)
        else:
            self.grpc_port = server.add_secure_port(address, self.tls.grpc_credentials())
        if self.grpc_port == 0:
            raise OSError(f"could not listen on {s.host}:{s.port}")
        self._servers.append(server)
        if s.health_port is not None:
            health_server = grpc.aio.server()
            health_pb2_grpc.add_HealthServicer_to_server(self._health, health_server)
            self.health_port = health_server.add_insecure_port(f"{s.host}:{s.health_port}")
            self._servers.append(health_server)
        await self._set_health(False)
        await self._health.set(LIVENESS_SERVICE, health_pb2.HealthCheckResponse.SERVING)
        for srv in self._servers:
            await srv.start()
        if s.http_port is not None:
            http_app = build_app(
                self.dataplane,
                self.ready.is_set,
                max_body_bytes=s.max_clip_bytes,
                middlewares=[http_auth_middleware(self.auth)] if self.auth.enabled else [],
                serve_metrics=s.metrics_port is None,
                unary=self.service.unary,
            )
            ssl_context = None if self.tls is None else self.tls.ssl_context()
            self.http_port = await self._serve_http(http_app, s.http_port, ssl_context)
        if s.metrics_port is not None:
            self.metrics_port = await self._serve_http(
                build_metrics_app(self.metrics), s.metrics_port, None
            )
        log.info(
            "event=listening grpc_port=%s http_port=%s health_port=%s metrics_port=%s "
            "tls=%s mtls=%s tokens=%s admin_tokens=%s",
            self.grpc_port,
            self.http_port,
            self.health_port,
            self.metrics_port,
            self.tls is not None,
            self.tls is not None and self.tls.require_client_cert,
            self.auth.users is not None,
            self.auth.admins is not None,
        )
        self._bringup = asyncio.create_task(self._bring_up(), name="triton-bring-up")

    async def _serve_http(self, app: web.Application, port: int, ssl_context: Any) -> int:
        # shutdown_timeout: HTTP stops within the same grace as gRPC (aiohttp's 60 s default
        # would outlast Kubernetes' 30 s).
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=self.settings.grace_s)
        await runner.setup()
        self._runners.append(runner)
        site = web.TCPSite(runner, self.settings.host, port, ssl_context=ssl_context)
        await site.start()
        return _bound_port(site)

    def _triton_endpoints(self) -> int:
        """How many Tritons run requests now: the batcher holds batches while all are busy."""
        return len(self.backend.addresses) if self.backend is not None else 1

    def reload(self) -> None:
        """Re-read certificates and token files now (SIGHUP); open connections stay."""
        log.info("event=reload")
        if self.tls is not None:
            self.tls.refresh(force=True)
        self.auth.refresh(force=True)

    async def _set_health(self, serving: bool) -> None:
        if self._stopping:
            serving = False
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", SERVICE_NAME):
            await self._health.set(name, status)
        if serving:
            self.ready.set()
        else:
            self.ready.clear()

    async def _bring_up(self) -> None:
        """Connect to Triton (starting a local one if needed), load the catalogue, monitor."""
        s = self.settings
        async with contextlib.AsyncExitStack() as stack:
            urls = s.triton_urls
            if not urls:
                # Explicit model control (every model still loaded at start) lets LoadModel
                # add a model trained while the gateway runs.
                local = LocalTriton(
                    s.model_repository,
                    startup_timeout_s=s.triton_startup_timeout_s,
                    model_control_explicit=True,
                )
                endpoints = await stack.enter_async_context(local)
                self.local_triton = local
                urls = (endpoints.grpc_url,)
            self.triton_urls = urls
            backend = await stack.enter_async_context(
                TritonBackend(
                    urls,
                    channels_per_endpoint=s.channels_per_endpoint,
                    resolver=self._resolver,
                    resolve_interval_s=s.triton_resolve_s,
                    tls=self._triton_tls,
                )
            )
            self.backend = backend
            if self.local_triton is not None:
                supervisor = asyncio.create_task(
                    self._supervise(self.local_triton), name="triton-supervisor"
                )
                stack.push_async_callback(_cancel_and_wait, supervisor)
            refresher = asyncio.create_task(self._keep_models_fresh(), name="model-refresh")
            stack.push_async_callback(_cancel_and_wait, refresher)
            while True:
                await self._check_triton(backend, urls)
                await asyncio.sleep(MONITOR_INTERVAL_S)

    async def _check_triton(self, backend: TritonBackend, urls: Sequence[str]) -> None:
        """One readiness check of every endpoint; flip health when the answer changed."""
        serving = self.ready.is_set()
        healthy = False
        with contextlib.suppress(Exception):
            states = await backend.endpoint_health(timeout_s=MONITOR_TIMEOUT_S)
            for url, up in states.items():
                self.metrics.triton_up.labels(url).set(1 if up else 0)
            for gone in self._endpoint_labels - states.keys():  # drained: no stale series
                self.metrics.triton_up.remove(gone)
            self._endpoint_labels = set(states)
            ready_now = frozenset(url for url, up in states.items() if up)
            if ready_now != self._ready_endpoints:
                self._ready_endpoints = ready_now
                self._models_stale.set()  # a Triton joined or left: compare the lists again
            if any(states.values()):
                if not serving:
                    specs = await self.catalogue.reload(backend)
                    log.info("event=catalogue_loaded models=%s", ",".join(x.name for x in specs))
                healthy = True
        self._failed_checks = 0 if healthy else self._failed_checks + 1
        if serving and self._failed_checks < MONITOR_FAILURES:
            return
        if healthy != serving:
            await self._set_health(healthy)
            log.info("event=health serving=%s triton=%s", healthy, ",".join(urls))

    async def _keep_models_fresh(self) -> None:
        """Read the model list again every ``model_refresh_s``, and at once when the ready
        Tritons change, so this gateway lists a model loaded through another one and never
        one that a ready Triton lacks. Only while serving: becoming ready reads it anyway."""
        period = self.settings.model_refresh_s
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(period if period > 0 else None):
                    await self._models_stale.wait()
            self._models_stale.clear()
            if not self.ready.is_set():
                continue
            before = {m.name for m in self.catalogue.all()}
            try:
                async with asyncio.timeout(MODEL_REFRESH_TIMEOUT_S):
                    specs = await self.dataplane.refresh_models()
            except (BackendUnavailable, TimeoutError) as exc:
                log.warning("event=model_refresh_failed error=%r", str(exc))
                continue
            except Exception:  # a bug must not end the refreshes for the life of the process
                log.exception("event=model_refresh_error")
                continue
            after = {m.name for m in specs}
            if after != before:
                log.info(
                    "event=models_changed added=%s removed=%s",
                    ",".join(sorted(after - before)),
                    ",".join(sorted(before - after)),
                )

    async def _supervise(self, local: LocalTriton) -> None:
        """Restart the local Triton whenever it exits, with backoff, logged and counted."""
        first, longest = RESTART_BACKOFF_S
        delay = first
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:
            code = await local.wait_exit()
            await self._set_health(False)  # at once, not at the monitor's next look
            if loop.time() - started >= RESTART_STABLE_S:
                delay = first
            log.error("event=triton_exited code=%s restart_in_s=%.1f", code, delay)
            while True:
                await asyncio.sleep(delay)
                delay = min(delay * 2, longest)
                self.metrics.triton_restarts.inc()  # each attempt, counted as it starts
                try:
                    await local.restart()
                except TritonStartError as exc:
                    log.error("event=triton_restart_failed error=%s", str(exc).splitlines()[0])
                    continue
                break
            started = loop.time()
            log.info("event=triton_restarted pid=%s", local.pid)

    async def wait_ready(self) -> None:
        """Wait until serving; raise if bringing Triton up failed."""
        assert self._bringup is not None
        ready = asyncio.create_task(self.ready.wait())
        done, _ = await asyncio.wait({ready, self._bringup}, return_when=asyncio.FIRST_COMPLETED)
        if self._bringup in done:
            ready.cancel()
            self._bringup.result()
            raise RuntimeError("Triton bring-up ended unexpectedly")

    async def _stop(self) -> None:
        s = self.settings
        loop = asyncio.get_running_loop()
        began = loop.time()
        was_serving = self.ready.is_set()
        self._stopping = True
        self.ready.clear()  # /readyz
        with contextlib.suppress(Exception):
            await self._health.enter_graceful_shutdown()  # gRPC health, every port
        if was_serving and s.drain_s > 0:
            await asyncio.sleep(s.drain_s)  # load balancers stop sending meanwhile
        told = self.service.begin_shutdown() if self.service is not None else 0
        log.info("event=shutdown_streams streams=%s grace_s=%s", told, s.grace_s)

        # gRPC and HTTP (API and metrics) stop together, within the same grace
        deadline = loop.time() + s.grace_s
        await asyncio.gather(
            self._stop_grpc(deadline, linger=told > 0),
            *(runner.cleanup() for runner in self._runners),
            return_exceptions=True,
        )
        if self.batcher is not None:
            await self.batcher.close()
        if self._bringup is not None:
            self._bringup.cancel()
            await asyncio.wait({self._bringup})
            if not self._bringup.cancelled():
                self._bringup.exception()  # retrieved; wait_ready reports it
        await self._stack.aclose()
        log.info("event=stopped seconds=%.2f", loop.time() - began)

    async def _stop_grpc(self, deadline: float, *, linger: bool) -> None:
        loop = asyncio.get_running_loop()
        if self.service is not None and linger:
            budget = deadline - loop.time() - TRAILER_LINGER_S
            if await self.service.wait_streams_ended(max(0.0, budget)):
                await asyncio.sleep(min(TRAILER_LINGER_S, max(0.0, deadline - loop.time())))
        await asyncio.gather(
            *(srv.stop(max(0.0, deadline - loop.time())) for srv in self._servers),
            return_exceptions=True,
        )


class _LazyBackend:
    """Hands calls to the gateway's backend once bring-up has made it."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    def _backend(self) -> TritonBackend:
        backend = self._gateway.backend
        if backend is None:
            raise BackendUnavailable("the gateway is starting: Triton is not connected yet")
        return backend

    async def infer(self, *args: Any, **kwargs: Any) -> Any:
        return await self._backend().infer(*args, **kwargs)

    async def load_model(self, name: str) -> None:
        """Refresh a local Triton's derived copy of the model, then have Triton load it."""
        backend = self._backend()
        local = self._gateway.local_triton
        if local is not None:
            try:
                await asyncio.to_thread(local.refresh_model, name)
            except ValueError as exc:
                raise ModelNotFound(str(exc)) from exc
        await backend.load_model(name)

    async def model_configs(self) -> Any:
        return await self._backend().model_configs()

    async def is_ready(self) -> bool:
        return self._gateway.backend is not None and await self._gateway.backend.is_ready()

    async def close(self) -> None:
        return None


async def _cancel_and_wait(task: asyncio.Task[None]) -> None:
    """Cancel a child task and wait for it, without swallowing our own cancellation."""
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()


def _bound_port(site: web.TCPSite) -> int:
    server = site._server  # aiohttp keeps the asyncio server here
    sockets = getattr(server, "sockets", None) or []
    return int(sockets[0].getsockname()[1]) if sockets else 0


class _KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = f"ts={self.formatTime(record)} level={record.levelname} logger={record.name}"
        return f"{base} {record.getMessage()}"


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "ts": self.formatTime(record),
                "level": record.levelname,
                "logger": record.name,
                "message": record.getMessage(),
            }
        )


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if settings.log_json else _KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())


async def serve(settings: Settings, *, resolver: Resolver | None = None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Gateway(settings, resolver=resolver) as gateway:
        loop.add_signal_handler(signal.SIGHUP, gateway.reload)
        waiter = asyncio.create_task(stop.wait())
        ready = asyncio.create_task(gateway.wait_ready())
        done, _ = await asyncio.wait({waiter, ready}, return_when=asyncio.FIRST_COMPLETED)
        if ready in done:
            ready.result()
            log.info("event=ready grpc_port=%s", gateway.grpc_port)
            await waiter
        else:
            ready.cancel()
        log.info("event=stopping grace_s=%s", settings.grace_s)


def main(argv: Sequence[str] | None = None, *, resolver: Resolver | None = None) -> int:
    """`tritone serve`; ``resolver`` replaces DNS for ``dns:///`` Triton URLs (tests)."""
    settings = load_settings(argv)
    configure_logging(settings)
    try:
        asyncio.run(serve(settings, resolver=resolver))
    except Exception as exc:
        log.error("event=fatal error=%r", exc)
        return 1
    return 0
