"""Cross-cutting concerns of the gRPC side, each one interceptor.

Every interceptor here wraps the handler's behaviour in one async context manager, for unary
and streaming methods alike (``_wrap``), so adding one (auth, metrics) is writing one
``around`` method.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from tritone_server.frontends.status import internal_error, status_for
from tritone_server.metrics import Metrics, current_model

log = logging.getLogger("tritone_server.access")

Around = Callable[[str, grpc.aio.ServicerContext], contextlib.AbstractAsyncContextManager[None]]


def _wrap(handler: grpc.RpcMethodHandler, method: str, around: Around) -> grpc.RpcMethodHandler:
    """``handler`` run inside ``around``. When ``handler`` is itself one of these wrappers,
    the result wraps its inner handler in both contexts at once: a stream's every reply then
    passes through one generator layer, not one per interceptor."""
    if handler.unary_unary is not None:
        inner, arounds = _unwrapped(handler.unary_unary, around)

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            async with _nested(arounds, method, context):
                return await inner(request, context)

        _mark(unary, inner, arounds)
        return grpc.unary_unary_rpc_method_handler(
            unary, handler.request_deserializer, handler.response_serializer
        )
    if handler.stream_stream is not None:
        inner_stream, stream_arounds = _unwrapped(handler.stream_stream, around)

        async def streaming(requests: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            async with _nested(stream_arounds, method, context):
                async for reply in inner_stream(requests, context):
                    yield reply

        _mark(streaming, inner_stream, stream_arounds)
        return grpc.stream_stream_rpc_method_handler(
            streaming, handler.request_deserializer, handler.response_serializer
        )
    if handler.stream_unary is not None:  # the auth refusal of a unary method (auth.py)
        inner_su, su_arounds = _unwrapped(handler.stream_unary, around)

        async def stream_unary(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            async with _nested(su_arounds, method, context):
                return await inner_su(requests, context)

        _mark(stream_unary, inner_su, su_arounds)
        return grpc.stream_unary_rpc_method_handler(
            stream_unary, handler.request_deserializer, handler.response_serializer
        )
    return handler  # unary-stream: none in our service


@contextlib.asynccontextmanager
async def _nested(
    arounds: tuple[Around, ...], method: str, context: grpc.aio.ServicerContext
) -> AsyncIterator[None]:
    """Any number of contexts, outermost first (an AsyncExitStack)."""
    async with contextlib.AsyncExitStack() as stack:
        for enter in arounds:
            await stack.enter_async_context(enter(method, context))
        yield


def _unwrapped(function: Any, around: Around) -> tuple[Any, tuple[Around, ...]]:
    """The handler function under our wrappers, and every context to enter, outermost first."""
    inner = getattr(function, "_tritone_inner", None)
    if inner is None:
        return function, (around,)
    return inner, (around, *function._tritone_arounds)


def _mark(wrapper: Any, inner: Any, arounds: tuple[Around, ...]) -> None:
    wrapper._tritone_inner = inner
    wrapper._tritone_arounds = arounds


class _Interceptor(grpc.aio.ServerInterceptor):
    # Wrapped handlers, built once per method handler rather than once per call.
    _wrapped: dict[tuple[str, int], tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]]

    def around(
        self, method: str, context: grpc.aio.ServicerContext
    ) -> contextlib.AbstractAsyncContextManager[None]:
        raise NotImplementedError

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not method.startswith("/tritone."):
            return handler
        cache = self.__dict__.setdefault("_wrapped", {})
        hit = cache.get((method, id(handler)))
        if hit is not None and hit[0] is handler:
            return hit[1]
        wrapped = _wrap(handler, method, self.around)
        cache[(method, id(handler))] = (handler, wrapped)
        return wrapped


class ErrorInterceptor(_Interceptor):
    """Domain errors become status codes here and nowhere else.

    Unknown exceptions become INTERNAL with the traceback logged and a generic sentence
    (with an error id to find the log line) sent to the caller.
    """

    @contextlib.asynccontextmanager
    async def around(self, method: str, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        try:
            yield
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            known = status_for(exc)
            if known is not None:
                await context.abort(*known)
            await context.abort(grpc.StatusCode.INTERNAL, internal_error(method, exc))


def _outcome(context: grpc.aio.ServicerContext, exc: BaseException | None) -> str:
    """The status name an RPC ended with, as the caller sees it."""
    if exc is None:
        return "OK"
    if isinstance(exc, asyncio.CancelledError):
        return "CANCELLED"
    code = context.code()
    return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"


class AccessLogInterceptor(_Interceptor):
    """One structured log line per RPC: method, model, status, duration, request id."""

    @contextlib.asynccontextmanager
    async def around(self, method: str, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            yield
        except BaseException as exc:
            error = exc
            raise
        finally:
            # The request id (a uuid when the caller sent none) is made only for a line
            # that is written: with INFO off an RPC costs no metadata copy and no urandom.
            if log.isEnabledFor(logging.INFO):
                metadata = dict(context.invocation_metadata() or ())
                log.info(
                    "event=rpc method=%s model=%s code=%s duration_ms=%.1f request_id=%s",
                    method,
                    current_model.get() or "-",
                    _outcome(context, error),
                    (time.perf_counter() - started) * 1000,
                    str(metadata.get("x-request-id") or uuid.uuid4().hex[:16]),
                )


class MetricsInterceptor(_Interceptor):
    """Counts every RPC by method, model and status, and times it."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    @contextlib.asynccontextmanager
    async def around(self, method: str, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        started = time.perf_counter()
        error: BaseException | None = None
        token = current_model.set("")
        try:
            yield
        except BaseException as exc:
            error = exc
            raise
        finally:
            self.metrics.record_request(
                method.rsplit("/", 1)[-1],
                current_model.get(),
                _outcome(context, error),
                time.perf_counter() - started,
            )
            current_model.reset(token)
