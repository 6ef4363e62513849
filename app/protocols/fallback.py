"""Answers for what no route handles (unknown path, wrong method, an unexpected exception), in the
envelope of the protocol the path belongs to: a Yandex client always gets XML, a Prosa client its
own error body, a Google client google.rpc JSON, everyone else OpenAI's."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, Response
from starlette.exceptions import HTTPException

from app.core.errors import Internal, MethodNotAllowed, NotFound, SttError
from app.protocols.ekstep.errors import render_error as ekstep_error
from app.protocols.google.errors import render_error as google_error
from app.protocols.openai.errors import render_error as openai_error
from app.protocols.prosa.errors import render_error as prosa_error
from app.protocols.yandex.router import render_error as yandex_error
from app.web import ErrorRenderer

log = logging.getLogger("asr")
GOOGLE_PREFIXES = ("/v1/speech", "/v1/operations", "/v1p1beta1/", "/speech", "/operations")
OPEN_SPEECH_PREFIXES = ("/v1/recognize", "/v1/punctuate")


def renderer_for(path: str) -> ErrorRenderer:
    if path.startswith("/asr_xml"):
        return yandex_error
    if path.startswith("/v2/speech"):
        return prosa_error
    if path.startswith(GOOGLE_PREFIXES):
        return google_error
    if path.startswith(OPEN_SPEECH_PREFIXES):
        return ekstep_error
    return openai_error


def install(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def unmatched(request: Request, exc: HTTPException) -> Response:
        path = request.url.path
        error: SttError
        if exc.status_code == 405:
            allow = (exc.headers or {}).get("Allow", "")
            error = MethodNotAllowed(f"{request.method} is not allowed on {path}", allow=allow)
        elif exc.status_code == 404:
            error = NotFound(f"No route {request.method} {path} on this server", param="path")
        else:
            error = SttError(str(exc.detail))
            response = renderer_for(path)(error)
            response.status_code = exc.status_code
            return response
        return renderer_for(path)(error)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path)
        return renderer_for(request.url.path)(Internal(f"internal error: {type(exc).__name__}"))
