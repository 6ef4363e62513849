"""The Open API's recognize and punctuate without a transport: REST and gRPC both call these.

Requests arrive as the proto's messages (REST parses its JSON into them first); answers are plain
values the fronts encode. Validation runs in the seed's order and answers in its words."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, replace
from typing import Any

from app.core.errors import AudioTooLong, InvalidArgument, NotFound, PayloadTooLarge, SttError
from app.core.fetch import FetchConfig, UriRefused, fetched
from app.core.itn import numbers_as_digits
from app.core.punctuation_service import PunctuationService
from app.core.service import SpeechService
from app.core.subtitles import srt
from app.core.types import AudioInput, RawEncoding, RawFormat, Transcript, TranscriptionRequest
from app.core.wav import is_wav
from app.protocols.ekstep.messages import LANGUAGE_CODES
from app.settings import Settings
from app.state import ready_service

# The API's language codes -> Whisper's. Those missing are languages Whisper was not trained on.
WHISPER_LANGUAGE = {
    **{code: code for code in ("hi", "en", "mr", "ta", "te", "kn", "gu", "pa", "bn", "ml", "as", "ne", "sd")},
    **{code: code for code in ("si", "ur", "sa")},
    "en_bio": "en",
    "hi_en": "hi",
}
TEXT_FORMATS = ("transcript", "srt")
AUDIO_FORMATS = ("wav", "mp3", "flac")
POST_PROCESSORS = {"itn": "itn", "numbers_only": "itn", "punctuations": "punctuation"}  # AI4Bharat's
SILENT_CUE = "[ Voice is not clearly audible ]"
NO_SOURCE = "empty audio source is not implemented yet, send valid attributes only for audioUri or audioContent"
BAD_URL = "Audio file url is incorrect or can't be accessed"


@dataclass(frozen=True)
class RecognizeConfig:
    code: str
    """The API's language code (what answers name)."""
    language: str
    """Whisper's."""
    srt: bool
    audio_format: str
    punctuation: bool
    itn: bool
    profanity_filter: bool
    raw: RawFormat
    """How headerless audioContent is read: s16le at samplingRate (16 kHz unless given), channels."""


def recogniser_language(code: str, multilingual: bool) -> str:
    """Whisper's code for an API language code, or the seed's refusal."""
    whisper = WHISPER_LANGUAGE.get(code)
    if whisper is None or (whisper != "en" and not multilingual):
        raise InvalidArgument(f"Language {code} not implemented yet", param="language")
    return whisper


def known_language(code: str) -> str:
    if code not in LANGUAGE_CODES:
        raise NotFound(f"Not Found: {code!r} is not a language code of this API", param="language")
    return code


def enum_name(message: Any, field: str) -> str:
    value: str = message.DESCRIPTOR.fields_by_name[field].enum_type.values_by_number[getattr(message, field)].name
    return value


def parse_config(message: Any, post_processors: list[str], multilingual: bool) -> RecognizeConfig:
    """A SpeechRecognitionRequest's config, checked in the seed's order (language first)."""
    config = message.config
    code = enum_name(config.language, "sourceLanguage")
    language = recogniser_language(code, multilingual)
    if enum_name(config.transcriptionFormat, "value") not in TEXT_FORMATS:
        raise InvalidArgument("Transcription Format not implemented yet", param="transcriptionFormat")
    audio_format = enum_name(config, "audioFormat")
    if audio_format not in AUDIO_FORMATS:
        raise InvalidArgument("Audio Format not implemented yet", param="audioFormat")
    unknown = [p for p in post_processors if p not in POST_PROCESSORS]
    if unknown:
        raise InvalidArgument(
            f"postProcessors: {unknown[0]!r} is not one of {', '.join(POST_PROCESSORS)}", param="postProcessors"
        )
    chosen = {POST_PROCESSORS[p] for p in post_processors}
    rate = config.samplingRate or 16000
    if not 8000 <= rate <= 48000:
        raise InvalidArgument(f"samplingRate {rate}: use 8000 to 48000", param="samplingRate")
    return RecognizeConfig(
        code=code,
        language=language,
        srt=enum_name(config.transcriptionFormat, "value") == "srt",
        audio_format=audio_format,
        punctuation=config.punctuation or "punctuation" in chosen,
        itn=config.enableInverseTextNormalization or "itn" in chosen,
        profanity_filter=config.profanityFilter,
        raw=RawFormat(RawEncoding.LINEAR16, rate, 2 if config.channel == 1 else 1),
    )


def sniff(head: bytes) -> str | None:
    """The container the first bytes announce (None: no header, taken as raw PCM)."""
    if is_wav(head):
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    if head[:4] == b"OggS":
        return "ogg"
    return None


