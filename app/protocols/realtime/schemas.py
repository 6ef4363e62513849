"""Client events and session configs of the three realtime dialects, as pydantic models. Unknown
fields are allowed (clients send more than a transcription server uses); wrong types are an
error event naming the field, and the connection stays open."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class TurnDetectionWire(_Open):
    type: Literal["server_vad", "semantic_vad"] = "server_vad"
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    prefix_padding_ms: StrictInt = Field(default=300, ge=0, le=10_000)
    silence_duration_ms: StrictInt = Field(default=500, ge=100, le=10_000)
    eagerness: Literal["low", "medium", "high", "auto"] = "auto"
    """semantic_vad only: how soon a pause ends the turn (read as a silence duration here)."""


class TranscriptionWire(_Open):
    model: str | None = None
    language: str | None = None
    prompt: str | None = None


class GaFormat(_Open):
    type: Literal["audio/pcm", "audio/pcmu", "audio/pcma"] = "audio/pcm"
    rate: StrictInt | None = None


class GaInput(_Open):
    format: GaFormat | None = None
    transcription: TranscriptionWire | None = None
    turn_detection: TurnDetectionWire | None = None
    noise_reduction: Any = None


class GaAudio(_Open):
    input: GaInput | None = None


class GaSession(_Open):
    """session.update (GA): `type` must be transcription on this server."""

    type: Literal["transcription"] = "transcription"
    audio: GaAudio | None = None
    include: list[str] | None = None


class AudioParams(_Open):
    sample_rate_hz: StrictInt = 16000
    num_channels: StrictInt = Field(default=1, ge=1, le=1)


class RecognitionConfig(_Open):
    max_alternatives: StrictInt = Field(default=1, ge=1, le=30)
    enable_automatic_punctuation: StrictBool = False
    enable_word_time_offsets: StrictBool = False
    enable_profanity_filter: StrictBool = False
    enable_verbatim_transcripts: StrictBool = False


class BetaSession(_Open):
    """transcription_session.update: OpenAI beta, and NVIDIA NIM with its extra sections."""

    input_audio_format: Literal["pcm16", "g711_ulaw", "g711_alaw", "none"] | None = None
    input_audio_transcription: TranscriptionWire | None = None
    turn_detection: TurnDetectionWire | None = None
    input_audio_noise_reduction: Any = None
    include: list[str] | None = None
    input_audio_params: AudioParams | None = None
    recognition_config: RecognitionConfig | None = None


class ClientEvent(_Open):
    type: str
    event_id: str | None = None


class SessionUpdate(ClientEvent):
    session: GaSession


class TranscriptionSessionUpdate(ClientEvent):
    session: BetaSession


class Append(ClientEvent):
    audio: str


EVENTS: dict[str, type[ClientEvent]] = {
    "session.update": SessionUpdate,
    "transcription_session.update": TranscriptionSessionUpdate,
    "input_audio_buffer.append": Append,
    "input_audio_buffer.commit": ClientEvent,
    "input_audio_buffer.clear": ClientEvent,
    "input_audio_buffer.done": ClientEvent,
}
