"""GET /v1/realtime (WebSocket) and POST /v1/realtime/transcription_sessions.

The server speaks first, before the client has said which dialect it speaks, so the first event
is chosen from the handshake:
- an `OpenAI-Beta: realtime=...` header: OpenAI beta, `transcription_session.created`;
- a `model` query parameter or the openai SDK's User-Agent: OpenAI GA, `session.created`;
- anything else (the NIM client sends neither): NVIDIA NIM, `conversation.created`.
The client's first update may still move a session between OpenAI beta and NIM (NIM's update has
`input_audio_params` or `recognition_config`).

The key is checked by a router-level dependency: the Bearer header, X-API-Key, `?api_key=`, the
browser subprotocol `openai-insecure-api-key.<key>`, or NIM's `realtime-token.<secret>` minted by
POST /v1/realtime/transcription_sessions. A refusal (bad key, no room, not ready) is an error
event then a close: 1008 for the key, 1013 (try again later) for capacity.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse

from app.core.errors import SttError, Unauthenticated, Unavailable
from app.protocols.openai.errors import render_error
from app.protocols.realtime.config import Dialect, RealtimeConfig
from app.protocols.realtime.connection import RealtimeConnection
from app.protocols.realtime.events import error_event
from app.state import metrics_of, settings_of
from app.web import bearer_token, check_api_key, error_route, require_api_key

TOKEN_PREFIX = "realtime-token."
BROWSER_KEY_PREFIX = "openai-insecure-api-key."
TOKEN_SECONDS = 60.0


class Refused(Exception):
    """A WebSocket turned away: answered with an error event and a close (see `install`)."""

    def __init__(self, error: SttError, code: int) -> None:
        super().__init__(error.message)
        self.error, self.code = error, code


def _subprotocols(websocket: WebSocket) -> list[str]:
    header = websocket.headers.get("sec-websocket-protocol", "")
    return [p.strip() for p in header.split(",") if p.strip()]


def _tokens(app: Any) -> dict[str, float]:
    tokens: dict[str, float] = app.state.realtime_tokens
    now = time.monotonic()
    for token in [t for t, until in tokens.items() if until < now]:
        del tokens[token]
    return tokens


async def authorize(websocket: WebSocket) -> None:
    settings = websocket.app.state.settings
    if not settings.api_keys:
        return
    for protocol in _subprotocols(websocket):
        if protocol.startswith(TOKEN_PREFIX) and protocol[len(TOKEN_PREFIX) :] in _tokens(websocket.app):
            return
    offered = next(
        (p[len(BROWSER_KEY_PREFIX) :] for p in _subprotocols(websocket) if p.startswith(BROWSER_KEY_PREFIX)), None
    )
    header = websocket.headers.get("authorization", "")
    bearer = header[7:].strip() if header.lower().startswith("bearer ") else None
    presented = bearer or websocket.headers.get("x-api-key") or websocket.query_params.get("api_key") or offered
    try:
        check_api_key(presented, settings.api_keys)
    except Unauthenticated as exc:
        raise Refused(exc, 1008) from None


router = APIRouter(tags=["realtime"], dependencies=[Depends(authorize)])
sessions = APIRouter(
    tags=["realtime"], route_class=error_route(render_error), dependencies=[require_api_key(bearer_token)]
)


def dialect_of(websocket: WebSocket) -> Dialect:
    if websocket.headers.get("openai-beta", "").startswith("realtime"):
        return Dialect.BETA
    if "model" in websocket.query_params or websocket.headers.get("user-agent", "").lower().startswith("openai"):
        return Dialect.GA
    return Dialect.NIM


@contextlib.asynccontextmanager
async def _slot(websocket: WebSocket) -> AsyncIterator[None]:
    state = websocket.app.state
    limit = state.settings.realtime_max_sessions
    if state.live_sessions >= limit:
        raise Refused(Unavailable(f"{limit} live sessions are open, the most this server takes"), 1013)
    state.live_sessions += 1
    metrics_of(websocket).live_sessions.set(state.live_sessions)
    try:
        yield
    finally:
        state.live_sessions -= 1
        metrics_of(websocket).live_sessions.set(state.live_sessions)


@router.websocket("/v1/realtime")
async def realtime(websocket: WebSocket) -> None:
    service = websocket.app.state.service
    if service is None or not service.pool.ready or websocket.app.state.draining:
        raise Refused(Unavailable("The server is not ready; retry shortly."), 1013)
    query = websocket.query_params
    config = RealtimeConfig.initial(dialect_of(websocket), query.get("model"), query.get("language"))
    async with _slot(websocket):
        await websocket.accept(subprotocol=_echo(websocket))
        connection = RealtimeConnection(websocket, config, service, settings_of(websocket), metrics_of(websocket))
        await connection.run()


def _echo(websocket: WebSocket) -> str | None:
    """The subprotocol to answer with: `realtime` when offered (the NIM and browser clients offer
    it beside their key, which is never echoed)."""
    offered = _subprotocols(websocket)
    return "realtime" if "realtime" in offered else None


@sessions.post(
    "/v1/realtime/transcription_sessions", summary="Create a realtime transcription session (NIM, OpenAI beta)"
)
async def create_session(request: Request) -> JSONResponse:
    body = await request.body()
    config = RealtimeConfig.initial(Dialect.NIM, None, None)
    session = config.session_object()
    session["input_audio_transcription"]["language"] = "en-US"
    if settings_of(request).api_keys:
        token = secrets.token_urlsafe(24)
        _tokens(request.app)[token] = time.monotonic() + TOKEN_SECONDS
        session["client_secret"] = {"value": token, "expires_at": int(time.time() + TOKEN_SECONDS)}
    del body
    return JSONResponse(session)


def install(app: FastAPI) -> None:
    app.state.live_sessions = 0
    app.state.realtime_tokens = {}

    async def refuse(websocket: WebSocket, exc: Exception) -> None:
        assert isinstance(exc, Refused)
        await websocket.accept(subprotocol=_echo(websocket))
        await websocket.send_json(error_event(exc.error))
        await websocket.close(exc.code, exc.error.message[:120])

    app.add_exception_handler(Refused, refuse)
    app.include_router(router)
    app.include_router(sessions)
