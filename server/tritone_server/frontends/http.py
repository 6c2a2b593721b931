"""The HTTP side, served by aiohttp in the gateway's own loop.

``POST /models/{model}`` speaks the Hugging Face Inference API's audio-classification
dialect, so ``requests.post(url, data=audio_bytes)`` and huggingface_hub's
``InferenceClient.audio_classification(audio, model=url)`` work unchanged: the body is the
raw audio file, or JSON ``{"inputs": <base64 audio>, "parameters": {...}}``; the answer is
a JSON list of ``{"label", "score"}``, best first. It goes through the same DataPlane as
gRPC Classify. Also: ``GET /models``, ``/healthz`` (alive), ``/readyz`` (Triton ready),
``/metrics`` (Prometheus; on its own port with ``--metrics-port``).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from tritone_server.core.dataplane import DataPlane
from tritone_server.core.description import describe_model
from tritone_server.core.limits import Admission, unary_calls
from tritone_server.core.models import ACTIVATIONS, Activation
from tritone_server.errors import AudioLimitError
from tritone_server.frontends.status import http_status, internal_error, status_for
from tritone_server.metrics import CONTENT_TYPE, Metrics, current_model

DATAPLANE_KEY = web.AppKey("dataplane", DataPlane)
METRICS_KEY = web.AppKey("metrics", Metrics)
ReadyCheck = Callable[[], bool]
READY_KEY: web.AppKey[ReadyCheck] = web.AppKey("ready")
UNARY_KEY = web.AppKey("unary", Admission)
MAX_AUDIO_KEY = web.AppKey("max_audio_bytes", int)


class BadRequest(Exception):
    """The HTTP request itself is malformed (JSON, base64, parameters)."""


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _parameters(request: web.Request, body_params: Any) -> tuple[int | None, Activation | None]:
    """top_k and function_to_apply from the JSON body's parameters, then the query string."""
    if body_params is None:
        body_params = {}
    if not isinstance(body_params, dict):
        raise BadRequest('"parameters" must be a JSON object')
    merged = {**request.query, **{k: v for k, v in body_params.items() if v is not None}}
    top_k: int | None = None
    if "top_k" in merged:
        try:
            top_k = int(merged["top_k"])
        except (TypeError, ValueError):
            raise BadRequest(f"top_k must be an integer, not {merged['top_k']!r}") from None
        if top_k < 1:
            raise BadRequest(f"top_k must be 1 or more, not {top_k}")
    activation = merged.get("function_to_apply")
    if activation is not None and activation not in ACTIVATIONS:
        raise BadRequest(
            f"function_to_apply must be one of {list(ACTIVATIONS)}, not {activation!r}"
        )
    return top_k, activation


def _check_audio_size(request: web.Request, size: int) -> None:
    limit = request.app[MAX_AUDIO_KEY]
    if size > limit:
        raise AudioLimitError(
            f"the audio is {size} bytes, more than the limit of {limit} bytes for one call "
            "(the gateway's --max-message-bytes, as for gRPC Classify); longer audio goes "
            "through gRPC StreamClassify",
            limit="encoded_bytes",
        )


async def _audio_and_parameters(
    request: web.Request,
) -> tuple[bytes, int | None, Activation | None]:
    is_json = request.content_type == "application/json"
    if not is_json and request.content_length is not None:
        _check_audio_size(request, request.content_length)  # refused before it is read
    body = await request.read()
    if request.content_type == "application/json":
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadRequest(f"the body is not valid JSON: {exc}") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("inputs"), str):
            raise BadRequest('a JSON body needs "inputs": the audio file as a base64 string')
        try:
            audio = base64.b64decode(payload["inputs"], validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest('"inputs" is not valid base64') from None
        _check_audio_size(request, len(audio))
        return audio, *_parameters(request, payload.get("parameters"))
    _check_audio_size(request, len(body))
    return body, *_parameters(request, None)


async def classify(request: web.Request) -> web.Response:
    dataplane = request.app[DATAPLANE_KEY]
    # Admitted before the body is read: a refused call costs no upload and no decode.
    with request.app[UNARY_KEY].enter():
        audio, top_k, activation = await _audio_and_parameters(request)
        result = await dataplane.classify(
            request.match_info["model"], audio, top_k_requested=top_k, activation=activation
        )
    return web.json_response([{"label": label, "score": score} for label, score in result.labels])


@web.middleware
async def errors_and_metrics(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Errors become ``{"error": ...}`` with a fitting status; classify calls are counted."""
    metrics = request.app[METRICS_KEY]
    counted = request.method == "POST" and request.match_info.route.name == "classify"
    started = time.perf_counter()
    token = current_model.set("")
    code = "OK"
    try:
        return await handler(request)
    except BadRequest as exc:
        code = "INVALID_ARGUMENT"
        return _error(400, str(exc))
    except web.HTTPException as exc:
        code = "HTTP_" + str(exc.status)
        if exc.status < 400:
            raise
        return _error(exc.status, exc.reason)
    except Exception as exc:
        known = status_for(exc)
        if known is None:
            code = "INTERNAL"
            return _error(500, internal_error(f"POST {request.path}", exc))
        code = known[0].name
        return _error(http_status(known[0], exc), known[1])
    finally:
        if counted:
            metrics.record_request(
                "http_classify", current_model.get(), code, time.perf_counter() - started
            )
        current_model.reset(token)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    if request.app[READY_KEY]():
        return web.json_response({"status": "ready"})
    return web.json_response({"status": "not ready"}, status=503)


async def list_models(request: web.Request) -> web.Response:
    models = request.app[DATAPLANE_KEY].models()
    return web.json_response([describe_model(s) for s in models])


async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS_KEY].exposition()
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE
    return response


def build_app(
    dataplane: DataPlane,
    ready: ReadyCheck,
    *,
    max_body_bytes: int = 64 * 1024 * 1024,
    middlewares: Sequence[Any] = (),
    serve_metrics: bool = True,
    unary: Admission | None = None,
) -> web.Application:
    """The API app; ``max_body_bytes`` bounds the audio of one call (the gRPC message limit,
    so both front ends hold the same at most), ``middlewares`` run inside the error mapping
    (auth raises domain errors), ``serve_metrics=False`` leaves /metrics to
    `build_metrics_app` on its own port, and ``unary`` is the admission HTTP classify calls
    share with gRPC's unary calls."""
    # base64 in JSON is 4/3 of the audio, plus the envelope.
    app = web.Application(
        middlewares=[errors_and_metrics, *middlewares],
        client_max_size=max_body_bytes * 4 // 3 + 4096,
    )
    app[DATAPLANE_KEY] = dataplane
    app[METRICS_KEY] = dataplane.metrics
    app[READY_KEY] = ready
    app[UNARY_KEY] = unary or unary_calls()
    app[MAX_AUDIO_KEY] = max_body_bytes
    app.router.add_post("/models/{model}", classify, name="classify")
    app.router.add_get("/models", list_models)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if serve_metrics:
        app.router.add_get("/metrics", metrics)
    return app


def build_metrics_app(registry: Metrics) -> web.Application:
    """Only /metrics, for the plaintext port that the cluster's monitoring scrapes."""
    app = web.Application()
    app[METRICS_KEY] = registry
    app.router.add_get("/metrics", metrics)
    return app
