"""A realtime connection's effective session config, in each dialect's words, and what it means
to the core (the live session's format, turns and request template)."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from app.core import languages
from app.core.errors import InvalidArgument
from app.core.live import TurnDetection
from app.core.live_audio import LiveFormat
from app.core.types import RawEncoding, TranscriptionRequest
from app.protocols.realtime.schemas import BetaSession, GaSession, RecognitionConfig, TurnDetectionWire

VENDOR_MODELS = frozenset(
    {"gpt-4o-transcribe", "gpt-4o-mini-transcribe", "gpt-4o-transcribe-latest", "whisper-1", "conformer", "parakeet"}
)
"""Model names official clients send by default: they mean this server's default model."""
NIM_SILENCE_MS = 800
SEMANTIC_SILENCE_MS = {"low": 1200, "medium": 800, "auto": 800, "high": 400}
GA_FORMATS = {"audio/pcm": RawEncoding.LINEAR16, "audio/pcmu": RawEncoding.MULAW, "audio/pcma": RawEncoding.ALAW}
BETA_FORMATS = {"pcm16": RawEncoding.LINEAR16, "g711_ulaw": RawEncoding.MULAW, "g711_alaw": RawEncoding.ALAW}
ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str) -> str:
    """OpenAI-style ids: prefix_ then 21 letters and digits."""
    return prefix + "_" + "".join(secrets.choice(ALPHABET) for _ in range(21))


class Dialect(StrEnum):
    GA = "ga"
    BETA = "beta"
    NIM = "nim"


