"""The HTTP side, served by aiohttp in the gateway's own loop: health and the catalogue."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from tritone_server.models import Catalogue, ModelSpec

CATALOGUE_KEY = web.AppKey("catalogue", Catalogue)
ReadyCheck = Callable[[], bool]
READY_KEY: web.AppKey[ReadyCheck] = web.AppKey("ready")


def _spec_json(spec: ModelSpec) -> dict[str, object]:
    return {
        "name": spec.name,
        "version": spec.version,
        "task": spec.task,
        "labels": list(spec.labels),
        "sample_rate": spec.sample_rate,
        "window_samples": spec.window_samples,
        "hop_samples": spec.hop_samples,
        "activation": spec.activation,
        "stateful": spec.stateful,
        "ready": spec.ready,
    }


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    if request.app[READY_KEY]():
        return web.json_response({"status": "ready"})
    return web.json_response({"status": "not ready"}, status=503)


async def list_models(request: web.Request) -> web.Response:
    catalogue = request.app[CATALOGUE_KEY]
    return web.json_response([_spec_json(s) for s in catalogue.all()])


def build_app(catalogue: Catalogue, ready: Callable[[], bool]) -> web.Application:
    app = web.Application()
    app[CATALOGUE_KEY] = catalogue
    app[READY_KEY] = ready
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/models", list_models)
    return app
