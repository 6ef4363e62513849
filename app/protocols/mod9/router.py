"""Mod9's WebSocket interface at /mod9 (Mod9's own server answers on any path; this one has its
own, beside the other dialects).

The first message is the request's options as JSON (`{"partial": true}`, `{"format": "raw", "rate":
8000, "encoding": "mu-law"}`, ...); then the audio as non-empty binary messages; an empty message
ends it. Each reply is one JSON object as the Mod9 engine writes them: `status` processing, then
results (`result_index`, `final`, `transcript` lower-case and unpunctuated, `transcript_formatted`,
`interval`, `words`, `alternatives`), then `{"status": "completed"}`, or `{"status": "failed",
"error": ...}`. Utterances end at the server VAD's pauses, partials come from the live lane.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import uuid
from typing import Any, Literal

from fastapi import APIRouter, Depends, WebSocket
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

from app.core.errors import InvalidArgument, SttError
from app.core.live import Done, Failed, Final, LiveSession, Partial, TurnDetection
from app.core.live_audio import LiveFormat
from app.core.types import RawEncoding, Transcript, TranscriptionRequest, joined_alternatives
from app.protocols.shared import parse_wire
from app.protocols.websocket import GONE, key_guard, session_slot
from app.state import live_config, settings_of

ENCODINGS = {"pcm_s16le": RawEncoding.LINEAR16, "mu-law": RawEncoding.MULAW, "a-law": RawEncoding.ALAW}


class Mod9Options(BaseModel):
    """The first message. Mod9 spells options with hyphens; underscores are read too."""

    model_config = ConfigDict(extra="allow")

    command: Literal["recognize"] = "recognize"
    format: Literal["wav", "raw"] = "wav"
    encoding: Literal["pcm_s16le", "mu-law", "a-law"] = "pcm_s16le"
    rate: StrictInt = 16000
    partial: StrictBool = False
    word_intervals: StrictBool = False
    word_confidence: StrictBool = False
    transcript_formatted: StrictBool = True
    transcript_alternatives: StrictInt = Field(default=0, ge=0, le=30)
    asr_model: str | None = None
    language: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _hyphens(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k).replace("-", "_"): v for k, v in value.items()}
        return value


def failed(error: SttError) -> dict[str, Any]:
    return {"status": "failed", "error": error.message}


router = APIRouter(tags=["mod9"], dependencies=[Depends(key_guard(failed))])


@router.websocket("/mod9")
async def mod9(websocket: WebSocket) -> None:
    settings = settings_of(websocket)
    async with session_slot(websocket, failed) as service:
        await websocket.accept()
        try:
            first = await asyncio.wait_for(websocket.receive(), settings.realtime_idle_seconds)
            if first["type"] == "websocket.disconnect":
                return
            options = _options(first.get("text") or (first.get("bytes") or b"").decode("utf-8", "replace"))
            template = service.prepare(
                TranscriptionRequest(
                    model=options.asr_model or "default",
                    language=options.language,
                    word_timestamps=options.word_intervals or options.word_confidence,
                    word_confidence=options.word_confidence,
                    alternatives=max(1, options.transcript_alternatives),
                )
            )
            audio_format = LiveFormat(ENCODINGS[options.encoding], options.rate, wav=options.format == "wav")
            config = live_config(settings)
            live = LiveSession(
                service, template, config, TurnDetection(), audio_format=audio_format, spare=lambda: service.pool.idle
            )
            async with live:
                hello = {"status": "processing", "uuid": str(uuid.uuid4()), "asr_model": template.model}
                await websocket.send_json(hello)
                reading = _read_audio(
                    websocket, live, settings.realtime_idle_seconds, settings.realtime_session_seconds
                )
                await _both(reading, _replies(websocket, live, options))
            await websocket.send_json({"status": "completed"})
            await websocket.close(1000)
        except SttError as exc:
            with contextlib.suppress(RuntimeError):  # the client may be gone already
                await websocket.send_json(failed(exc))
                await websocket.close(1000)
        except (_ClientLeft, *GONE):
            return


class _ClientLeft(Exception):
    pass


async def _both(*works: Any) -> None:
    """Run the reader and the replies together; the first to fail ends both (awaited)."""
    tasks = [asyncio.ensure_future(work) for work in works]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _options(text: str) -> Mod9Options:
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise InvalidArgument(
            f"[WebSocket] Could not parse options from first message (JSON decode error: {exc})."
        ) from None
    if not isinstance(raw, dict):
        raise InvalidArgument("[WebSocket] Could not parse options from first message (not a JSON object).")
    return parse_wire(Mod9Options, raw, message="[WebSocket] Invalid option '{}': {}".format)


async def _read_audio(websocket: WebSocket, live: LiveSession, idle: float, longest: float) -> None:
    ends = time.monotonic() + longest
    while True:
        timeout = min(idle, ends - time.monotonic())
        try:
            message = await asyncio.wait_for(websocket.receive(), timeout)
        except TimeoutError:
            raise InvalidArgument(f"no audio for {idle:g} s, or the session passed {longest:g} s") from None
        if message["type"] == "websocket.disconnect":
            raise _ClientLeft
        if message.get("text"):
            raise InvalidArgument("[WebSocket] audio must be sent as binary messages")
        data = message.get("bytes") or b""
        if not data:
            await live.finish()
            return
        await live.feed(data)


async def _replies(websocket: WebSocket, live: LiveSession, options: Mod9Options) -> None:
    index = 0
    while True:
        event = await live.events.get()
        if isinstance(event, Partial) and options.partial:
            await websocket.send_json(_result(index, False, event.text))
        elif isinstance(event, Final):
            await websocket.send_json(_final(index, event.transcript, options))
            index += 1
        elif isinstance(event, Failed):
            raise event.error
        elif isinstance(event, Done):
            return


def _plain(text: str) -> str:
    """Mod9's `transcript`: lower case, no punctuation (the formatted one keeps both)."""
    return " ".join(re.sub(r"[^\w\s'-]", " ", text.lower()).split())


def _result(index: int, final: bool, text: str) -> dict[str, Any]:
    return {"status": "processing", "result_index": index, "final": final, "transcript": _plain(text)}


def _final(index: int, transcript: Transcript, options: Mod9Options) -> dict[str, Any]:
    reply = _result(index, True, transcript.text)
    if options.transcript_formatted:
        reply["transcript_formatted"] = transcript.text
    if transcript.segments:
        reply["interval"] = [round(transcript.segments[0].start, 2), round(transcript.segments[-1].end, 2)]
    if options.word_intervals or options.word_confidence:
        words = []
        for word in transcript.words:
            entry: dict[str, Any] = {"word": _plain(word.text)}
            if options.word_intervals:
                entry["interval"] = [round(word.start, 2), round(word.end, 2)]
            if options.word_confidence:
                entry["confidence"] = round(word.probability, 4)
            words.append(entry)
        reply["words"] = words
    if options.transcript_alternatives:
        alternatives = joined_alternatives(transcript.segments, options.transcript_alternatives)
        reply["alternatives"] = [{"transcript": _plain(a.text)} for a in alternatives]
    return reply
