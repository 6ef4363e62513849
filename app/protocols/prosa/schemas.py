"""Prosa's job request as pydantic models: wrong types are a 422 naming the field, never a 500, and
booleans and numbers are strict (a string "false" is refused, not read as true)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator


class JobConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str | None = None
    engine: str | None = None
    """Older clients name the model `engine`."""
    wait: StrictBool = False
    auto_punctuation: StrictBool = False
    speaker_count: StrictInt = Field(default=1, ge=1)
    enable_speech_insights: StrictBool = False
    enable_voice_insights: StrictBool = False
    enable_conversation_analytics: StrictBool = False
    include_partial_results: StrictBool = False

    @property
    def model_name(self) -> str | None:
        return self.model or self.engine


class AudioRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    data: str | None = None
    uri: str | None = None
    label: str | None = None
    duration: float | None = None
    mime_type: str | None = None
    sample_rate: StrictInt | None = None
    channels: StrictInt | None = None

    @model_validator(mode="before")
    @classmethod
    def _audio_alias(cls, value: Any) -> Any:
        # `audio` is an older name of `data`.
        if isinstance(value, dict) and "data" not in value and "audio" in value:
            value = {**value, "data": value["audio"]}
        return value


class SubmitJob(BaseModel):
    config: JobConfig
    request: AudioRequest
