"""Bearer tokens: the decision table, reloading, and refusal before the request is parsed."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import pytest
import pytest_asyncio
from aiohttp import web

from support.certs import replace_file
from tritone_protos import audio_classification_pb2 as pb
from tritone_protos import audio_classification_pb2_grpc as pb_grpc
from tritone_server.errors import PermissionDenied, Unauthenticated
from tritone_server.frontends.auth import (
    Authenticator,
    AuthInterceptor,
    bearer_token,
    http_auth_middleware,
    read_tokens,
)
from tritone_server.frontends.http import METRICS_KEY, errors_and_metrics
from tritone_server.frontends.interceptors import AccessLogInterceptor
from tritone_server.frontends.status import grpc_code
from tritone_server.metrics import Metrics

USER, ADMIN = "user-token-1234", "admin-token-5678"
LOAD_MODEL = "/tritone.v1.AudioClassification/LoadModel"
CLASSIFY = "/tritone.v1.AudioClassification/Classify"


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def token_files(tmp_path: Path) -> tuple[Path, Path]:
    return (
        _write(tmp_path / "tokens", f"# callers\n\n{USER}\nsecond-user\n"),
        _write(tmp_path / "admin", f"{ADMIN}\n"),
    )


def test_token_file_lines_comments_and_blanks(tmp_path: Path) -> None:
    path = _write(tmp_path / "t", "# comment\n\n  one  \ntwo\n")
    assert read_tokens(path) == (b"one", b"two")


@pytest.mark.parametrize("text", ["", "\n# only a comment\n", "two words\n"])
def test_a_token_file_without_usable_tokens_is_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(ValueError):
        read_tokens(_write(tmp_path / "t", text))


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", b"abc"),
        ("bearer  abc ", b"abc"),
        ("Basic abc", None),
        ("Bearer", None),
        ("abc", None),
        (None, None),
    ],
)
def test_bearer_token_parsing(header: str | None, token: bytes | None) -> None:
    assert bearer_token(header) == token


def test_without_token_files_everything_is_open() -> None:
    auth = Authenticator()
    assert not auth.enabled
    auth.check(None, admin=False)
    auth.check(None, admin=True)


def test_user_tokens(token_files: tuple[Path, Path]) -> None:
    auth = Authenticator(token_files[0])
    auth.check(f"Bearer {USER}", admin=False)
    auth.check("Bearer second-user", admin=False)
    # No admin file: LoadModel takes any valid token.
    auth.check(f"Bearer {USER}", admin=True)
    for header in (None, "Bearer wrong", f"Basic {USER}", f"Bearer {USER}x"):
        with pytest.raises(Unauthenticated):
            auth.check(header, admin=False)


def test_admin_tokens(token_files: tuple[Path, Path]) -> None:
    auth = Authenticator(*token_files)
    auth.check(f"Bearer {ADMIN}", admin=True)
    auth.check(f"Bearer {ADMIN}", admin=False)  # an admin may classify too
    with pytest.raises(PermissionDenied) as denied:
        auth.check(f"Bearer {USER}", admin=True)
    assert grpc_code(denied.value) is grpc.StatusCode.PERMISSION_DENIED
    for header in (None, "Bearer wrong"):
        with pytest.raises(Unauthenticated) as refused:
            auth.check(header, admin=True)
        assert grpc_code(refused.value) is grpc.StatusCode.UNAUTHENTICATED


def test_admin_tokens_alone_guard_only_load_model(token_files: tuple[Path, Path]) -> None:
    auth = Authenticator(admin_token_file=token_files[1])
    auth.check(None, admin=False)
    with pytest.raises(Unauthenticated):
        auth.check(None, admin=True)
    auth.check(f"Bearer {ADMIN}", admin=True)


def test_tokens_are_reread_and_never_logged(
    token_files: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    auth = Authenticator(*token_files)
    _write(token_files[0], "rotated-token\n")
    auth.refresh(force=True)
    auth.check("Bearer rotated-token", admin=False)
    with pytest.raises(Unauthenticated) as old:
        auth.check(f"Bearer {USER}", admin=False)
    # A broken rewrite keeps the tokens in use.
    replace_file(token_files[0], b"")
    auth.refresh()
    auth.check("Bearer rotated-token", admin=False)
    text = caplog.text + str(old.value)
    assert "event=tokens_reloaded" in caplog.text
    assert "event=token_reload_failed" in caplog.text
    for secret in (USER, ADMIN, "rotated-token", "second-user"):
        assert secret not in text


class _Recorder(pb_grpc.AudioClassificationServicer):
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListModelsResponse:
        self.calls.append("ListModels")
        return pb.ListModelsResponse()

    async def LoadModel(
        self, request: pb.LoadModelRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInfo:
        self.calls.append("LoadModel")
        return pb.ModelInfo(name=request.name)


@pytest_asyncio.fixture(loop_scope="session")
async def guarded_server(
    token_files: tuple[Path, Path],
) -> AsyncIterator[tuple[str, _Recorder]]:
    recorder = _Recorder()
    server = grpc.aio.server(interceptors=[AuthInterceptor(Authenticator(*token_files))])
    pb_grpc.add_AudioClassificationServicer_to_server(recorder, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", recorder
    finally:
        await server.stop(0)


async def _raw_call(target: str, method: str, body: bytes, token: str | None) -> grpc.StatusCode:
    metadata = None if token is None else (("authorization", f"Bearer {token}"),)
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary(method)
        try:
            await call(body, metadata=metadata, timeout=5)
        except grpc.aio.AioRpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


async def test_grpc_refuses_before_parsing_the_request(
    guarded_server: tuple[str, _Recorder],
) -> None:
    target, recorder = guarded_server
    garbage = b"\xff\xff\xff\xff not a protobuf"
    # Without a token the answer is UNAUTHENTICATED, not a parse error: nothing was parsed.
    assert await _raw_call(target, CLASSIFY, garbage, None) is grpc.StatusCode.UNAUTHENTICATED
    assert await _raw_call(target, CLASSIFY, garbage, "wrong") is grpc.StatusCode.UNAUTHENTICATED
    # With one, the same bytes reach the deserializer and fail there.
    parsed = await _raw_call(target, CLASSIFY, garbage, USER)
    assert parsed not in (grpc.StatusCode.OK, grpc.StatusCode.UNAUTHENTICATED)
    assert recorder.calls == []


async def test_grpc_token_and_admin_matrix(guarded_server: tuple[str, _Recorder]) -> None:
    target, recorder = guarded_server
    list_models = "/tritone.v1.AudioClassification/ListModels"
    empty = pb.ListModelsRequest().SerializeToString()
    load = pb.LoadModelRequest(name="m").SerializeToString()
    assert await _raw_call(target, list_models, empty, USER) is grpc.StatusCode.OK
    assert await _raw_call(target, list_models, empty, ADMIN) is grpc.StatusCode.OK
    assert await _raw_call(target, LOAD_MODEL, load, USER) is grpc.StatusCode.PERMISSION_DENIED
    assert await _raw_call(target, LOAD_MODEL, load, None) is grpc.StatusCode.UNAUTHENTICATED
    assert await _raw_call(target, LOAD_MODEL, load, ADMIN) is grpc.StatusCode.OK
    assert recorder.calls == ["ListModels", "ListModels", "LoadModel"]


async def test_http_refuses_with_401_json_before_reading_the_body(
    token_files: tuple[Path, Path],
) -> None:
    bodies_read: list[bytes] = []

    async def echo(request: web.Request) -> web.Response:
        bodies_read.append(await request.read())
        return web.json_response({"ok": True})

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    app = web.Application(
        middlewares=[errors_and_metrics, http_auth_middleware(Authenticator(*token_files))]
    )
    app[METRICS_KEY] = Metrics()
    app.router.add_post("/models/{model}", echo)
    app.router.add_get("/healthz", health)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                async with session.post(f"{url}/models/m", data=b"audio", headers=headers) as r:
                    assert r.status == 401
                    assert set(await r.json()) == {"error"}
            assert bodies_read == []
            good = {"Authorization": f"Bearer {USER}"}
            async with session.post(f"{url}/models/m", data=b"audio", headers=good) as r:
                assert r.status == 200
            async with session.get(f"{url}/healthz") as r:
                assert r.status == 200
        assert bodies_read == [b"audio"]
    finally:
        await runner.cleanup()


async def test_refused_unary_calls_are_logged_by_the_outer_interceptors(
    token_files: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """The refusal of a unary method is a request-streaming handler (it reads nothing): the
    interceptors outside auth still wrap it, so the refusal is logged with its code."""
    server = grpc.aio.server(
        interceptors=[AccessLogInterceptor(), AuthInterceptor(Authenticator(*token_files))]
    )
    pb_grpc.add_AudioClassificationServicer_to_server(_Recorder(), server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    caplog.set_level(logging.INFO)
    await server.start()
    try:
        code = await _raw_call(f"127.0.0.1:{port}", CLASSIFY, bytes(1 << 20), None)
    finally:
        await server.stop(0)
    assert code is grpc.StatusCode.UNAUTHENTICATED
    assert f"method={CLASSIFY}" in caplog.text and "code=UNAUTHENTICATED" in caplog.text
