"""Bearer tokens: who may call the gateway, and who may load models.

``--token-file`` holds the tokens that may call anything; ``--admin-token-file`` the tokens
that may also call LoadModel (a classify caller cannot swap models). Both are mounted
Secrets with one token a line (blank lines and ``#`` comments ignored), re-read when they
change (checked at most once a second) or on SIGHUP.

Decisions:

- The check runs on headers only: the gRPC interceptor answers before the request message is
  even read (the refusing handler reads no request, see `_refusing_handler`) and the HTTP
  middleware before the body is read, so an unauthenticated caller costs no decoding and
  no memory for its message.
- A token is compared with every configured token by ``hmac.compare_digest`` and no early
  exit, so timing tells nothing about which bytes matched. Tokens never appear in a log line
  or an error sentence.
- Health (grpc.health.v1, ``/healthz``, ``/readyz``) is open: probes carry no token.
- With ``--token-file`` alone, LoadModel takes any valid token (a warning is logged at
  start); with ``--admin-token-file`` alone, only LoadModel needs a token.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import grpc
from aiohttp import web

from tritone_server.errors import PermissionDenied, Unauthenticated
from tritone_server.frontends.status import grpc_code
from tritone_server.settings import Settings

log = logging.getLogger("tritone_server.frontends.auth")

__all__ = [
    "ADMIN_METHODS",
    "AuthInterceptor",
    "Authenticator",
    "PermissionDenied",
    "TokenFile",
    "Unauthenticated",
    "http_auth_middleware",
]

ADMIN_METHODS = frozenset({"/tritone.v1.AudioClassification/LoadModel"})
"""gRPC methods that need an admin token when ``--admin-token-file`` is set."""
OPEN_GRPC_PREFIXES = ("/grpc.health.v1.Health/",)
OPEN_HTTP_PATHS = frozenset({"/healthz", "/readyz"})
RECHECK_S = 1.0
"""How often, at most, a token file's stat is compared with the one last read."""


def read_tokens(path: Path) -> tuple[bytes, ...]:
    """The tokens in a file, one a line; ValueError if it holds none."""
    tokens = []
    for line in path.read_text(encoding="utf-8").splitlines():
        token = line.strip()
        if token and not token.startswith("#"):
            if any(c.isspace() for c in token):
                raise ValueError(f"{path}: a token may not contain spaces")
            tokens.append(token.encode("utf-8"))
    if not tokens:
        raise ValueError(f"{path} holds no token: nobody could call the gateway")
    return tuple(tokens)


class TokenFile:
    """The tokens of one file, re-read when its stat changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._signature = self._stat()
        self._tokens = read_tokens(path)
        self._checked = time.monotonic()

    def _stat(self) -> tuple[int, int, int, int]:
        st = os.stat(self.path)
        return (st.st_ino, st.st_dev, st.st_mtime_ns, st.st_size)

    def refresh(self, *, force: bool = False) -> bool:
        """Re-read if the file changed (or if ``force``); never raises."""
        self._checked = time.monotonic()
        try:
            signature = self._stat()
            if not force and signature == self._signature:
                return False
            tokens = read_tokens(self.path)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            log.error("event=token_reload_failed file=%s error=%r", self.path, exc)
            return False
        with self._lock:
            changed = tokens != self._tokens
            self._signature, self._tokens = signature, tokens
        if changed:
            log.info("event=tokens_reloaded file=%s count=%d", self.path, len(tokens))
        return changed

    def matches(self, token: bytes) -> bool:
        """Whether ``token`` is one of the file's, compared in constant time."""
        if time.monotonic() - self._checked >= RECHECK_S:
            self.refresh()
        with self._lock:
            tokens = self._tokens
        found = False
        for candidate in tokens:
            found |= hmac.compare_digest(candidate, token)
        return found


