"""REST front of the Open API, as the seed's envoy transcoder maps it:
POST /v1/recognize/{sourceLanguage} and POST /v1/punctuate/{language}, JSON only (406 otherwise),
CORS preflight answered. The methods are app/protocols/ekstep/speech.py's, shared with gRPC."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from google.protobuf import json_format

from app.core.errors import InvalidArgument
from app.protocols.bodies import json_body
from app.protocols.ekstep.errors import ContentTypeRefused, render_error
from app.protocols.ekstep.messages import SpeechRecognitionRequest
from app.protocols.ekstep.schemas import PunctuateBody, RecognizeBody
from app.protocols.ekstep.speech import OpenSpeech, known_language, recogniser_language
from app.protocols.shared import parse_wire, read_json
from app.state import settings_of
from app.web import bearer_or_bare, error_route, json_off_loop, require_api_key, until_disconnect

ENUMS = {"transcriptionFormat": ("transcript", "srt", "alternatives"), "audioFormat": ("wav", "pcm", "mp3", "flac")}
REFUSALS = {
    "transcriptionFormat": "Transcription Format not implemented yet",
    "audioFormat": "Audio Format not implemented yet",
}
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "content-type, authorization, x-api-key",
    "Access-Control-Max-Age": "86400",
}


def api_key(request: Request) -> str | None:
    """`Authorization: Bearer <key>`, the seed's bare `authorization: <key>`, or `x-api-key`."""
    return bearer_or_bare(request.headers.get("authorization", "")) or request.headers.get("x-api-key")


router = APIRouter(route_class=error_route(render_error), tags=["open-speech"], dependencies=[require_api_key(api_key)])
preflight = APIRouter(tags=["open-speech"])


def _json_only(request: Request) -> None:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise ContentTypeRefused("Given Content-type is not allowed", param="content-type")


def recognize_message(body: dict[str, Any], code: str) -> tuple[Any, list[str]]:
    """The JSON body as a SpeechRecognitionRequest (the path's language in it), and AI4Bharat's
    config.postProcessors, which the proto lacks."""
    config = body.get("config", {})
    if not isinstance(config, dict):
        raise InvalidArgument("Invalid input value! 'config' must be an object", param="config")
    config = dict(config)
    post = config.pop("postProcessors", None) or []
    if not isinstance(post, list) or not all(isinstance(p, str) for p in post):
        raise InvalidArgument("Invalid input value! 'postProcessors' must be a list of names", param="postProcessors")
    text_format = config.get("transcriptionFormat")
    if isinstance(text_format, str):  # a bare name, as some clients send it
        text_format = config["transcriptionFormat"] = {"value": text_format}
    given = {
        "transcriptionFormat": text_format.get("value") if isinstance(text_format, dict) else None,
        "audioFormat": config.get("audioFormat"),
    }
    for field, value in given.items():
        if value is not None and value not in ENUMS[field]:
            raise InvalidArgument(REFUSALS[field], param=field)
    language = config.get("language")
    config["language"] = {**(language if isinstance(language, dict) else {}), "sourceLanguage": code}
    try:
        message = json_format.ParseDict(
            {**body, "config": config}, SpeechRecognitionRequest(), ignore_unknown_fields=True
        )
    except json_format.ParseError as exc:
        raise InvalidArgument(f"Invalid input value! {str(exc)[:300]}") from None  # it may quote the value
    return message, post


async def recognize(request: Request, sourceLanguage: str) -> Response:
    code = known_language(sourceLanguage)
    speech = OpenSpeech(request.app.state)
    recogniser_language(code, speech.multilingual())  # the seed checks the language before the body
    _json_only(request)
    body = await read_json(request, settings_of(request).openspeech_max_request_bytes)
    message, post = await asyncio.to_thread(recognize_message, body, code)
    outputs = await until_disconnect(request, speech.recognize(message, post))
    response = await json_off_loop(lambda: {"status": "SUCCESS", "output": [{"source": text} for text in outputs]})
    response.headers["Access-Control-Allow-Origin"] = "*"  # the seed's browser SDK calls from its page
    return response


async def punctuate(request: Request, language: str) -> Response:
    _json_only(request)
    body = await read_json(request, settings_of(request).openspeech_max_request_bytes)
    wire = parse_wire(PunctuateBody, body, message="Invalid input value! {}: {}".format)
    answer = await until_disconnect(request, OpenSpeech(request.app.state).punctuate(wire.text, language, wire.itn))
    response = await json_off_loop(lambda: {"text": answer, "language": language})
    response.headers["Access-Control-Allow-Origin"] = "*"
    # The body is the seed's; this says whether marks were restored or the text came back as given.
    has_model = request.app.state.punctuation.has_model(language)
    response.headers["X-Punctuation-Model"] = language if has_model else "none"
    return response


async def options(request: Request) -> Response:
    return Response(status_code=200, headers=CORS)


router.add_api_route(
    "/v1/recognize/{sourceLanguage}",
    recognize,
    methods=["POST"],
    summary="Recognise speech (Open API / EkStep)",
    openapi_extra=json_body(RecognizeBody),
)
router.add_api_route(
    "/v1/punctuate/{language}",
    punctuate,
    methods=["POST"],
    summary="Punctuate and case text (Open API / EkStep)",
    openapi_extra=json_body(PunctuateBody),
)
for _path in ("/v1/recognize/{sourceLanguage}", "/v1/punctuate/{language}"):
    preflight.add_api_route(_path, options, methods=["OPTIONS"], include_in_schema=False)
