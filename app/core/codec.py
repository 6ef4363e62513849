"""Neutral requests and transcripts <-> plain JSON-able dicts, for the durable job store.

Loaders are tolerant: a record written by another release (a rolling deploy, a rollback) keeps
loading when a field was added (it takes its default) or removed (the stored value is dropped).
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from app.core.types import (
    Alternative,
    AudioInput,
    RawEncoding,
    RawFormat,
    Segment,
    Task,
    Transcript,
    TranscriptionRequest,
    Word,
)

T = TypeVar("T")


def known(cls: type[T], data: dict[str, Any]) -> dict[str, Any]:
    """The stored fields this release's `cls` has; a field missing here takes its default."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return {key: value for key, value in data.items() if key in names}


def request_to_dict(request: TranscriptionRequest) -> dict[str, Any]:
    """Everything but the audio bytes (stored beside it); `raw` keeps a headerless format if the
    request carries one (a protocol may instead work it out when the job runs)."""
    data = dataclasses.asdict(request)
    audio = data.pop("audio")
    data["raw"] = audio["raw"] if audio else None
    return data


def request_from_dict(data: dict[str, Any], audio: AudioInput) -> TranscriptionRequest:
    raw = data.get("raw")
    fields = known(TranscriptionRequest, data)
    fields.pop("audio", None)
    if raw is not None and audio.raw is None:
        audio = dataclasses.replace(
            audio, raw=RawFormat(RawEncoding(raw["encoding"]), raw["sample_rate"], raw["channels"])
        )
    fields["task"] = Task(fields.get("task", Task.TRANSCRIBE))
    for name in ("language_candidates", "phrases"):
        fields[name] = tuple(fields.get(name) or ())
    fields["intervals"] = tuple(tuple(pair) for pair in fields.get("intervals") or ())
    return TranscriptionRequest(audio=audio, **fields)


def transcript_to_dict(transcript: Transcript) -> dict[str, Any]:
    return dataclasses.asdict(transcript)


def transcript_from_dict(data: dict[str, Any]) -> Transcript:
    segments = tuple(
        Segment(
            **{
                **known(Segment, s),
                "words": tuple(Word(**known(Word, w)) for w in s.get("words", ())),
                "alternatives": tuple(Alternative(**known(Alternative, a)) for a in s.get("alternatives", ())),
                "tokens": tuple(s.get("tokens", ())),
            }
        )
        for s in data["segments"]
    )
    task = Task(data.get("task", Task.TRANSCRIBE))
    return Transcript(**{**known(Transcript, data), "segments": segments, "task": task})