def bearer_token(authorization: str | None) -> bytes | None:
    """The token of an ``authorization: Bearer <token>`` value, or None."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token.encode("utf-8")


class Authenticator:
    """Decides, from the authorization header alone, whether a call may go on."""

    def __init__(self, token_file: Path | None = None, admin_token_file: Path | None = None):
        self.users = TokenFile(token_file) if token_file is not None else None
        self.admins = TokenFile(admin_token_file) if admin_token_file is not None else None
        if self.users is not None and self.admins is None:
            log.warning(
                "event=auth_no_admin_tokens message=%s",
                "LoadModel takes any valid token; set --admin-token-file to restrict it",
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> Authenticator:
        return cls(settings.token_file, settings.admin_token_file)

    @property
    def enabled(self) -> bool:
        return self.users is not None or self.admins is not None

    def refresh(self, *, force: bool = False) -> None:
        for tokens in (self.users, self.admins):
            if tokens is not None:
                tokens.refresh(force=force)

    def check(self, authorization: str | None, *, admin: bool) -> None:
        """Raise `Unauthenticated` or `PermissionDenied` unless the call may go on."""
        needs_admin = admin and self.admins is not None
        if self.users is None and not needs_admin:
            return
        token = bearer_token(authorization)
        if token is None:
            what = "an admin" if needs_admin else "a"
            raise Unauthenticated(
                f"this call needs {what} bearer token: send 'authorization: Bearer <token>'"
            )
        is_admin = self.admins is not None and self.admins.matches(token)
        if needs_admin:
            if is_admin:
                return
            if self.users is not None and self.users.matches(token):
                raise PermissionDenied(
                    "LoadModel needs an admin token; this token may classify but not load models"
                )
            raise Unauthenticated("the bearer token is not valid")
        if is_admin or (self.users is not None and self.users.matches(token)):
            return
        raise Unauthenticated("the bearer token is not valid")


def _metadata_value(metadata: Iterable[Any] | None, key: str) -> str | None:
    for item in metadata or ():
        name, value = item
        if name == key:
            return value if isinstance(value, str) else None
    return None


def _refusing_handler(
    handler: grpc.RpcMethodHandler, code: grpc.StatusCode, details: str
) -> grpc.RpcMethodHandler:
    """A handler that aborts before reading the request at all.

    It is always a request-streaming one, whatever the method: gRPC reads a unary method's
    whole message (up to ``max_message_bytes``) before calling its handler, so a refusal of
    the same kind would still hold every byte a caller without a token sent (measured: a
    64 MiB Classify raised the gateway's peak RSS by 192 MiB). A streaming handler is called
    as the call starts; it answers and gRPC resets the stream, so the caller's body stops
    at HTTP/2 flow control (benchmarks/unauthenticated_memory.py).
    """

    async def unary_response(requests: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(code, details)

    async def streamed_response(requests: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(code, details)
        yield None  # never reached: makes this an async generator, as the wrappers expect

    serializer = handler.response_serializer
    if handler.unary_unary is not None or handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(unary_response, None, serializer)
    return grpc.stream_stream_rpc_method_handler(streamed_response, None, serializer)


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Refuses calls without a valid token before their request is parsed.

    Put it last (innermost) in the server's interceptors, so refused calls are still logged
    and counted by the outer ones.
    """

    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(OPEN_GRPC_PREFIXES):
            return handler
        authorization = _metadata_value(handler_call_details.invocation_metadata, "authorization")
        try:
            self.authenticator.check(authorization, admin=method in ADMIN_METHODS)
        except (Unauthenticated, PermissionDenied) as exc:
            return _refusing_handler(handler, grpc_code(exc), str(exc))
        return handler


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def http_auth_middleware(authenticator: Authenticator) -> Any:
    """aiohttp middleware: every route but health needs a token, checked before the body.

    It raises the domain errors, so the HTTP error middleware outside it answers with its
    usual JSON (401 for UNAUTHENTICATED) and counts the call.
    """

    @web.middleware
    async def check_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in OPEN_HTTP_PATHS:
            authenticator.check(request.headers.get("Authorization"), admin=False)
        return await handler(request)

    return check_token
