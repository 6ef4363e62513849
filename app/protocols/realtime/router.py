"""GET /v1/realtime (WebSocket) and POST /v1/realtime/transcription_sessions.

The server speaks first, before the client has said which dialect it speaks, so the first event
is chosen from the handshake:
- an `OpenAI-Beta: realtime=...` header: OpenAI beta, `transcription_session.created`;
- a `model` query parameter or the openai SDK's User-Agent: OpenAI GA, `session.created`;
- anything else (the NIM client sends neither): NVIDIA NIM, `conversation.created`.
The client's first update may still move a session between OpenAI beta and NIM (NIM's update has
`input_audio_params` or `recognition_config`).

The key and the session slots are app/protocols/websocket.py's (a refusal is an error event, then
close 1008 or 1013); POST /v1/realtime/transcription_sessions mints the secret NIM's client then
offers as the subprotocol `realtime-token.<secret>`.
"""

from __future__ import annotations

import secrets
import time

from fastapi import APIRouter, Depends, FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse

from app.protocols.openai.errors import render_error
from app.protocols.realtime.config import Dialect, RealtimeConfig
from app.protocols.realtime.connection import RealtimeConnection
from app.protocols.realtime.events import error_event
from app.protocols.websocket import echo, key_guard, minted, session_slot
from app.state import metrics_of, settings_of
from app.web import bearer_token, error_route, require_api_key

TOKEN_SECONDS = 60.0


router = APIRouter(tags=["realtime"], dependencies=[Depends(key_guard(error_event))])
sessions = APIRouter(
    tags=["realtime"], route_class=error_route(render_error), dependencies=[require_api_key(bearer_token)]
)


def dialect_of(websocket: WebSocket) -> Dialect:
    if websocket.headers.get("openai-beta", "").startswith("realtime"):
        return Dialect.BETA
    if "model" in websocket.query_params or websocket.headers.get("user-agent", "").lower().startswith("openai"):
        return Dialect.GA
    return Dialect.NIM


@router.websocket("/v1/realtime")
async def realtime(websocket: WebSocket) -> None:
    query = websocket.query_params
    config = RealtimeConfig.initial(dialect_of(websocket), query.get("model"), query.get("language"))
    async with session_slot(websocket, error_event) as service:
        await websocket.accept(subprotocol=echo(websocket))
        connection = RealtimeConnection(websocket, config, service, settings_of(websocket), metrics_of(websocket))
        await connection.run()


@sessions.post(
    "/v1/realtime/transcription_sessions", summary="Create a realtime transcription session (NIM, OpenAI beta)"
)
async def create_session(request: Request) -> JSONResponse:
    """The default session (the NIM client sends `{}` and then the whole object back over the
    WebSocket, where it is checked); with API keys on, a secret for the WebSocket's subprotocol."""
    config = RealtimeConfig.initial(Dialect.NIM, None, None)
    session = config.session_object()
    session["input_audio_transcription"]["language"] = "en-US"
    if settings_of(request).api_keys:
        token = secrets.token_urlsafe(24)
        minted(request.app)[token] = time.monotonic() + TOKEN_SECONDS
        session["client_secret"] = {"value": token, "expires_at": int(time.time() + TOKEN_SECONDS)}
    return JSONResponse(session)


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.include_router(sessions)
