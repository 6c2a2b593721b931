"""The HTTP side against the real gateway: HF Inference API clients unchanged, metrics."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import requests
from huggingface_hub import AsyncInferenceClient, InferenceClient
from prometheus_client.parser import text_string_to_metric_families

import tritone
from support.gateway import RunningGateway
from support.tones import FREQS, LABELS, encode, tone


@pytest.fixture(scope="module")
def flac(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "tone.flac"
    path.write_bytes(encode(tone(FREQS[5], 1.0, 44100, channels=2), 44100, "flac"))
    return path


def pairs(items: object) -> list[tuple[str, float]]:
    return [(x["label"], x["score"]) if isinstance(x, dict) else (x.label, x.score) for x in items]  # type: ignore[attr-defined]


async def sdk_pairs(client: tritone.AsyncClient, path: Path, top_k: int) -> list[tuple[str, float]]:
    result = await client.classify(path, model="tones", top_k=top_k)
    return [(x.label, x.score) for x in result.labels]


def assert_same(got: list[tuple[str, float]], want: list[tuple[str, float]]) -> None:
    assert [label for label, _ in got] == [label for label, _ in want]
    assert [score for _, score in got] == pytest.approx([score for _, score in want], abs=1e-6)


async def test_the_seed_requests_snippet(
    gateway: RunningGateway, client: tritone.AsyncClient, flac: Path
) -> None:
    api_url = f"{gateway.http_url}/models/tones"
    headers = {"Authorization": "Bearer hf_xxx"}
    response = requests.post(api_url, headers=headers, data=flac.read_bytes(), timeout=30)
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, list) and body[0]["label"] == LABELS[5]
    assert_same(pairs(body), await sdk_pairs(client, flac, 5))


async def test_json_body_with_parameters_and_query_parameters(
    gateway: RunningGateway, client: tritone.AsyncClient, flac: Path
) -> None:
    url = f"{gateway.http_url}/models/tones"
    payload = {"inputs": base64.b64encode(flac.read_bytes()).decode(), "parameters": {"top_k": 2}}
    body = requests.post(url, json=payload, timeout=30).json()
    assert_same(pairs(body), await sdk_pairs(client, flac, 2))
    by_query = requests.post(url, params={"top_k": 3}, data=flac.read_bytes(), timeout=30).json()
    assert_same(pairs(by_query), await sdk_pairs(client, flac, 3))
    raw = requests.post(
        url, params={"function_to_apply": "none"}, data=flac.read_bytes(), timeout=30
    ).json()
    assert raw[0]["label"] == LABELS[5] and raw[0]["score"] > 1.0  # logits, not probabilities


@pytest.mark.parametrize("top_k", [None, 3])
async def test_huggingface_inference_client(
    gateway: RunningGateway, client: tritone.AsyncClient, flac: Path, top_k: int | None
) -> None:
    url = f"{gateway.http_url}/models/tones"
    want = await sdk_pairs(client, flac, top_k or 5)
    with InferenceClient() as hf_sync:
        sync_result = hf_sync.audio_classification(str(flac), model=url, top_k=top_k)
    assert_same(pairs(sync_result), want)
    async with AsyncInferenceClient() as hf:
        async_result = await hf.audio_classification(flac.read_bytes(), model=url, top_k=top_k)
    assert_same(pairs(async_result), want)


@pytest.mark.parametrize(
    ("path", "kwargs", "status"),
    [
        ("/models/no-such", {"data": b"RIFF"}, 404),
        ("/models/tones", {"data": b"not audio" * 50}, 400),
        ("/models/tones", {"json": {"inputs": "%%%not base64"}}, 400),
        ("/models/tones", {"json": {"nope": 1}}, 400),
        ("/models/tones", {"data": b"x", "params": {"top_k": "many"}}, 400),
        ("/models/tones", {"data": b"x", "params": {"function_to_apply": "tanh"}}, 400),
    ],
)
def test_errors_are_json_with_a_fitting_status(
    gateway: RunningGateway, path: str, kwargs: dict[str, object], status: int
) -> None:
    response = requests.post(gateway.http_url + path, timeout=30, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == status
    assert isinstance(response.json()["error"], str) and response.json()["error"]


def scrape(gateway: RunningGateway) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = requests.get(gateway.http_url + "/metrics", timeout=10).text
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def counter(
    values: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return values.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_count_exactly_the_requests_made(
    gateway: RunningGateway, client: tritone.AsyncClient, flac: Path
) -> None:
    before = scrape(gateway)
    for _ in range(3):
        await client.classify(flac, model="tones")
    with pytest.raises(tritone.ModelNotFoundError):
        await client.classify(flac, model="no-such")
    for _ in range(2):
        requests.post(f"{gateway.http_url}/models/tones", data=flac.read_bytes(), timeout=30)
    pcm = (tone(FREQS[1], 1.0, 16000) * 32767).astype("<i2").tobytes()
    async for _ in client.stream_classify([pcm], sample_rate=16000, model="tones"):
        pass
    after = scrape(gateway)

    def delta(name: str, **labels: str) -> float:
        return counter(after, name, **labels) - counter(before, name, **labels)

    ok = {"model": "tones", "code": "OK"}
    assert delta("tritone_requests_total", rpc="Classify", **ok) == 3
    assert delta("tritone_requests_total", rpc="Classify", model="", code="NOT_FOUND") == 1
    assert delta("tritone_request_errors_total", rpc="Classify", model="", code="NOT_FOUND") == 1
    assert delta("tritone_requests_total", rpc="http_classify", **ok) == 2
    assert delta("tritone_requests_total", rpc="StreamClassify", **ok) == 1
    assert delta("tritone_audio_seconds_total", model="tones") == pytest.approx(6.0)
    assert delta("tritone_request_seconds_count", stage="total", model="tones") == 6
    assert delta("tritone_request_seconds_count", stage="decode", model="tones") == 5
    assert delta("tritone_request_seconds_count", stage="triton", model="tones") >= 6
    assert delta("tritone_request_seconds_count", stage="queue", model="tones") == 2
    assert counter(after, "tritone_open_streams") == 0
    up = [v for (name, _), v in after.items() if name == "tritone_triton_endpoint_up"]
    assert up == [1.0]
