"""What every WebSocket front (OpenAI/NIM realtime, Mod9) shares: the key, the session slots and
the refusal, each in the protocol's own words.

A refusal (bad key, no room, not ready) is raised as `Refused` from a router-level dependency or
the endpoint; the app's handler (`install`) accepts the socket, sends the protocol's error message
and closes with the code: 1008 for the key, 1013 (try again later) for capacity.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI, WebSocket
from starlette.websockets import WebSocketDisconnect

from app.core.errors import SttError, Unauthenticated, Unavailable
from app.core.ratelimit import RateLimited
from app.state import live_slot
from app.web import bearer, check_api_key

TOKEN_PREFIX = "realtime-token."
BROWSER_KEY_PREFIX = "openai-insecure-api-key."
Render = Callable[[SttError], dict[str, Any]]
GONE = (WebSocketDisconnect, RuntimeError, OSError)
"""What sending to a client that has left raises (Starlette's, the ASGI server's)."""


class Refused(Exception):
    def __init__(self, error: SttError, code: int, render: Render) -> None:
        super().__init__(error.message)
        self.error, self.code, self.render = error, code, render


def subprotocols(websocket: WebSocket) -> list[str]:
    header = websocket.headers.get("sec-websocket-protocol", "")
    return [p.strip() for p in header.split(",") if p.strip()]


def echo(websocket: WebSocket) -> str | None:
    """The subprotocol to answer with: `realtime` when offered (NIM and browser clients offer it
    beside their key, which is never echoed)."""
    return "realtime" if "realtime" in subprotocols(websocket) else None


def minted(app: Any) -> dict[str, float]:
    """Short-lived secrets minted for clients (NIM's client_secret), with their expiry."""
    tokens: dict[str, float] = app.state.websocket_tokens
    now = time.monotonic()
    for token in [t for t, until in tokens.items() if until < now]:
        del tokens[token]
    return tokens


def key_guard(render: Render) -> Callable[[WebSocket], Any]:
    """A router-level dependency: the Bearer header, X-API-Key, `?api_key=`, the browser subprotocol
    `openai-insecure-api-key.<key>`, or a minted `realtime-token.<secret>`."""

    async def authorize(websocket: WebSocket) -> None:
        settings = websocket.app.state.settings
        if not settings.api_keys:
            return
        offered = subprotocols(websocket)
        if any(p.startswith(TOKEN_PREFIX) and p[len(TOKEN_PREFIX) :] in minted(websocket.app) for p in offered):
            return
        browser = next((p[len(BROWSER_KEY_PREFIX) :] for p in offered if p.startswith(BROWSER_KEY_PREFIX)), None)
        token = bearer(websocket.headers.get("authorization", ""))
        presented = token or websocket.headers.get("x-api-key") or websocket.query_params.get("api_key") or browser
        try:
            check_api_key(presented, settings.api_keys)
        except Unauthenticated as exc:
            raise Refused(exc, 1008, render) from None
        try:
            await websocket.app.state.rate_limiter.check(presented or "")
        except RateLimited as exc:
            raise Refused(exc, 1013, render) from None

    return authorize


@contextlib.asynccontextmanager
async def session_slot(websocket: WebSocket, render: Render) -> AsyncIterator[Any]:
    """One of `realtime_max_sessions` live sessions, and the ready speech service; Refused if none."""
    async with contextlib.AsyncExitStack() as stack:
        try:
            service = await stack.enter_async_context(live_slot(websocket.app.state))
        except Unavailable as exc:
            raise Refused(exc, 1013, render) from None
        yield service


def install(app: FastAPI) -> None:
    app.state.live_sessions = 0
    app.state.websocket_tokens = {}

    async def refuse(websocket: WebSocket, exc: Exception) -> None:
        assert isinstance(exc, Refused)
        await websocket.accept(subprotocol=echo(websocket))
        await websocket.send_json(exc.render(exc.error))
        await websocket.close(exc.code, exc.error.message[:120])

    app.add_exception_handler(Refused, refuse)
