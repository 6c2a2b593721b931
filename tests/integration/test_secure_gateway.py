"""TLS, mTLS, bearer and admin tokens, the health and metrics ports, and round-robin callers,
against real gateways in front of one real Triton.

As Triton's own L0_secure_grpc does it, the certificates are made here (support.certs) and
nothing is committed. The gateways share one local Triton through ``--triton-url``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
import requests
from grpc_health.v1 import health_pb2, health_pb2_grpc
from huggingface_hub import InferenceClient
from prometheus_client.parser import text_string_to_metric_families

import tritone
from support.certs import TestCa, replace_file
from support.gateway import (
    GatewayStartError,
    RunningGateway,
    free_port,
    start_gateway,
    tones_repository,
)
from support.tones import FREQS, LABELS, encode, to_s16le, tone
from support.waiting import wait_for
from tritone.errors import StatusCode
from tritone_server.triton.local import LocalTriton

USER_TOKEN = "caller-7f3a9c2e"
ADMIN_TOKEN = "operator-41d8b06f"
CA = TestCa("tritone-test-ca")
WRONG_CA = TestCa("somebody-else")
AUDIO = tone(FREQS[3], 0.5, 16000)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def triton_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """One Triton for the module, serving ``tones`` only: the one model these tests use."""
    repository = tones_repository(tmp_path_factory.mktemp("models"))
    async with LocalTriton(repository, model_control_explicit=True) as endpoints:
        yield endpoints.grpc_url


@dataclass(frozen=True)
class Secured:
    gateway: RunningGateway
    folder: Path
    health_port: int
    metrics_port: int


@contextlib.contextmanager
def gateway_with(triton: str, folder: Path, *flags: str) -> Iterator[Secured]:
    """A gateway on ``triton`` with its own health and metrics ports, and ``flags``."""
    health_port, metrics_port = free_port(), free_port()
    try:
        with start_gateway(
            "--triton-url",
            triton,
            "--default-model",
            "tones",
            "--metrics-port",
            str(metrics_port),
            *flags,
            health_port=health_port,
        ) as gateway:
            yield Secured(gateway, folder, health_port, metrics_port)
    except GatewayStartError as exc:
        pytest.fail(str(exc))


def _tls_files(folder: Path, *, client_ca: bool) -> list[str]:
    cert, key = CA.server_pair().write(folder, "server")
    flags = ["--tls-cert", str(cert), "--tls-key", str(key)]
    if client_ca:
        replace_file(folder / "clients.pem", CA.pem)
        flags += ["--tls-client-ca", str(folder / "clients.pem")]
    return flags


@pytest.fixture(scope="module")
def secure(triton_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    """TLS, caller tokens and admin tokens."""
    folder = tmp_path_factory.mktemp("secure")
    (folder / "tokens").write_text(f"# callers\n{USER_TOKEN}\n")
    (folder / "admin").write_text(f"{ADMIN_TOKEN}\n")
    tokens = ["--token-file", str(folder / "tokens"), "--admin-token-file", str(folder / "admin")]
    tls_flags = _tls_files(folder, client_ca=False)
    with gateway_with(triton_url, folder, *tls_flags, *tokens) as running:
        yield running


@pytest.fixture(scope="module")
def mtls(triton_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    folder = tmp_path_factory.mktemp("mtls")
    with gateway_with(triton_url, folder, *_tls_files(folder, client_ca=True)) as running:
        yield running


def tls(ca: TestCa = CA, *, client: bool = False) -> tritone.TlsConfig:
    if not client:
        return tritone.TlsConfig(root_certificates=ca.pem)
    pair = ca.client_pair()
    return tritone.TlsConfig(
        root_certificates=ca.pem, private_key=pair.private_key, certificate_chain=pair.certificate
    )


async def classify_code(
    target: str, *, tls: tritone.TlsConfig | None = None, token: str | None = None
) -> StatusCode:
    """The status of one SDK Classify call (retries off: a refusal must show at once)."""
    async with tritone.AsyncClient(target, tls=tls, token=token, retries=0, timeout=60) as c:
        try:
            result = await c.classify(AUDIO, sample_rate=16000, model="tones")
        except tritone.TritoneError as exc:
            return exc.code
    assert result.labels[0].label == LABELS[3]
    return StatusCode.OK


async def plain_health(port: int) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=10
        )
    return int(reply.status)


def requests_total(metrics_port: int, rpc: str = "Classify") -> float:
    text = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "tritone_requests_total" and sample.labels.get("rpc") == rpc:
                total += sample.value
    return total


async def test_tls_with_the_right_ca_and_a_token_works(secure: Secured) -> None:
    target = secure.gateway.target
    assert await classify_code(target, tls=tls(), token=USER_TOKEN) is StatusCode.OK


async def test_tls_refuses_a_wrong_ca_and_plaintext(secure: Secured) -> None:
    target = secure.gateway.target
    wrong = await classify_code(target, tls=tls(WRONG_CA), token=USER_TOKEN)
    assert wrong is StatusCode.UNAVAILABLE
    assert await classify_code(target, token=USER_TOKEN) is StatusCode.UNAVAILABLE


async def test_tokens_missing_wrong_and_right(secure: Secured) -> None:
    target = secure.gateway.target
    assert await classify_code(target, tls=tls()) is StatusCode.UNAUTHENTICATED
    assert await classify_code(target, tls=tls(), token="guess") is StatusCode.UNAUTHENTICATED
    assert await classify_code(target, tls=tls(), token=USER_TOKEN) is StatusCode.OK
    assert await classify_code(target, tls=tls(), token=ADMIN_TOKEN) is StatusCode.OK
    # Refused calls are counted under their status, and no token reaches the log.
    log = secure.gateway.log()
    assert "code=UNAUTHENTICATED" in log
    assert USER_TOKEN not in log and ADMIN_TOKEN not in log and "guess" not in log


async def test_load_model_needs_an_admin_token(secure: Secured) -> None:
    target = secure.gateway.target
    async with tritone.AsyncClient(target, tls=tls(), token=USER_TOKEN, retries=0) as caller:
        with pytest.raises(tritone.PermissionDeniedError) as denied:
            await caller.load_model("tones")
        assert denied.value.code is StatusCode.PERMISSION_DENIED
        # The same token may still classify and list.
        assert "tones" in {m.name for m in await caller.list_models()}
    async with tritone.AsyncClient(target, tls=tls(), token=ADMIN_TOKEN, timeout=120) as admin:
        info = await admin.load_model("tones")
    assert info.name == "tones"


async def test_streams_need_a_token_too(secure: Secured) -> None:
    target = secure.gateway.target
    pcm = to_s16le(tone(FREQS[3], 2.0, 16000))
    async with tritone.AsyncClient(target, tls=tls(), retries=0) as anonymous:
        with pytest.raises(tritone.UnauthenticatedError):
            async for _ in anonymous.stream_classify([pcm], sample_rate=16000, model="tones"):
                pass
    async with tritone.AsyncClient(target, tls=tls(), token=USER_TOKEN) as caller:
        events = [e async for e in caller.stream_classify([pcm], sample_rate=16000, model="tones")]
    assert isinstance(events[-1], tritone.StreamSummary)


async def test_health_is_open_on_both_ports(secure: Secured) -> None:
    assert await plain_health(secure.health_port) == health_pb2.HealthCheckResponse.SERVING
    # On the TLS port, health needs the CA but no token.
    creds = grpc.ssl_channel_credentials(root_certificates=CA.pem)
    async with grpc.aio.secure_channel(secure.gateway.target, creds) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=10
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_http_over_tls_needs_a_token_except_for_health(secure: Secured) -> None:
    ca_file = str(secure.folder / "ca.pem")
    Path(ca_file).write_bytes(CA.pem)
    base = f"https://127.0.0.1:{secure.gateway.http_port}"
    wav = encode(AUDIO, 16000, "wav")
    for headers in ({}, {"Authorization": "Bearer guess"}):
        refused = requests.post(f"{base}/models/tones", data=wav, headers=headers, verify=ca_file)
        assert refused.status_code == 401
        assert set(refused.json()) == {"error"}
    good = {"Authorization": f"Bearer {USER_TOKEN}"}
    answer = requests.post(f"{base}/models/tones", data=wav, headers=good, verify=ca_file)
    assert answer.status_code == 200
    assert answer.json()[0]["label"] == LABELS[3]
    assert requests.get(f"{base}/healthz", verify=ca_file).status_code == 200
    assert requests.get(f"{base}/readyz", verify=ca_file).status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{base}/healthz", verify=True)  # the system's roots do not know our CA


def test_metrics_live_on_their_own_port(secure: Secured) -> None:
    ca_file = str(secure.folder / "ca.pem")
    Path(ca_file).write_bytes(CA.pem)
    good = {"Authorization": f"Bearer {USER_TOKEN}"}
    api = f"https://127.0.0.1:{secure.gateway.http_port}/metrics"
    assert requests.get(api, headers=good, verify=ca_file).status_code == 404
    reply = requests.get(f"http://127.0.0.1:{secure.metrics_port}/metrics", timeout=10)
    assert reply.status_code == 200
    assert "tritone_requests_total" in reply.text


async def test_mtls_needs_a_client_certificate(mtls: Secured) -> None:
    target = mtls.gateway.target
    assert await classify_code(target, tls=tls(client=True)) is StatusCode.OK
    assert await classify_code(target, tls=tls()) is StatusCode.UNAVAILABLE
    other = tritone.TlsConfig(
        root_certificates=CA.pem,
        private_key=WRONG_CA.client_pair().private_key,
        certificate_chain=WRONG_CA.client_pair().certificate,
    )
    assert await classify_code(target, tls=other) is StatusCode.UNAVAILABLE
    # Kubernetes probes have no client certificate: the health port is plaintext.
    assert await plain_health(mtls.health_port) == health_pb2.HealthCheckResponse.SERVING


async def test_sighup_rotates_certificates_without_dropping_a_live_stream(
    triton_url: str, tmp_path: Path
) -> None:
    tls_flags = _tls_files(tmp_path, client_ca=False)
    with gateway_with(triton_url, tmp_path, *tls_flags) as rotating:
        target = rotating.gateway.target
        pcm = to_s16le(tone(FREQS[2], 4.0, 16000))
        half = len(pcm) // 2
        async with (
            tritone.AsyncClient(target, tls=tls()) as client,
            client.stream_classify(sample_rate=16000, model="tones") as stream,
        ):
            await stream.send(pcm[:half])
            new_ca = TestCa("rotated-ca")
            new_ca.server_pair().write(tmp_path, "server")
            rotating.gateway.process.send_signal(signal.SIGHUP)
            assert await classify_code(target, tls=tls(new_ca)) is StatusCode.OK
            assert await classify_code(target, tls=tls(CA)) is StatusCode.UNAVAILABLE
            await stream.send(pcm[half:])
            await stream.end()
            events = [event async for event in stream]
        summary = events[-1]
        assert isinstance(summary, tritone.StreamSummary)
        assert summary.bytes_received == len(pcm)
        assert "event=tls_reloaded" in rotating.gateway.log()
        assert rotating.gateway.process.poll() is None


@dataclass(frozen=True)
class Pair:
    first: Secured
    second: Secured
    tokens: Path

    @property
    def target(self) -> str:
        """One gRPC target naming both gateways, as DNS names every pod of a headless Service."""
        ports = (self.first.gateway.grpc_port, self.second.gateway.grpc_port)
        return "ipv4:" + ",".join(f"127.0.0.1:{port}" for port in ports)

    def counts(self, rpc: str) -> tuple[float, float]:
        return requests_total(self.first.metrics_port, rpc), requests_total(
            self.second.metrics_port, rpc
        )


@pytest.fixture(scope="module")
def pair_of_gateways(triton_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """Two plaintext gateways with caller tokens, as two pods behind a headless Service."""
    folder = tmp_path_factory.mktemp("pair")
    tokens = folder / "tokens"
    tokens.write_text(f"{USER_TOKEN}\n")
    flags = ("--token-file", str(tokens))
    with (
        gateway_with(triton_url, folder, *flags) as first,
        gateway_with(triton_url, folder, *flags) as second,
    ):
        yield Pair(first, second, tokens)


async def test_round_robin_spreads_calls_over_every_gateway(pair_of_gateways: Pair) -> None:
    calls = 12

    async def spread(load_balancing: str | None) -> tuple[float, float]:
        before = pair_of_gateways.counts("Classify")
        async with tritone.AsyncClient(
            pair_of_gateways.target, token=USER_TOKEN, load_balancing=load_balancing
        ) as client:
            for _ in range(calls):
                result = await client.classify(AUDIO, sample_rate=16000, model="tones")
                assert result.labels[0].label == LABELS[3]
        after = pair_of_gateways.counts("Classify")
        return after[0] - before[0], after[1] - before[1]

    # gRPC's default (pick_first) pins a channel to one gateway...
    pinned = await spread(None)
    assert sorted(pinned) == [0, calls]
    # ...round_robin sends calls to both.
    spread_out = await spread("round_robin")
    assert sum(spread_out) == calls
    assert min(spread_out) >= 1


def test_sync_client_takes_load_balancing_too(pair_of_gateways: Pair) -> None:
    before = pair_of_gateways.counts("ListModels")
    with tritone.Client(
        pair_of_gateways.target, token=USER_TOKEN, load_balancing="round_robin"
    ) as client:
        for _ in range(6):
            assert "tones" in {m.name for m in client.list_models()}
    after = pair_of_gateways.counts("ListModels")
    assert after[0] > before[0] and after[1] > before[1]


def test_hugging_face_client_sends_its_token(pair_of_gateways: Pair) -> None:
    gateway = pair_of_gateways.first.gateway
    url = f"{gateway.http_url}/models/tones"
    wav = encode(AUDIO, 16000, "wav")
    with InferenceClient(token=USER_TOKEN) as hf:
        result = hf.audio_classification(wav, model=url)
    assert result[0].label == LABELS[3]
    with InferenceClient(token="hf_not_ours") as stranger, pytest.raises(Exception) as refused:
        stranger.audio_classification(wav, model=url)
    assert getattr(refused.value, "response", None) is not None
    assert refused.value.response.status_code == 401  # type: ignore[attr-defined]


async def test_token_file_changes_apply_without_a_restart(pair_of_gateways: Pair) -> None:
    gateway = pair_of_gateways.second.gateway
    target = gateway.target
    replace_file(pair_of_gateways.tokens, f"{USER_TOKEN}\nnew-caller-token\n".encode())
    gateway.process.send_signal(signal.SIGHUP)

    async def new_token_accepted() -> bool:
        return await classify_code(target, token="new-caller-token") is StatusCode.OK

    await wait_for(new_token_accepted, 30, poll_s=0.1, what="the new token is accepted")
    assert await classify_code(target, token=USER_TOKEN) is StatusCode.OK


def test_cli_connects_with_a_ca_file_and_a_token(secure: Secured) -> None:
    ca_file = secure.folder / "cli-ca.pem"
    ca_file.write_bytes(CA.pem)
    tritone_bin = Path(sys.executable).parent / "tritone"
    base = [str(tritone_bin), "models", "--target", secure.gateway.target, "--tls-ca", str(ca_file)]
    env = {k: v for k, v in os.environ.items() if k != "TRITONE_TOKEN"}
    listed = subprocess.run(
        [*base, "--token", USER_TOKEN], capture_output=True, text=True, timeout=60, env=env
    )
    assert listed.returncode == 0, listed.stderr
    assert "tones" in listed.stdout
    refused = subprocess.run(base, capture_output=True, text=True, timeout=60, env=env)
    assert refused.returncode != 0
