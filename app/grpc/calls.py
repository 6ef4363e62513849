"""Every RPC of the API services is registered through `service`, so each one gets, without asking:
the API key (from metadata), the key's rate limit, request metrics, and failures ended as a
gRPC status (never an unhandled exception). Health and reflection are registered apart: public.

A client that cancels (or whose deadline passes) cancels the handler's task, and with it the decode
it awaits: the pool drops the window at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import Message

from app.core.errors import Cancelled, Internal, InvalidArgument, SttError, Unavailable
from app.grpc.status import code_of, status_of
from app.web import bearer_or_bare, check_api_key

log = logging.getLogger("asr.grpc")
Context = grpc.aio.ServicerContext[Any, Any]
RESTARTING = "the server is restarting; retry"
Unary = Callable[[Any, Context], Awaitable[Message]]
Streaming = Callable[[AsyncIterator[Any], Context], AsyncIterator[Message]]


@dataclass(frozen=True)
class Method:
    name: str
    handler: Unary | Streaming
    request: type[Message]
    streaming: bool = False
    """Both ways (StreamingRecognize); otherwise unary."""


def api_key(context: Context) -> str | None:
    """`x-goog-api-key` (Google's clients), `authorization: Bearer` (Riva/NIM), `x-api-key`, or the
    Open API seed's bare `authorization: <key>` and `rpc-auth-header`."""
    metadata = {k.lower(): v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
    return (
        metadata.get("x-goog-api-key")
        or bearer_or_bare(metadata.get("authorization", ""))
        or metadata.get("x-api-key")
        or metadata.get("rpc-auth-header")
    )


class Calls:
    """What the wrapped methods share: the app's state (settings, limiter, metrics)."""

    def __init__(self, state: Any) -> None:
        self.state = state
        self.closing = False
        self._open: dict[asyncio.Task[Any], Context] = {}
        self._answered: set[asyncio.Task[Any]] = set()

    async def close(self, wait: float) -> None:
        """Shutdown: every call still open ends now with a retryable UNAVAILABLE (a client would
        otherwise see the transport torn down, INTERNAL or UNAVAILABLE by chance)."""
        self.closing = True
        calls = dict(self._open)
        for task, context in calls.items():
            # The status first: the call's own cleanup (its decodes cancelled and awaited) may take
            # longer than the server's grace, and the server then ends it with "Cancelling all calls".
            self._answered.add(task)
            with contextlib.suppress(grpc.aio.AbortError, grpc.aio.UsageError):
                await context.abort_with_status(status_of(Unavailable(RESTARTING)))
            task.cancel()
        if calls:
            await asyncio.wait(list(calls), timeout=wait)

    async def admit(self, context: Context) -> None:
        keys = self.state.settings.api_keys
        presented = api_key(context)
        check_api_key(presented, keys)
        if presented and keys:
            await self.state.rate_limiter.check(presented)

    def record(self, route: str, started: float, error: SttError | None) -> None:
        metrics = self.state.metrics
        metrics.latency.labels(route).observe(time.perf_counter() - started)
        if error is None:
            metrics.request_success.labels(route).inc()
            return
        metrics.request_failure.labels(route, code_of(error).name).inc()
        if error.kind not in ("internal", "cancelled"):
            metrics.rejected(error.kind)

    @contextlib.asynccontextmanager
    async def handled(self, route: str, context: Context) -> AsyncIterator[None]:
        """Around one call: the key first; then its metrics, and any failure as its status."""
        started = time.perf_counter()
        error: SttError | None = None
        task = asyncio.current_task()
        assert task is not None
        self._open[task] = context
        try:
            if self.closing:
                raise Unavailable(RESTARTING)
            await self.admit(context)
            yield
        except asyncio.CancelledError:
            if self.closing:  # cancelled by close(), not by the client, which answered it
                error = Unavailable(RESTARTING)
                if task not in self._answered:
                    await context.abort_with_status(status_of(error))
            error = Cancelled("the client cancelled the call")  # counted, not answered: the call is gone
            raise
        except Exception as exc:
            error = _as_error(exc)
            await context.abort_with_status(status_of(error))
        finally:
            self._open.pop(task, None)
            self._answered.discard(task)
            self.record(route, started, error)

    def unary(self, route: str, handler: Unary) -> Unary:
        async def behaviour(request: Any, context: Context) -> Message:
            async with self.handled(route, context):
                return await handler(request, context)
            raise AssertionError("unreachable: a failed call is aborted")

        return behaviour

    def streaming(self, route: str, handler: Streaming) -> Streaming:
        async def behaviour(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Message]:
            async with self.handled(route, context):
                async for response in handler(requests, context):
                    yield response

        return behaviour

    def service(self, name: str, methods: list[Method]) -> grpc.GenericRpcHandler:
        handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
        for method in methods:
            route = f"/{name}/{method.name}"
            parse = method.request.FromString
            if method.streaming:
                handlers[method.name] = grpc.stream_stream_rpc_method_handler(
                    self.streaming(route, method.handler),  # type: ignore[arg-type]
                    request_deserializer=parse,
                    response_serializer=_serialize,
                )
            else:
                handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                    self.unary(route, method.handler),  # type: ignore[arg-type]
                    request_deserializer=parse,
                    response_serializer=_serialize,
                )
        return grpc.method_handlers_generic_handler(name, handlers)


async def config_then_audio(requests: AsyncIterator[Any]) -> tuple[Any, AsyncIterator[bytes]] | None:
    """A StreamingRecognize request stream (Google's and Riva's share its shape): the first
    message (its `streaming_config` set), and the `audio_content` of the rest; None if the client sent
    nothing. A config anywhere else is INVALID_ARGUMENT, as Google's "Malordered Data"."""
    incoming = aiter(requests)
    first = await anext(incoming, None)
    if first is None:
        return None
    if not first.HasField("streaming_config"):
        raise InvalidArgument(
            "Malordered Data Received. Expected streaming_config in the first message, then audio_content.",
            param="streaming_config",
        )

    async def audio() -> AsyncIterator[bytes]:
        async for message in incoming:
            if message.HasField("streaming_config"):
                raise InvalidArgument(
                    "Malordered Data Received. streaming_config may only be sent in the first message.",
                    param="streaming_config",
                )
            yield message.audio_content

    return first, audio()


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def _as_error(exc: Exception) -> SttError:
    if isinstance(exc, grpc.aio.AbortError):
        raise exc  # the call is ended already
    if isinstance(exc, SttError):
        return exc
    log.exception("gRPC handler failed")
    return Internal("internal error; see the server log")