@dataclass
class RealtimeConfig:
    dialect: Dialect
    id: str = field(default_factory=lambda: new_id("sess"))
    encoding: RawEncoding = RawEncoding.LINEAR16
    rate: int = 24000
    wav: bool = False
    """NIM's `input_audio_format: none`: the client sends a WAV file's bytes, header first."""
    turn: TurnDetectionWire | None = field(default_factory=TurnDetectionWire)
    model: str | None = None
    language: str | None = None
    prompt: str | None = None
    recognition: RecognitionConfig = field(default_factory=RecognitionConfig)
    include: list[str] = field(default_factory=list)
    noise_reduction: Any = None

    @classmethod
    def initial(cls, dialect: Dialect, model: str | None, language: str | None) -> RealtimeConfig:
        config = cls(dialect, model=model, language=language)
        if dialect is Dialect.NIM:
            config.rate = 16000  # NIM clients send 16 kHz unless they say otherwise
            # Riva's own end of utterance waits 800 ms; finals of longer stretches read better.
            config.turn = TurnDetectionWire(silence_duration_ms=NIM_SILENCE_MS)
        return config

    # -- updates from the client --------------------------------------------------------------------

    def apply_ga(self, session: GaSession) -> RealtimeConfig:
        new = replace(self, dialect=Dialect.GA)
        audio_input = session.audio.input if session.audio else None
        if audio_input is not None:
            if audio_input.format is not None:
                new.encoding = GA_FORMATS[audio_input.format.type]
                if new.encoding is RawEncoding.LINEAR16:
                    new.rate = audio_input.format.rate or 24000
                    if new.rate != 24000:
                        raise InvalidArgument(
                            f"Invalid 'session.audio.input.format.rate': audio/pcm is 24000 Hz, got {new.rate}",
                            param="session.audio.input.format.rate",
                        )
                else:
                    new.rate = 8000
            if "turn_detection" in audio_input.model_fields_set:
                new.turn = audio_input.turn_detection
            if audio_input.transcription is not None:
                new._transcription(audio_input.transcription.model_dump(exclude_unset=True))
            if "noise_reduction" in audio_input.model_fields_set:
                new.noise_reduction = audio_input.noise_reduction
        if session.include is not None:
            new.include = session.include
        return new

    def apply_beta(self, session: BetaSession) -> RealtimeConfig:
        nim = self.dialect is Dialect.NIM or session.input_audio_params or session.recognition_config
        new = replace(self, dialect=Dialect.NIM if nim else Dialect.BETA)
        if session.input_audio_format == "none":
            new.encoding, new.wav = RawEncoding.LINEAR16, True
        elif session.input_audio_format is not None:
            new.encoding, new.wav = BETA_FORMATS[session.input_audio_format], False
            new.rate = 8000 if new.encoding is not RawEncoding.LINEAR16 else new.rate
        if session.input_audio_params is not None:
            new.rate = session.input_audio_params.sample_rate_hz
        if "turn_detection" in session.model_fields_set:
            new.turn = session.turn_detection
        if session.input_audio_transcription is not None:
            new._transcription(session.input_audio_transcription.model_dump(exclude_unset=True))
        if session.recognition_config is not None:
            new.recognition = session.recognition_config
        if session.include is not None:
            new.include = session.include
        if "input_audio_noise_reduction" in session.model_fields_set:
            new.noise_reduction = session.input_audio_noise_reduction
        LiveFormat(new.encoding, new.rate)  # an unusable rate is refused now, not at the first audio
        return new

    def _transcription(self, given: dict[str, Any]) -> None:
        if "model" in given:
            self.model = given["model"] or None
        if "language" in given:
            self.language = given["language"] or None
        if "prompt" in given:
            self.prompt = given["prompt"] or None

    # -- what the core gets ---------------------------------------------------------------------------

    @property
    def audio_format(self) -> LiveFormat:
        return LiveFormat(self.encoding, self.rate, self.wav)

    @property
    def turn_detection(self) -> TurnDetection | None:
        if self.turn is None:
            return None
        silence = self.turn.silence_duration_ms
        if self.turn.type == "semantic_vad":
            silence = SEMANTIC_SILENCE_MS[self.turn.eagerness]
        return TurnDetection(self.turn.threshold, self.turn.prefix_padding_ms, silence)

    def template(self) -> TranscriptionRequest:
        model = self.model if self.model and self.model not in VENDOR_MODELS else "default"
        nim = self.dialect is Dialect.NIM
        return TranscriptionRequest(
            model=model,
            language=languages.normalize(self.language, param="session.input_audio_transcription.language"),
            prompt=self.prompt,
            word_timestamps=nim and self.recognition.enable_word_time_offsets,
            word_confidence=nim and self.recognition.enable_word_time_offsets,
            punctuation=self.recognition.enable_automatic_punctuation if nim else True,
            profanity_filter=nim and self.recognition.enable_profanity_filter,
            alternatives=self.recognition.max_alternatives if nim else 1,
        )

    # -- the session object each dialect shows --------------------------------------------------------

    def session_object(self) -> dict[str, Any]:
        turn = (
            None
            if self.turn is None
            else self.turn.model_dump(exclude={"eagerness"} if self.turn.type == "server_vad" else set())
        )
        transcription = {
            "model": self.model or "whisper-1",
            "language": self.language or "",
            "prompt": self.prompt or "",
        }
        if self.dialect is Dialect.GA:
            wire_format: dict[str, Any] = {"type": _name(GA_FORMATS, self.encoding)}
            if self.encoding is RawEncoding.LINEAR16:
                wire_format["rate"] = self.rate
            audio_input = {
                "format": wire_format,
                "transcription": transcription,
                "turn_detection": turn,
                "noise_reduction": self.noise_reduction,
            }
            return {
                "type": "transcription",
                "id": self.id,
                "object": "realtime.transcription_session",
                "audio": {"input": audio_input},
                "include": self.include,
            }
        body: dict[str, Any] = {
            "id": self.id,
            "object": "realtime.transcription_session",
            "modalities": ["text"],
            "input_audio_format": "none" if self.wav else _name(BETA_FORMATS, self.encoding),
            "input_audio_transcription": transcription,
            "turn_detection": turn,
            "input_audio_noise_reduction": self.noise_reduction,
            "include": self.include,
        }
        if self.dialect is Dialect.NIM:
            body["input_audio_params"] = {"sample_rate_hz": self.rate, "num_channels": 1}
            body["recognition_config"] = self.recognition.model_dump()
            body["client_secret"] = None
        return body


def _name(table: dict[str, RawEncoding], encoding: RawEncoding) -> str:
    return next(name for name, value in table.items() if value is encoding)
