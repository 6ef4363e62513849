"""Segments as SubRip and WebVTT cues (times to the millisecond)."""

from __future__ import annotations

from collections.abc import Iterable

from app.core.types import Segment


def clock(seconds: float, separator: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def srt(segments: Iterable[Segment]) -> str:
    return "".join(
        f"{i}\n{clock(s.start, ',')} --> {clock(s.end, ',')}\n{s.text}\n\n" for i, s in enumerate(segments, start=1)
    )


def vtt(segments: Iterable[Segment]) -> str:
    return "WEBVTT\n\n" + "".join(f"{clock(s.start, '.')} --> {clock(s.end, '.')}\n{s.text}\n\n" for s in segments)