class OpenSpeech:
    def __init__(self, state: Any) -> None:
        self.state = state

    @property
    def settings(self) -> Settings:
        settings: Settings = self.state.settings
        return settings

    def multilingual(self) -> bool:
        service = ready_service(self.state)
        return service.registry.resolve("default").multilingual

    async def recognize(self, message: Any, post_processors: list[str]) -> list[str]:
        """One text per audio item, in order (the items decode in parallel)."""
        config = parse_config(message, post_processors, self.multilingual())
        items = list(message.audio)
        if not items:
            raise InvalidArgument("Audio input not specified", param="audio")
        if any(not (item.HasField("audioUri") or item.HasField("audioContent")) for item in items):
            raise InvalidArgument(NO_SOURCE, param="audio")
        if len(items) > self.settings.openspeech_max_audio_items:
            raise InvalidArgument(
                f"At most {self.settings.openspeech_max_audio_items} audio items per request", param="audio"
            )
        service = ready_service(self.state)
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._one(item, config, service)) for item in items]
        except BaseExceptionGroup as failed:
            raise first_error(failed) from None
        return [task.result() for task in tasks]

    async def punctuate(self, text: str, language: str, itn: bool) -> str:
        """Marks and casing restored where a model exists for `language` (else the text as given),
        then numbers as digits if `itn`; '', 'null' and 'Null' come back as they are (the seed's)."""
        if text in ("", "null", "Null"):
            return text
        punctuation: PunctuationService = self.state.punctuation
        return await punctuation.punctuate(text, language, itn=itn)

    async def _one(self, item: Any, config: RecognizeConfig, service: SpeechService) -> str:
        if item.HasField("audioContent"):
            data = item.audioContent
            if not data:
                raise InvalidArgument("Audio input size is 0.", param="audioContent")
            raw = None if sniff(data[:16]) else config.raw
            return await self._transcribe(AudioInput(data=data, raw=raw), config, service)
        fetch: FetchConfig = self.state.fetch
        limit = min(fetch.max_bytes, self.settings.openspeech_max_uri_bytes)
        try:
            async with fetched(item.audioUri, replace(fetch, max_bytes=limit)) as audio:
                await asyncio.to_thread(_check_file, audio, config.audio_format)
                return await self._transcribe(audio, config, service)
        except (PayloadTooLarge, NotFound, InvalidArgument) as exc:
            if exc.param != "uri" or isinstance(exc, UriRefused):  # not the download's, or our own refusal
                raise
            if isinstance(exc, PayloadTooLarge):
                raise InvalidArgument(f"Audio input size exceeds limit of {limit} bytes.", param="audioUri") from None
            raise InvalidArgument(BAD_URL, param="audioUri") from None

    async def _transcribe(self, audio: AudioInput, config: RecognizeConfig, service: SpeechService) -> str:
        limit = self.settings.openspeech_max_audio_seconds
        request = TranscriptionRequest(
            audio=audio,
            language=config.language,
            punctuation=config.punctuation,
            profanity_filter=config.profanity_filter,
            max_seconds=limit,
        )
        try:
            transcript = await service.transcribe(request)
        except AudioTooLong:
            raise AudioTooLong(f"Audio input is longer than the limit of {limit:g} seconds.", param="audio") from None
        return render(transcript, config)


def render(transcript: Transcript, config: RecognizeConfig) -> str:
    def written(text: str) -> str:
        return numbers_as_digits(text, config.language) if config.itn else text

    if not config.srt:
        return written(transcript.text)
    cues = [replace(s, text=written(s.text.strip()) or SILENT_CUE) for s in transcript.segments]
    return srt(cues)


def _check_file(audio: AudioInput, declared: str) -> None:
    """The fetched file against the declared audioFormat, by its bytes (servers label audio as
    they please: application/octet-stream is common), in the seed's words."""
    assert audio.path is not None
    with open(audio.path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(16)
    if size == 0:
        raise InvalidArgument("Audio input size is 0.", param="audioUri")
    kind = sniff(head)
    if kind not in AUDIO_FORMATS:
        raise InvalidArgument("Invalid audio input format. Only supported formats are allowed.", param="audioUri")
    if kind != declared:
        raise InvalidArgument(
            "Mismatch between audio format specified and audio format of file given.", param="audioUri"
        )


def first_error(failed: BaseExceptionGroup[Any]) -> BaseException:
    """The error to answer with: an API error before anything else (a sibling's cancellation)."""
    leaves: list[BaseException] = []

    def walk(group: BaseExceptionGroup[Any]) -> None:
        for exc in group.exceptions:
            walk(exc) if isinstance(exc, BaseExceptionGroup) else leaves.append(exc)

    walk(failed)
    return next((e for e in leaves if isinstance(e, SttError)), leaves[0])
