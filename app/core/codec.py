"""Neutral requests and transcripts <-> plain JSON-able dicts, for the durable job store."""

from __future__ import annotations

import dataclasses
from typing import Any

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


def request_to_dict(request: TranscriptionRequest) -> dict[str, Any]:
    """Everything but the audio bytes (stored beside it); `raw` keeps the headerless format."""
    data = dataclasses.asdict(request)
    audio = data.pop("audio")
    data["raw"] = audio["raw"]
    return data


def request_from_dict(data: dict[str, Any], audio: AudioInput) -> TranscriptionRequest:
    fields = dict(data)
    raw = fields.pop("raw", None)
    if raw is not None and audio.raw is None:
        audio = dataclasses.replace(
            audio, raw=RawFormat(RawEncoding(raw["encoding"]), raw["sample_rate"], raw["channels"])
        )
    fields["task"] = Task(fields["task"])
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
                **s,
                "words": tuple(Word(**w) for w in s["words"]),
                "alternatives": tuple(Alternative(**a) for a in s["alternatives"]),
                "tokens": tuple(s["tokens"]),
            }
        )
        for s in data["segments"]
    )
    return Transcript(**{**data, "segments": segments, "task": Task(data["task"])})
