"""The HTTP side in-process: aiohttp's test client over frontends/http.py's app, built as
app.Gateway builds it on the same DataPlane over the fake Triton.

The route speaks the Hugging Face Inference API's audio-classification dialect (raw file
bytes, or JSON with base64 ``inputs`` and ``parameters``); errors come back as
``{"error": sentence}`` with the HTTP status of the shared table in frontends/status.py.
(Named test_http_frontend.py: tests/integration/test_http.py holds the module name
"test_http".)
"""

from __future__ import annotations

import base64
import io
import json
import re
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from support.inprocess import DEFAULT_MODEL, LIMITS, RATE, SECRET, counter, levels
from tritone_server.app import Gateway
from tritone_server.audio.formats import AudioLimits
from tritone_server.errors import AudioLimitError, BackendUnavailable, ModelNotFound
from tritone_server.frontends.http import build_app
from tritone_server.frontends.status import http_status, status_for
from tritone_server.settings import Settings

Http = TestClient[web.Request, web.Application]
FloatArray = npt.NDArray[np.float32]


def wav(samples: FloatArray, rate: int = RATE) -> bytes:
    out = io.BytesIO()
    sf.write(out, samples, rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


CLIP = wav(levels((0.1, 0.2), (0.3, 0.4)))
"""Eleven windows: seven "three", three "one", one "two" (mean scores 70/11, 30/11, 10/11)."""


def http_counted(gateway: Gateway, model: str, code: str) -> float:
    labels = {"rpc": "http_classify", "model": model, "code": code}
    return counter(gateway.metrics, "tritone_requests_total", labels)


async def post_json(http: Http, model: str, payload: object) -> tuple[int, Any]:
    response = await http.post(f"/models/{model}", json=payload)
    return response.status, await response.json()


# ---------------------------------------------------------------------------------------------
# The Hugging Face route
# ---------------------------------------------------------------------------------------------


async def test_raw_file_bytes_get_labels_best_first(http: Http, gateway: Gateway) -> None:
    before = http_counted(gateway, DEFAULT_MODEL, "OK")
    response = await http.post(f"/models/{DEFAULT_MODEL}", data=CLIP)
    assert response.status == 200 and response.content_type == "application/json"
    body = await response.json()
    assert [item["label"] for item in body] == ["three", "one", "two", "zero"]  # all 4 <= 5
    assert [item["score"] for item in body] == pytest.approx([70 / 11, 30 / 11, 10 / 11, 0.0])
    assert all(set(item) == {"label", "score"} for item in body)
    assert http_counted(gateway, DEFAULT_MODEL, "OK") == before + 1


async def test_json_with_base64_inputs_and_top_k(http: Http) -> None:
    payload = {"inputs": base64.b64encode(CLIP).decode(), "parameters": {"top_k": 2}}
    status, body = await post_json(http, DEFAULT_MODEL, payload)
    assert status == 200
    assert [item["label"] for item in body] == ["three", "one"]


async def test_top_k_from_the_query_string_and_the_body_wins(http: Http) -> None:
    response = await http.post(f"/models/{DEFAULT_MODEL}?top_k=1", data=CLIP)
    assert [item["label"] for item in await response.json()] == ["three"]
    payload = {"inputs": base64.b64encode(CLIP).decode(), "parameters": {"top_k": 3}}
    response = await http.post(f"/models/{DEFAULT_MODEL}?top_k=1", json=payload)
    assert len(await response.json()) == 3


async def test_null_parameters_mean_the_defaults(http: Http) -> None:
    payload = {"inputs": base64.b64encode(CLIP).decode(), "parameters": {"top_k": None}}
    status, body = await post_json(http, DEFAULT_MODEL, payload)
    assert status == 200 and len(body) == 4


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        ("softmax", float(np.exp(10) / (np.exp(10) + 3))),
        ("sigmoid", float(1 / (1 + np.exp(-10)))),
        ("none", 10.0),
    ],
)
async def test_function_to_apply_chooses_the_activation(
    http: Http, function: str, expected: float
) -> None:
    clip = wav(levels((0.2, 0.3)))  # every window "two": logit 10, the others 0
    payload = {
        "inputs": base64.b64encode(clip).decode(),
        "parameters": {"function_to_apply": function, "top_k": 4},
    }
    status, body = await post_json(http, DEFAULT_MODEL, payload)
    assert status == 200
    scores = {item["label"]: item["score"] for item in body}
    assert body[0]["label"] == "two" and scores["two"] == pytest.approx(expected, rel=1e-6)
    if function == "softmax":
        assert sum(scores.values()) == pytest.approx(1.0, rel=1e-6)


