"""speech:recognize, speech:longrunningrecognize and operations, under /v1, /v1p1beta1 and Mod9's bare paths.

The methods themselves are app/protocols/google/speech.py's (shared with the gRPC servicer); this
router reads the JSON, runs them against the client's disconnect and encodes the answer."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response

from app.protocols.bodies import json_body
from app.protocols.google.errors import render_error
from app.protocols.google.shapes import RecognizeRequest
from app.protocols.google.speech import GoogleSpeech
from app.protocols.shared import read_json
from app.state import settings_of
from app.web import bearer_token, error_route, json_off_loop, require_api_key, until_disconnect

PREFIXES = {"/v1": "v1", "/v1p1beta1": "v1p1beta1", "": "v1p1beta1"}  # Mod9 answers v1p1beta1 types


def _key(request: Request) -> str | None:
    return request.query_params.get("key") or request.headers.get("x-goog-api-key") or bearer_token(request)


router = APIRouter(route_class=error_route(render_error), tags=["google"], dependencies=[require_api_key(_key)])


def _speech(request: Request, prefix: str) -> GoogleSpeech:
    return GoogleSpeech(request.app.state, PREFIXES[prefix], bare=not prefix)


async def _body(request: Request) -> dict[str, Any]:
    return await read_json(request, settings_of(request).google_max_request_bytes)


async def recognize(request: Request, prefix: str) -> Response:
    body = await _body(request)
    answer = await _speech(request, prefix).recognize(body, lambda work: until_disconnect(request, work))
    return await json_off_loop(lambda: answer)


async def long_running(request: Request, prefix: str) -> Response:
    body = await _body(request)
    answer = await _speech(request, prefix).long_running(body)
    return await json_off_loop(lambda: answer)


async def get_operation(request: Request, name: str) -> Response:
    answer = await GoogleSpeech(request.app.state, "v1").get_operation(name)
    return await json_off_loop(lambda: answer)


async def list_operations(request: Request) -> Response:
    size = request.query_params.get("pageSize") or "50"
    token = request.query_params.get("pageToken") or None
    speech = GoogleSpeech(request.app.state, "v1")
    answer = await speech.list_operations(int(size) if size.isdigit() and len(size) < 6 else 0, token)
    return await json_off_loop(lambda: answer)


def _bind(
    handler: Callable[[Request, str], Coroutine[Any, Any, Response]], prefix: str
) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    async def endpoint(request: Request) -> Response:
        return await handler(request, prefix)

    return endpoint


for _prefix in PREFIXES:
    _hidden = _prefix == ""
    _slashes = ("", "/") if _hidden else ("",)
    for _slash in _slashes:
        router.add_api_route(
            f"{_prefix}/speech:recognize{_slash}",
            _bind(recognize, _prefix),
            methods=["POST"],
            include_in_schema=not _hidden and not _slash,
            summary="Synchronous recognition (no 60 s limit)",
            openapi_extra=json_body(RecognizeRequest),
        )
        router.add_api_route(
            f"{_prefix}/speech:longrunningrecognize{_slash}",
            _bind(long_running, _prefix),
            methods=["POST"],
            include_in_schema=not _hidden and not _slash,
            summary="Start a long-running recognition",
            openapi_extra=json_body(RecognizeRequest),
        )
        router.add_api_route(
            f"{_prefix}/operations{_slash}",
            list_operations,
            methods=["GET"],
            include_in_schema=not _hidden and not _slash,
            summary="List operations",
        )
    router.add_api_route(
        f"{_prefix}/operations/{{name:path}}",
        get_operation,
        methods=["GET"],
        include_in_schema=not _hidden,
        summary="Get an operation",
    )
