"""POST /asr_xml: Yandex SpeechKit Cloud v1, recognising chunked uploads while they arrive."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, replace

from fastapi import APIRouter, Request, Response
from starlette.requests import ClientDisconnect

from app.core import languages
from app.core.errors import (
    Cancelled,
    InvalidArgument,
    MethodNotAllowed,
    Overloaded,
    SttError,
    Unavailable,
    UnsupportedMedia,
    kinds,
)
from app.core.live_audio import LiveFormat
from app.core.live_upload import UploadRecognizer
from app.core.types import AudioInput, RawEncoding, RawFormat, TranscriptionRequest
from app.protocols.bodies import audio_body
from app.protocols.yandex.render import document, error_document, variants
from app.state import service_of, settings_of
from app.web import error_route, limit_body, require_api_key, spooled, until_disconnect

XML = "text/xml; charset=utf-8"
UUID = re.compile(r"^[0-9a-fA-F]{32}$")
# kind -> HTTP status
STATUS = {
    "invalid_argument": 400, "unsupported_media": 400, "audio_too_long": 400, "payload_too_large": 413,
    "method_not_allowed": 405, "unauthenticated": 401, "not_found": 404, "rate_limited": 429, "overloaded": 503,
    "unavailable": 503, "deadline_exceeded": 504, "cancelled": 499, "internal": 500,
}  # fmt: skip


def render_error(error: SttError) -> Response:
    status = next((STATUS[k] for k in kinds(error) if k in STATUS), 500)
    if error.param == "content-type":
        status = 415
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, Overloaded | Unavailable) else {}
    if isinstance(error, MethodNotAllowed):
        headers["Allow"] = error.allow
    return Response(error_document(error), status_code=status, media_type=XML, headers=headers)


router = APIRouter(
    route_class=error_route(render_error),
    tags=["yandex"],
    dependencies=[require_api_key(lambda request: request.query_params.get("key"), always=True)],
)


@dataclass(frozen=True)
class Format:
    raw: RawFormat | None = None
    """Headerless samples (streamable)."""
    container: str | None = None
    """A container PyAV can read while it arrives (streamable)."""

    def live(self) -> LiveFormat | None:
        """How a live session reads it while it arrives; None: it is read whole (WAV, MP3)."""
        if self.container is not None:
            return LiveFormat(container=self.container)
        if self.raw is not None:
            return LiveFormat(self.raw.encoding, self.raw.sample_rate)
        return None


def parse_content_type(value: str | None) -> Format:
    if not value:
        raise UnsupportedMedia("Content-Type is required (e.g. audio/x-pcm;bit=16;rate=16000)", param="content-type")
    media, *rest = [part.strip().lower() for part in value.split(";")]
    params = dict(p.split("=", 1) for p in rest if "=" in p)
    if media in ("audio/x-wav", "audio/wav", "audio/wave", "audio/x-mpeg-3", "audio/mpeg", "audio/mp3"):
        return Format()
    if media in ("audio/ogg", "audio/webm") and params.get("codecs", "opus") == "opus":
        return Format(container=media.split("/")[1])
    if media == "audio/x-pcm" and params.get("bit", "16") == "16":
        rate = params.get("rate", "16000")
        if rate.isdigit() and 8000 <= int(rate) <= 48000:
            return Format(raw=RawFormat(RawEncoding.LINEAR16, int(rate)))
    if media == "audio/x-alaw" and params.get("bit", "13") == "13" and params.get("rate", "8000") == "8000":
        return Format(raw=RawFormat(RawEncoding.ALAW, 8000))
    if media == "audio/x-speex":
        raise UnsupportedMedia(
            "Speex audio cannot be decoded by this server; send Opus, PCM or WAV", param="content-type"
        )
    raise UnsupportedMedia(f"unsupported Content-Type {value!r}", param="content-type")


def _template(request: Request) -> TranscriptionRequest:
    settings = settings_of(request)
    query = request.query_params
    request_uuid = query.get("uuid", "")
    if not UUID.match(request_uuid):
        raise InvalidArgument("uuid must be 32 hexadecimal digits", param="uuid")
    topic = query.get("topic")
    if not topic:
        raise InvalidArgument("topic is required (e.g. queries, notes, numbers)", param="topic")
    lang = languages.normalize(query.get("lang") or settings.yandex_default_lang, param="lang")
    antimat = query.get("disableAntimat", "false").lower()
    if antimat not in ("true", "false"):
        raise InvalidArgument("disableAntimat must be true or false", param="disableAntimat")
    template = TranscriptionRequest(
        model=settings.yandex_topics.get(topic, topic),
        language=lang,
        profanity_filter=antimat == "false",
        alternatives=settings.yandex_variants,
    )
    try:
        return service_of(request).prepare(template)
    except SttError as exc:
        if exc.param == "model":
            raise InvalidArgument(f"unknown topic {topic!r}", param="topic") from None
        raise


@router.post(
    "/asr_xml",
    summary="Recognise an upload (chunked uploads are recognised while they arrive)",
    openapi_extra=audio_body(
        (
            "audio/x-pcm;bit=16;rate=16000",
            "audio/x-pcm;bit=16;rate=8000",
            "audio/x-alaw;bit=13;rate=8000",
            "audio/x-wav",
            "audio/ogg;codecs=opus",
            "audio/webm;codecs=opus",
            "audio/x-mpeg-3",
        ),
        "The audio; with Transfer-Encoding: chunked it is recognised while it arrives.",
    ),
)
async def asr_xml(request: Request) -> Response:
    template = _template(request)
    settings = settings_of(request)
    fmt = parse_content_type(request.headers.get("content-type"))
    chunked = "chunked" in request.headers.get("transfer-encoding", "").lower()
    limit = settings.yandex_max_stream_bytes if chunked else settings.yandex_max_unchunked_bytes
    body = limit_body(request, limit).stream()
    service = service_of(request)
    live = fmt.live()
    try:
        if chunked and live is not None:
            upload = UploadRecognizer(
                service,
                template,
                live,
                max_seconds=settings.max_audio_seconds,
                max_backlog_seconds=settings.live_max_backlog_seconds,
                wait_seconds=settings.interactive_deadline_seconds or float("inf"),
                silence_ms=settings.upload_silence_ms,
            )
            async with upload:
                async for chunk in body:
                    await upload.feed(chunk)
                transcript = await until_disconnect(request, upload.result())
        else:
            async with spooled(body, settings.tmp_dir) as path:
                audio = AudioInput(path=path, raw=fmt.raw)
                transcript = await until_disconnect(request, service.transcribe(replace(template, audio=audio)))
    except ClientDisconnect:
        raise Cancelled("the client disconnected during the upload") from None
    headers = {"X-YaRequestId": str(uuid.uuid4()), "X-YaUuid": request.query_params["uuid"]}
    return Response(document(variants(transcript, settings.yandex_variants)), media_type=XML, headers=headers)