async def test_the_models_own_activation_applies_when_none_is_asked(http: Http) -> None:
    response = await http.post("/models/levels-softmax", data=wav(levels((0.2, 0.3))))
    scores = [item["score"] for item in await response.json()]
    assert sum(scores) == pytest.approx(1.0, rel=1e-6)


# ---------------------------------------------------------------------------------------------
# Errors: JSON with the status of the shared table
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "sentence"),
    [
        (b"{not json", "the body is not valid JSON"),
        (b'["a list"]', 'a JSON body needs "inputs": the audio file as a base64 string'),
        (b'{"inputs": 3}', 'a JSON body needs "inputs": the audio file as a base64 string'),
        (b'{"inputs": "***"}', '"inputs" is not valid base64'),
        (b'{"inputs": "UklGRg==", "parameters": [1]}', '"parameters" must be a JSON object'),
        (b'{"inputs": "UklGRg==", "parameters": {"top_k": "x"}}', "top_k must be an integer"),
        (b'{"inputs": "UklGRg==", "parameters": {"top_k": 0}}', "top_k must be 1 or more, not 0"),
        (
            b'{"inputs": "UklGRg==", "parameters": {"function_to_apply": "relu"}}',
            "function_to_apply must be one of ['softmax', 'sigmoid', 'none'], not 'relu'",
        ),
    ],
)
async def test_a_malformed_request_is_400_with_a_sentence(
    http: Http, gateway: Gateway, body: bytes, sentence: str
) -> None:
    before = http_counted(gateway, "", "INVALID_ARGUMENT")
    response = await http.post(
        f"/models/{DEFAULT_MODEL}", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    error = (await response.json())["error"]
    assert error.startswith(sentence)
    # Refused before the model was looked up: counted without a model.
    assert http_counted(gateway, "", "INVALID_ARGUMENT") == before + 1


@pytest.mark.parametrize(
    ("model", "body", "code", "sentence"),
    [
        ("nope", CLIP, grpc.StatusCode.NOT_FOUND, "model 'nope' is not served here"),
        ("unready", CLIP, grpc.StatusCode.UNAVAILABLE, "model 'unready' is not ready in Triton"),
        ("down", CLIP, grpc.StatusCode.UNAVAILABLE, "Triton at fake-triton:8001 is unreachable"),
        ("broken", CLIP, grpc.StatusCode.INTERNAL, "Triton refused the request"),
        ("embedder", CLIP, grpc.StatusCode.INVALID_ARGUMENT, "gives embeddings, not labels"),
        (DEFAULT_MODEL, b"", grpc.StatusCode.INVALID_ARGUMENT, "the audio is empty"),
        (DEFAULT_MODEL, b"GIF89a", grpc.StatusCode.INVALID_ARGUMENT, "not in a recognised"),
        (
            DEFAULT_MODEL,
            wav(levels((0.2, 0.3), rate=500), 500),
            grpc.StatusCode.INVALID_ARGUMENT,
            "sample rate of 500 Hz is outside the supported range",
        ),
        (
            DEFAULT_MODEL,
            wav(np.zeros((300, 3), np.float32)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "the audio has 3 channels, more than the limit of 2",
        ),
        (
            DEFAULT_MODEL,
            wav(levels((0.2, LIMITS.max_duration_s + 1))),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "the audio is longer than the limit of 5 s",
        ),
        (
            DEFAULT_MODEL,
            b"RIFF" + bytes(LIMITS.max_encoded_bytes),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "the audio is 400004 bytes, more than the limit of 400000 bytes",
        ),
    ],
)
async def test_errors_of_the_core_get_the_status_of_the_shared_table(
    http: Http, gateway: Gateway, model: str, body: bytes, code: grpc.StatusCode, sentence: str
) -> None:
    response = await http.post(f"/models/{model}", data=body)
    assert response.status == http_status(code)
    assert response.content_type == "application/json"
    assert sentence in (await response.json())["error"]


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ModelNotFound("m"), 404),
        (BackendUnavailable("m"), 503),
        (AudioLimitError("m", limit="duration"), 413),
        (AudioLimitError("m", limit="sample_rate"), 400),
    ],
)
def test_the_shared_table_gives_the_statuses_the_route_answers(
    error: Exception, status: int
) -> None:
    # The same figures as above, from the table itself: the route has no table of its own.
    known = status_for(error)
    assert known is not None and http_status(known[0]) == status


