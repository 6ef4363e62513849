"""speech:recognize, speech:longrunningrecognize and operations, under /v1, /v1p1beta1 and Mod9's bare paths."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request, Response

from app.core.errors import AudioTooLong, InvalidArgument, NotFound
from app.core.fetch import FetchConfig, fetched
from app.core.jobs import JobRecord
from app.core.runner import AudioLoader
from app.core.types import AudioInput, TranscriptionRequest
from app.protocols.bodies import json_body
from app.protocols.google.config import GoogleConfig, audio_format, parse_config, primary_language
from app.protocols.google.errors import render_error
from app.protocols.google.render import new_request_id, operation, recognize_response
from app.protocols.google.shapes import RecognizeRequest
from app.protocols.shared import decode_base64, job_audio_loader, read_json
from app.state import fetch_of, jobs_of, service_of, settings_of
from app.web import bearer_token, error_route, json_off_loop, require_api_key, until_disconnect

GOOGLE_MAX_ALTERNATIVES = 30
PREFIXES = {"/v1": "v1", "/v1p1beta1": "v1p1beta1", "": "v1p1beta1"}  # Mod9 answers v1p1beta1 types


def _key(request: Request) -> str | None:
    return request.query_params.get("key") or request.headers.get("x-goog-api-key") or bearer_token(request)


router = APIRouter(route_class=error_route(render_error), tags=["google"], dependencies=[require_api_key(_key)])


async def _body(request: Request) -> dict[str, Any]:
    settings = settings_of(request)
    return await read_json(request, settings.google_max_request_bytes)


def _config(request: Request, body: dict[str, Any], prefix: str) -> GoogleConfig:
    settings = settings_of(request)
    ceiling = GOOGLE_MAX_ALTERNATIVES if prefix else settings.max_alternatives
    return parse_config(body.get("config"), max_alternatives=ceiling, model_map=settings.google_models)


def _audio_spec(body: dict[str, Any]) -> tuple[str | None, str | None]:
    audio = body.get("audio")
    if not isinstance(audio, dict):
        raise InvalidArgument(
            "Invalid recognition 'audio': an object with 'content' or 'uri' is required.", param="audio"
        )
    content, uri = audio.get("content"), audio.get("uri")
    if (content is None) == (uri is None):
        raise InvalidArgument("RecognitionAudio not set: give exactly one of 'content' or 'uri'.", param="audio")
    return content, uri


def core_request(
    config: GoogleConfig, audio: AudioInput | None, max_seconds: float | None = None
) -> TranscriptionRequest:
    language, candidates = primary_language(config)
    return TranscriptionRequest(
        audio=audio,
        model=config.model,
        language=language,
        language_candidates=candidates,
        word_timestamps=config.word_times,
        word_confidence=config.word_confidence,
        alternatives=config.max_alternatives,
        phrases=config.phrases,
        punctuation=config.punctuation,
        profanity_filter=config.profanity_filter,
        separate_channels=config.separate_channels,
        beam_size=config.beam_size,
        intervals=config.intervals,
        max_seconds=max_seconds,
    )


@contextlib.asynccontextmanager
async def uri_audio(uri: str, config: GoogleConfig, fetch: FetchConfig) -> AsyncIterator[AudioInput]:
    """The audio behind a URI, checked against the config as inline content is."""
    async with fetched(uri, fetch) as audio:
        yield await _checked(config, audio)


async def _checked(config: GoogleConfig, audio: AudioInput) -> AudioInput:
    """`audio` with the format its header and the config give (the same rules as inline content)."""
    if audio.data is not None:
        return replace(audio, raw=audio_format(config, audio.data[:4096]))
    assert audio.path is not None
    head = await asyncio.to_thread(_head, audio.path)
    return replace(audio, raw=audio_format(config, head))


def _head(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read(4096)


async def recognize(request: Request, prefix: str) -> Response:
    body = await _body(request)
    config = _config(request, body, prefix)
    content, uri = _audio_spec(body)
    settings = settings_of(request)
    service = service_of(request)
    limit = min(settings.google_sync_max_seconds, settings.max_audio_seconds)
    try:
        if content is not None:
            data = await decode_base64(content, "audio.content")
            audio = AudioInput(data=data, raw=audio_format(config, data[:4096]))
            transcript = await until_disconnect(request, service.transcribe(core_request(config, audio, limit)))
        else:
            async with uri_audio(str(uri), config, fetch_of(request)) as audio:
                transcript = await until_disconnect(request, service.transcribe(core_request(config, audio, limit)))
    except AudioTooLong:
        raise AudioTooLong(
            f"Sync input too long. For audio longer than {limit:g} s use LongRunningRecognize."
        ) from None
    return await json_off_loop(lambda: recognize_response(transcript, config, new_request_id()))


async def long_running(request: Request, prefix: str) -> Response:
    body = await _body(request)
    config = _config(request, body, prefix)
    if body.get("outputConfig"):
        raise InvalidArgument(
            "Invalid recognition 'outputConfig': writing results to GCS is not supported; poll the operation.",
            param="outputConfig",
        )
    content, uri = _audio_spec(body)
    jobs = jobs_of(request)
    data = await decode_base64(content, "audio.content") if content is not None else None
    if data is not None:
        audio_format(config, data[:4096])  # a config the header contradicts is refused now, not when run
    record = await jobs.submit(
        new_request_id(),
        "google",
        core_request(config, None),
        {"version": PREFIXES[prefix], "config": config.to_meta(), "request_id": new_request_id()},
        audio=data,
        uri=None if uri is None else str(uri),
        uri_param="audio.uri",
    )
    return await json_off_loop(lambda: operation(record))


async def get_operation(request: Request, name: str) -> Response:
    name = name.rstrip("/")
    record = await jobs_of(request).get(name, "google")
    if record is None:
        raise NotFound(f"Operation {name} not found.", param="name")
    return await json_off_loop(lambda: operation(record))


async def list_operations(request: Request) -> Response:
    size_text = request.query_params.get("pageSize") or "50"
    if not size_text.isdigit() or not 0 < int(size_text) <= 1000:
        raise InvalidArgument("pageSize must be between 1 and 1000", param="pageSize")
    given = request.query_params.get("pageToken") or None
    if given is not None and not (given.isdigit() and len(given) <= 12):
        raise InvalidArgument("Invalid pageToken: pass the nextPageToken of the previous page", param="pageToken")
    records, token = await jobs_of(request).page("google", int(size_text), given)

    def body() -> dict[str, Any]:  # up to 1000 full transcripts: rendered off the loop
        listing: dict[str, Any] = {"operations": [operation(r) for r in records]}
        return listing | ({"nextPageToken": token} if token else {})

    return await json_off_loop(body)


def job_loader(fetch: FetchConfig) -> AudioLoader:
    """A Google job's audio: the stored content, or the URI fetched now and checked like content."""

    async def check(record: JobRecord, audio: AudioInput) -> AudioInput:
        return await _checked(GoogleConfig.from_meta(record.meta["config"]), audio)

    return job_audio_loader(fetch, check)


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
