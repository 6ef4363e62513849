"""What a live final keeps of its decode: the words after its lead audio, and no looped repeat."""

from __future__ import annotations

from dataclasses import replace

from app.core.types import Segment, Transcript


def words_after(transcript: Transcript, boundary: float, *, by_end: bool, keep_words: bool) -> Transcript:
    """Only the words after `boundary` (stream seconds): ending after it (`by_end`), or centred
    after it. The lead audio's words are dropped."""
    segments: list[Segment] = []
    for segment in transcript.segments:
        words = tuple(w for w in segment.words if (w.end if by_end else (w.start + w.end) / 2) > boundary)
        if not words:
            continue
        # Whisper's words carry their leading space, unless punctuation stripping took it.
        text = "".join(w.text if w.text[:1].isspace() else " " + w.text for w in words).strip()
        segments.append(
            replace(
                segment,
                start=max(words[0].start, boundary),
                text=text,
                words=words if keep_words else (),
                alternatives=(),
                tokens=(),
            )
        )
    return replace(transcript, segments=tuple(segments))


def without_repeats(transcript: Transcript) -> Transcript:
    """A segment that says again what the one before it said is Whisper looping on a short
    utterance (heard in a live final, never in the same audio decoded whole): it is dropped."""
    kept: list[Segment] = []
    for segment in transcript.segments:
        if kept and _words(segment.text) and _words(segment.text) == _words(kept[-1].text):
            continue
        kept.append(segment)
    return transcript if len(kept) == len(transcript.segments) else replace(transcript, segments=tuple(kept))


def _words(text: str) -> list[str]:
    return "".join(c for c in text.lower() if c.isalnum() or c.isspace()).split()