async def test_an_unexpected_exception_is_500_with_nothing_leaked(
    http: Http, gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    before = http_counted(gateway, "crashing", "INTERNAL")
    response = await http.post("/models/crashing", data=CLIP)
    assert response.status == 500
    text = await response.text()
    assert SECRET not in text and "RuntimeError" not in text and "Traceback" not in text
    # JSON like every other error, with an id that finds the logged traceback
    found = re.fullmatch(
        r"internal error in the gateway \(error id ([0-9a-f]{12})\)", json.loads(text)["error"]
    )
    assert found is not None, text
    logged = [r.getMessage() for r in caplog.records if found.group(1) in r.getMessage()]
    assert logged and SECRET in logged[0] and "Traceback" in logged[0]
    assert http_counted(gateway, "crashing", "INTERNAL") == before + 1


async def test_a_body_over_the_size_limit_is_413_json(http: Http) -> None:
    too_big = bytes(LIMITS.max_encoded_bytes * 4 // 3 + 4096 + 1)
    response = await http.post(f"/models/{DEFAULT_MODEL}", data=too_big)
    assert response.status == 413
    assert "error" in await response.json()


@pytest.mark.parametrize("as_json", [False, True])
async def test_audio_over_the_clip_limit_is_413_before_decoding(
    gateway: Gateway, as_json: bool
) -> None:
    """HTTP holds no more per call than gRPC Classify: the app's limit (the gateway passes
    --max-message-bytes when it is below the decoder's) bounds the audio, raw or base64 in
    JSON, whose body may be 4/3 of it."""
    limit = 1000
    app = build_app(gateway.dataplane, gateway.ready.is_set, max_body_bytes=limit)
    audio = wav(levels((0.5, 1.0)))  # a valid clip, so only its size can refuse it
    assert len(audio) > limit
    if as_json:
        body = json.dumps({"inputs": base64.b64encode(audio).decode()}).encode()
        headers = {"Content-Type": "application/json"}
    else:
        body, headers = audio, {"Content-Type": "audio/wav"}
    async with TestClient(TestServer(app)) as client:
        response = await client.post(f"/models/{DEFAULT_MODEL}", data=body, headers=headers)
        assert response.status == 413
        error = (await response.json())["error"]
    assert f"the audio is {len(audio)} bytes" in error and "StreamClassify" in error


def test_the_clip_limit_is_the_smaller_of_the_message_and_decoder_limits() -> None:
    small_message = Settings(max_message_bytes=1000)
    assert small_message.max_clip_bytes == 1000
    small_decoder = Settings(audio_limits=AudioLimits(max_encoded_bytes=500))
    assert small_decoder.max_clip_bytes == 500


@pytest.mark.parametrize(
    ("method", "path", "status"), [("GET", "/nowhere", 404), ("GET", "/models/levels", 405)]
)
async def test_unknown_routes_and_methods_answer_in_json(
    http: Http, method: str, path: str, status: int
) -> None:
    response = await http.request(method, path)
    assert response.status == status
    assert isinstance((await response.json())["error"], str)


# ---------------------------------------------------------------------------------------------
# /models, /healthz, /readyz, /metrics
# ---------------------------------------------------------------------------------------------


async def test_models_lists_the_catalogue(http: Http) -> None:
    response = await http.get("/models")
    assert response.status == 200
    models = {m["name"]: m for m in await response.json()}
    assert "foreign" not in models and not models["unready"]["ready"]
    assert models[DEFAULT_MODEL] == {
        "name": DEFAULT_MODEL,
        "version": "1",
        "task": "audio-classification",
        "labels": ["zero", "one", "two", "three"],
        "sample_rate": RATE,
        "window_samples": 100,
        "hop_samples": 50,
        "activation": "none",
        "stateful": False,
        "ready": True,
        "description": "",
        "detection_thresholds": {},
        "detection_min_windows": 0,
    }


async def test_healthz_is_alive(http: Http) -> None:
    response = await http.get("/healthz")
    assert response.status == 200 and await response.json() == {"status": "alive"}


async def test_readyz_follows_the_gateways_readiness(http: Http, gateway: Gateway) -> None:
    response = await http.get("/readyz")
    assert response.status == 200 and await response.json() == {"status": "ready"}
    gateway.ready.clear()
    try:
        response = await http.get("/readyz")
        assert response.status == 503 and await response.json() == {"status": "not ready"}
    finally:
        gateway.ready.set()


async def test_metrics_are_prometheus_text_with_the_http_requests(http: Http) -> None:
    await http.post(f"/models/{DEFAULT_MODEL}", data=CLIP)
    response = await http.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = await response.text()
    assert 'tritone_requests_total{code="OK",model="levels",rpc="http_classify"}' in text
    assert "tritone_open_streams" in text
