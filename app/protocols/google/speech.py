"""Google Speech v1 without a transport: the REST router and the gRPC servicer both call this.

Requests come as proto3 JSON (a dict with camelCase names, as REST sends it and as
`json_format.MessageToDict` makes it from a gRPC message), except that inline audio may already be
bytes (gRPC's). Answers are proto3 JSON dicts the caller encodes or parses into its messages.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import replace
from typing import Any

from app.core.errors import AudioTooLong, InvalidArgument, NotFound
from app.core.fetch import FetchConfig, fetched
from app.core.jobs import JobRecord
from app.core.jobservice import JobService
from app.core.runner import AudioLoader
from app.core.service import SpeechService
from app.core.types import AudioInput, Transcript, TranscriptionRequest
from app.protocols.google.config import GoogleConfig, audio_format, parse_config, primary_language
from app.protocols.google.render import new_request_id, operation, recognize_response
from app.protocols.shared import decode_base64, job_audio_loader
from app.settings import Settings
from app.state import ready_jobs, ready_service

GOOGLE_MAX_ALTERNATIVES = 30
Guard = Callable[[Coroutine[Any, Any, Transcript]], Awaitable[Transcript]]


async def _unguarded(work: Coroutine[Any, Any, Transcript]) -> Transcript:
    return await work


class GoogleSpeech:
    """One API version's methods over the app's state (`app.state`: settings, service, jobs).

    `bare`: Mod9's unversioned paths, whose n-best goes up to ASR_MAX_ALTERNATIVES, not Google's 30."""

    def __init__(self, state: Any, version: str, *, bare: bool = False) -> None:
        self.state = state
        self.version = version
        self.bare = bare

    @property
    def settings(self) -> Settings:
        settings: Settings = self.state.settings
        return settings

    @property
    def service(self) -> SpeechService:
        return ready_service(self.state)

    @property
    def jobs(self) -> JobService:
        return ready_jobs(self.state)

    def config(self, raw: Any, *, streaming: bool = False) -> GoogleConfig:
        ceiling = self.settings.max_alternatives if self.bare else GOOGLE_MAX_ALTERNATIVES
        return parse_config(raw, max_alternatives=ceiling, model_map=self.settings.google_models, streaming=streaming)

    async def recognize(self, body: dict[str, Any], guard: Guard = _unguarded) -> dict[str, Any]:
        """`guard` runs the decode (REST races it against the client's disconnect)."""
        config = self.config(body.get("config"))
        content, uri = audio_spec(body)
        service = self.service
        limit = min(self.settings.google_sync_max_seconds, self.settings.max_audio_seconds)
        try:
            if content is not None:
                data = await _content(content)
                audio = AudioInput(data=data, raw=audio_format(config, data[:4096]))
                transcript = await guard(service.transcribe(core_request(config, audio, limit)))
            else:
                async with uri_audio(str(uri), config, self.state.fetch) as audio:
                    transcript = await guard(service.transcribe(core_request(config, audio, limit)))
        except AudioTooLong:
            raise AudioTooLong(
                f"Sync input too long. For audio longer than {limit:g} s use LongRunningRecognize."
            ) from None
        return await asyncio.to_thread(recognize_response, transcript, config, new_request_id())

    async def long_running(self, body: dict[str, Any]) -> dict[str, Any]:
        config = self.config(body.get("config"))
        if body.get("outputConfig"):
            raise InvalidArgument(
                "Invalid recognition 'outputConfig': writing results to GCS is not supported; poll the operation.",
                param="outputConfig",
            )
        content, uri = audio_spec(body)
        jobs = self.jobs
        data = await _content(content) if content is not None else None
        if data is not None:
            audio_format(config, data[:4096])  # a config the header contradicts is refused now, not when run
        record = await jobs.submit(
            new_request_id(),
            "google",
            core_request(config, None),
            {"version": self.version, "config": config.to_meta(), "request_id": new_request_id()},
            audio=data,
            uri=None if uri is None else str(uri),
            uri_param="audio.uri",
        )
        return operation(record)

    async def get_operation(self, name: str) -> dict[str, Any]:
        record = await self._record(name)
        return await asyncio.to_thread(operation, record)

    async def cancel_operation(self, name: str) -> None:
        """Cancel an operation not yet done (a done one stays as it is, as Google's)."""
        await self._record(name)
        await self.jobs.cancel(name)

    async def list_operations(self, size: int, token: str | None) -> dict[str, Any]:
        if not 0 < size <= 1000:
            raise InvalidArgument("pageSize must be between 1 and 1000", param="pageSize")
        if token is not None and not (token.isdigit() and len(token) <= 12):
            raise InvalidArgument("Invalid pageToken: pass the nextPageToken of the previous page", param="pageToken")
        records, following = await self.jobs.page("google", size, token)

        def listing() -> dict[str, Any]:  # up to 1000 full transcripts: rendered off the loop
            body: dict[str, Any] = {"operations": [operation(r) for r in records]}
            return body | ({"nextPageToken": following} if following else {})

        return await asyncio.to_thread(listing)

    async def _record(self, name: str) -> JobRecord:
        name = name.rstrip("/")
        record = await self.jobs.get(name, "google")
        if record is None:
            raise NotFound(f"Operation {name} not found.", param="name")
        return record


def audio_spec(body: dict[str, Any]) -> tuple[str | bytes | None, str | None]:
    audio = body.get("audio")
    if not isinstance(audio, dict):
        raise InvalidArgument(
            "Invalid recognition 'audio': an object with 'content' or 'uri' is required.", param="audio"
        )
    content, uri = audio.get("content"), audio.get("uri")
    if (content is None) == (uri is None):
        raise InvalidArgument("RecognitionAudio not set: give exactly one of 'content' or 'uri'.", param="audio")
    return content, uri


async def _content(content: str | bytes) -> bytes:
    return content if isinstance(content, bytes) else await decode_base64(content, "audio.content")


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


def job_loader(fetch: FetchConfig) -> AudioLoader:
    """A Google job's audio: the stored content, or the URI fetched now and checked like content."""

    async def check(record: JobRecord, audio: AudioInput) -> AudioInput:
        return await _checked(GoogleConfig.from_meta(record.meta["config"]), audio)

    return job_audio_loader(fetch, check)
