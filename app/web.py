"""HTTP plumbing every protocol adapter shares: byte caps while reading, cancel-on-disconnect,
API-key checks and the per-adapter error route."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import Message

from app.core.errors import Cancelled, InvalidArgument, PayloadTooLarge, SttError, Unauthenticated

T = TypeVar("T")
# Bytes of an oversized body read and thrown away so the client sees our 413 instead of a reset.
DRAIN_LIMIT = 64 * 1024 * 1024
DRAIN_SECONDS = 2.0
NOT_REJECTIONS = frozenset({"internal", "cancelled"})


def limit_body(request: Request, limit: int) -> Request:
    """A view of `request` whose body stops with PayloadTooLarge past `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        # At once, without reading the body: a client that declares 1 GB and sends 2 bytes gets its
        # answer now, and the connection is closed after it.
        raise PayloadTooLarge(limit, int(declared))
    seen = 0

    async def receive() -> Message:
        nonlocal seen
        message = await request.receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                await _drain(request, message)
                raise PayloadTooLarge(limit, seen)
        return message

    return Request(request.scope, receive)


async def _drain(request: Request, last: Message) -> None:
    drained = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DRAIN_SECONDS):
            while last.get("more_body") and drained < DRAIN_LIMIT:
                last = await request.receive()
                drained += len(last.get("body", b""))


SPOOL_WRITE = 1 << 20


@contextlib.asynccontextmanager
async def spooled(chunks: AsyncIterator[bytes], folder: Path) -> AsyncIterator[str]:
    """A body written to a temp file as it arrives (memory stays bounded whatever its size); the
    file's path for the time of the block, deleted after."""
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    fd, name = await asyncio.to_thread(tempfile.mkstemp, dir=folder, prefix="upload-")
    try:
        with os.fdopen(fd, "wb") as sink:
            pending = bytearray()
            async for chunk in chunks:
                pending += chunk
                if len(pending) >= SPOOL_WRITE:
                    await asyncio.to_thread(sink.write, bytes(pending))
                    pending.clear()
            await asyncio.to_thread(sink.write, bytes(pending))
        yield name
    finally:
        with contextlib.suppress(OSError):
            await asyncio.to_thread(os.unlink, name)


async def until_disconnect(request: Request, work: Coroutine[Any, Any, T]) -> T:
    """Run `work` until it ends or the client disconnects (the body must be read already).

    The race goes both ways and the loser is always awaited: a disconnect cancels the work, and a
    cancelled caller (server shutdown, an outer timeout, a failing sibling task) cancels it too."""
    task = asyncio.ensure_future(work)

    async def watch() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(watch())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        await _cancel_all(task, watcher)
        raise
    await _cancel_all(watcher)
    if task.done():
        return task.result()
    await _cancel_all(task)
    raise Cancelled("the client disconnected")


async def _cancel_all(*tasks: asyncio.Future[Any]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def json_off_loop(build: Callable[[], Any]) -> Response:
    """A JSON body that can take long to build or encode (a page of long transcripts), made in a
    thread so the event loop keeps serving; encoded as FastAPI's JSONResponse would."""

    def render() -> bytes:
        return json.dumps(build(), ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()

    return Response(await asyncio.to_thread(render), media_type="application/json")


def check_api_key(presented: str | None, keys: list[str]) -> None:
    if not keys:
        return
    given = (presented or "").encode()
    if not any(hmac.compare_digest(given, key.encode()) for key in keys):
        raise Unauthenticated("Missing API key" if not presented else "Incorrect API key provided")


KeyExtractor = Callable[[Request], str | None]


def require_api_key(extract: KeyExtractor, *, always: bool = False) -> Any:
    """A router-level dependency: every route of the router checks the key `extract` finds.
    `always`: the protocol makes the key a required parameter even when the server has no keys."""

    async def guard(request: Request) -> None:
        presented = extract(request)
        if always and not presented:
            raise Unauthenticated("the key parameter is required")
        check_api_key(presented, request.app.state.settings.api_keys)
        if presented and request.app.state.settings.api_keys:
            await request.app.state.rate_limiter.check(presented)

    return Depends(guard)


def bearer_token(request: Request) -> str | None:
    return bearer(request.headers.get("authorization", ""))


def bearer_or_bare(authorization: str) -> str | None:
    """`Bearer <key>`, or a bare `<key>` with no scheme (the Open API seed's clients send that)."""
    value = authorization.strip()
    return bearer(value) or (value if value and " " not in value else None)


def bearer(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` value (HTTP, WebSocket and gRPC metadata)."""
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


ErrorRenderer = Callable[[SttError], Response]


def error_route(render: ErrorRenderer) -> type[APIRoute]:
    """An APIRoute class that renders every failure in one protocol's envelope (never {"detail"})."""

    class ProtocolRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def handle(request: Request) -> Response:
                try:
                    return await handler(request)
                except SttError as exc:
                    error = exc
                except (RequestValidationError, HTTPException) as exc:
                    error = InvalidArgument(_describe(exc))
                except ClientDisconnect:
                    error = Cancelled("the client disconnected while sending the request")
                if error.kind not in NOT_REJECTIONS:
                    request.app.state.metrics.rejected(error.kind)
                return render(error)

            return handle

    return ProtocolRoute


def _describe(exc: Exception) -> str:
    if isinstance(exc, RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query"))
        return f"{where}: {first.get('msg', 'invalid value')}" if where else str(first.get("msg", exc))
    return str(getattr(exc, "detail", exc))
