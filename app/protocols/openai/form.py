"""The multipart form of CreateTranscriptionRequest / CreateTranslationRequest, with its quirks.

The SDK sends arrays as repeated `name[]` parts and booleans as "true"/"false"; curl users also send
`timestamp_granularities=word` without brackets. Both spellings are accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field
from starlette.datastructures import FormData, UploadFile

from app.core import languages
from app.core.errors import InvalidArgument
from app.core.types import Task

RESPONSE_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
GRANULARITIES = ("word", "segment")


class TranscriptionForm(BaseModel):
    """The form's fields for the API reference; `parse` below reads them (with the SDK's quirks)."""

    file: bytes = Field(description="The audio file: any format FFmpeg reads (WAV, MP3, FLAC, Ogg, WebM, M4A...).")
    model: str = Field(description="whisper-1 (the default model) or a local model's name.")
    language: str | None = Field(default=None, description="ISO-639-1 code; unset: detected (transcriptions only).")
    prompt: str | None = Field(default=None, description="Text to continue from (names, spelling).")
    response_format: Literal["json", "text", "srt", "verbose_json", "vtt"] = "json"
    temperature: float = Field(default=0.0, ge=0.0, le=1.0)
    timestamp_granularities: list[Literal["word", "segment"]] = Field(
        default=["segment"], alias="timestamp_granularities[]", description="word needs verbose_json."
    )
    stream: bool = Field(default=False, description="Server-sent events: transcript.text.delta, then done.")


@dataclass(frozen=True)
class AudioParams:
    upload: UploadFile
    model: str
    task: Task
    language: str | None
    prompt: str | None
    response_format: str
    temperature: float
    granularities: tuple[str, ...]
    stream: bool


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidArgument(f"'{name}' must be a text field, not a file", param=name)
    return value.strip() or None


def _list(form: FormData, name: str) -> list[str]:
    values = form.getlist(f"{name}[]") + form.getlist(name)
    out: list[str] = []
    for value in values:
        if not isinstance(value, str):
            raise InvalidArgument(f"'{name}' must be text", param=name)
        out += [v.strip() for v in value.split(",") if v.strip()]
    return out


def _bool(form: FormData, name: str) -> bool:
    value = (_text(form, name) or "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise InvalidArgument(f"'{name}' must be true or false", param=name)
    return value in ("true", "1")


def parse(form: FormData, task: Task) -> AudioParams:
    upload = form.get("file")
    if upload is None:
        raise InvalidArgument("you must provide a 'file' (the audio to transcribe)", param="file")
    if not isinstance(upload, UploadFile):
        raise InvalidArgument("'file' must be an uploaded file, not a text field", param="file")
    model = _text(form, "model")
    if model is None:
        raise InvalidArgument("you must provide a 'model' (e.g. whisper-1)", param="model")
    response_format = _text(form, "response_format") or "json"
    if response_format not in RESPONSE_FORMATS:
        raise InvalidArgument(
            f"response_format must be one of {', '.join(RESPONSE_FORMATS)}; got {response_format!r}",
            param="response_format",
        )
    granularities = tuple(dict.fromkeys(_list(form, "timestamp_granularities")))
    for g in granularities:
        if g not in GRANULARITIES:
            raise InvalidArgument(
                f"timestamp_granularities may hold word and segment; got {g!r}", param="timestamp_granularities"
            )
    if granularities and granularities != ("segment",) and response_format != "verbose_json":
        raise InvalidArgument(
            "timestamp_granularities requires response_format=verbose_json", param="timestamp_granularities"
        )
    temperature_text = _text(form, "temperature") or "0"
    try:
        temperature = float(temperature_text)
    except ValueError:
        raise InvalidArgument(f"temperature must be a number; got {temperature_text!r}", param="temperature") from None
    if not 0.0 <= temperature <= 1.0:
        raise InvalidArgument("temperature must be between 0 and 1", param="temperature")
    language = None if task is Task.TRANSLATE else languages.normalize(_text(form, "language"))
    return AudioParams(
        upload=upload,
        model=model,
        task=task,
        language=language,
        prompt=_text(form, "prompt"),
        response_format=response_format,
        temperature=temperature,
        granularities=granularities,
        stream=_bool(form, "stream"),
    )
