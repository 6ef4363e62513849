"""POST /v1/audio/transcriptions and /v1/audio/translations (OpenAI contract, multipart)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from sse_starlette.sse import EventSourceResponse
from starlette.datastructures import FormData

from app.core.errors import SttError
from app.core.service import SpeechService
from app.core.types import AudioInput, Segment, Task, Transcript, TranscriptionRequest
from app.protocols.bodies import form_body
from app.protocols.openai import render
from app.protocols.openai.errors import error_body, render_error
from app.protocols.openai.form import AudioParams, TranscriptionForm, parse
from app.state import service_of, settings_of
from app.web import bearer_token, error_route, limit_body, require_api_key, until_disconnect

router = APIRouter(route_class=error_route(render_error), tags=["openai"], dependencies=[require_api_key(bearer_token)])
TEXT = "text/plain; charset=utf-8"


@router.post(
    "/v1/audio/transcriptions",
    summary="Transcribe audio (OpenAI compatible)",
    openapi_extra=form_body(TranscriptionForm),
)
async def create_transcription(request: Request) -> Response:
    return await _handle(request, Task.TRANSCRIBE)


@router.post(
    "/v1/audio/translations",
    summary="Translate audio to English text (OpenAI compatible)",
    openapi_extra=form_body(TranscriptionForm),
)
async def create_translation(request: Request) -> Response:
    return await _handle(request, Task.TRANSLATE)


async def _handle(request: Request, task: Task) -> Response:
    form = await _read_form(request)
    try:
        params = parse(form, task)
        audio = await params.upload.read()
    finally:
        await form.close()
    core = TranscriptionRequest(
        audio=AudioInput(data=audio),
        model=params.model,
        language=params.language,
        task=task,
        word_timestamps="word" in params.granularities,
        prompt=params.prompt,
        temperature=params.temperature,
    )
    service = service_of(request)
    if params.stream:
        return _stream(service, core)
    transcript = await until_disconnect(request, service.transcribe(core))
    return _render(transcript, params)


async def _read_form(request: Request) -> FormData:
    settings = settings_of(request)
    limited = limit_body(request, settings.max_upload_bytes)
    return await limited.form(
        max_files=1, max_fields=settings.max_form_fields, max_part_size=settings.max_form_field_bytes
    )


def _render(transcript: Transcript, params: AudioParams) -> Response:
    match params.response_format:
        case "text":
            return PlainTextResponse(render.as_text(transcript), media_type=TEXT)
        case "srt":
            return PlainTextResponse(render.as_srt(transcript), media_type=TEXT)
        case "vtt":
            return PlainTextResponse(render.as_vtt(transcript), media_type=TEXT)
        case "verbose_json":
            return JSONResponse(render.as_verbose_json(transcript, params.granularities))
        case _:
            return JSONResponse(render.as_json(transcript))


def _stream(service: SpeechService, core: TranscriptionRequest) -> EventSourceResponse:
    """SSE: one delta per decoded segment, then transcript.text.done (admission happens first)."""
    queue: asyncio.Queue[Segment | None] = asyncio.Queue()
    job = service.submit(core, lambda segment, done, total: queue.put_nowait(segment))
    job.future.add_done_callback(lambda _: queue.put_nowait(None))

    async def events() -> AsyncIterator[dict[str, str]]:
        first = True
        try:
            while (segment := await queue.get()) is not None:
                if segment.text:
                    yield {"data": json.dumps(render.delta_event(segment, first))}
                    first = False
            try:
                transcript = job.future.result()
            except SttError as exc:
                yield {"data": json.dumps(error_body(exc)[1])}
                return
            yield {"data": json.dumps(render.done_event(transcript))}
            yield {"data": "[DONE]"}
        finally:
            if not job.future.done():
                service.cancel(job)

    return EventSourceResponse(events(), ping=15)
