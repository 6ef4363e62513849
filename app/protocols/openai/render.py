"""Transcript -> OpenAI response bodies: json, text, srt, vtt, verbose_json and SSE events."""

from __future__ import annotations

import math
from typing import Any

from app.core.languages import english_name
from app.core.subtitles import srt, vtt
from app.core.types import Segment, Task, Transcript


def usage(transcript: Transcript) -> dict[str, Any]:
    return {"type": "duration", "seconds": math.ceil(transcript.duration)}


def as_json(transcript: Transcript) -> dict[str, Any]:
    return {"text": transcript.text, "usage": usage(transcript)}


def as_text(transcript: Transcript) -> str:
    return transcript.text + "\n"


def _cues(transcript: Transcript) -> list[Segment]:
    return [s for s in transcript.segments if s.text]


def as_srt(transcript: Transcript) -> str:
    return srt(_cues(transcript))


def as_vtt(transcript: Transcript) -> str:
    return vtt(_cues(transcript))


def as_verbose_json(transcript: Transcript, granularities: tuple[str, ...]) -> dict[str, Any]:
    translating = transcript.task is Task.TRANSLATE
    body: dict[str, Any] = {
        "task": transcript.task.value,
        "language": "english" if translating else english_name(transcript.language),
        "duration": transcript.duration,
        "text": transcript.text,
    }
    if "segment" in granularities or "word" not in granularities:
        body["segments"] = [
            {
                "id": i,
                "seek": s.seek,
                "start": s.start,
                "end": s.end,
                "text": " " + s.text,
                "tokens": list(s.tokens),
                "temperature": s.temperature,
                "avg_logprob": s.avg_logprob,
                "compression_ratio": s.compression_ratio,
                "no_speech_prob": s.no_speech_prob,
            }
            for i, s in enumerate(transcript.segments)
        ]
    if "word" in granularities:
        body["words"] = [{"word": w.text, "start": w.start, "end": w.end} for w in transcript.words]
    body["usage"] = usage(transcript)
    return body


def delta_event(segment: Segment, first: bool) -> dict[str, Any]:
    return {"type": "transcript.text.delta", "delta": segment.text if first else " " + segment.text}


def done_event(transcript: Transcript) -> dict[str, Any]:
    return {"type": "transcript.text.done", "text": transcript.text, "usage": usage(transcript)}
