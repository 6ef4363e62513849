"""Neutral request and result types shared by every protocol adapter and the decoder pool.

Plain frozen dataclasses: they are pickled to worker processes and never carry a wire format.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum, StrEnum


class Task(StrEnum):
    TRANSCRIBE = "transcribe"
    TRANSLATE = "translate"


class Lane(IntEnum):
    """Scheduling priority, highest first: live streams, synchronous requests, durable jobs."""

    LIVE = 0
    INTERACTIVE = 1
    BACKGROUND = 2


class RawEncoding(StrEnum):
    """Headerless sample formats a client may send with an explicit rate (Google, Yandex)."""

    LINEAR16 = "s16le"
    LINEAR24 = "s24le"
    LINEAR32 = "s32le"
    FLOAT32 = "f32le"
    MULAW = "mulaw"
    ALAW = "alaw"


@dataclass(frozen=True)
class RawFormat:
    encoding: RawEncoding
    sample_rate: int
    channels: int = 1


@dataclass(frozen=True)
class AudioInput:
    """Audio bytes in memory or a local file the worker reads; `raw` for headerless PCM."""

    data: bytes | None = None
    path: str | None = None
    raw: RawFormat | None = None

    def __post_init__(self) -> None:
        if (self.data is None) == (self.path is None):
            raise ValueError("AudioInput takes exactly one of data or path")


@dataclass(frozen=True)
class TranscriptionRequest:
    audio: AudioInput | None = None
    """None in a template: the options of a job before its audio is loaded, or of a stream's windows."""
    model: str = "default"
    language: str | None = None
    """ISO-639-1 code, or None to detect."""
    language_candidates: tuple[str, ...] = ()
    """When detecting, only these languages may be chosen (empty: any)."""
    task: Task = Task.TRANSCRIBE
    word_timestamps: bool = False
    word_confidence: bool = False
    alternatives: int = 1
    prompt: str | None = None
    phrases: tuple[str, ...] = ()
    punctuation: bool = True
    profanity_filter: bool = False
    separate_channels: bool = False
    beam_size: int | None = None
    temperature: float = 0.0
    encoder_padding_seconds: float | None = None
    """Padding the encoder sees after the audio (app/core/encoder_reuse.py); None: the server's."""
    bounded: bool = False
    """One pass at temperature 0 (no fallback) and a text no longer than the audio can hold, so a
    decode that loops costs a bounded time: a live partial (its final is decoded properly), or a
    live final's try with a prompt (decoded again without it if the try fails Whisper's gates)."""
    stop_near_end: bool = False
    """Decoding stops at the first segment that ends near the audio's end (a live final's last
    word): Whisper decodes the audio after the last word again, and on a final's trailing silence a
    prompted Whisper invented text there, two more windows (4.7 s for a 5.5 s final, not 1.2)."""
    max_seconds: float | None = None
    """A tighter duration cap than the server-wide one (e.g. a protocol's sync limit)."""
    intervals: tuple[tuple[float, float], ...] = ()
    """Client-given (start, end) seconds to transcribe instead of the whole audio."""


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    text: str
    probability: float


@dataclass(frozen=True)
class Alternative:
    text: str
    confidence: float


# Whisper's own quality gates (openai-whisper and faster-whisper defaults).
COMPRESSION_RATIO_THRESHOLD = 2.4
LOG_PROB_THRESHOLD = -1.0


@dataclass(frozen=True)
class Segment:
    """A stretch of text with its times; the scores are Whisper's (0 where an engine has none)."""

    start: float
    end: float
    text: str
    confidence: float
    """exp(mean token log-probability), 0..1."""
    words: tuple[Word, ...] = ()
    alternatives: tuple[Alternative, ...] = ()
    """N-best for this segment when asked for; the first one is `text`."""
    channel: int = 0
    tokens: tuple[int, ...] = ()
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0
    no_speech_prob: float = 0.0
    temperature: float = 0.0
    seek: int = 0

    @property
    def fails_quality_gates(self) -> bool:
        """Over Whisper's compression ratio or under its mean log-probability threshold: a decode
        at temperature 0 like this one is retried hotter."""
        return self.compression_ratio > COMPRESSION_RATIO_THRESHOLD or self.avg_logprob < LOG_PROB_THRESHOLD

    def placed(self, offset: float, channel: int, limit: float) -> Segment:
        """Moved to `offset` in the whole audio, with times clamped to the block end `limit`
        (Whisper's last timestamp can overshoot the audio)."""

        def at(t: float) -> float:
            return min(t + offset, limit)

        return replace(
            self,
            start=at(self.start),
            end=at(self.end),
            channel=channel,
            seek=self.seek + round(offset * 100),
            words=tuple(replace(w, start=at(w.start), end=at(w.end)) for w in self.words),
        )


@dataclass(frozen=True)
class Transcript:
    segments: tuple[Segment, ...]
    language: str
    language_probability: float
    duration: float
    channels: int = 1
    model: str = ""
    task: Task = Task.TRANSCRIBE
    processing_seconds: float = 0.0

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments if s.text).strip()

    @property
    def words(self) -> tuple[Word, ...]:
        return tuple(w for s in self.segments for w in s.words)

    def channel_segments(self, channel: int) -> tuple[Segment, ...]:
        return tuple(s for s in self.segments if s.channel == channel)


def joined_alternatives(segments: tuple[Segment, ...] | list[Segment], depth: int) -> list[Alternative]:
    """Up to `depth` alternatives of these segments taken as one utterance: the k-th joins each
    segment's k-th (its best if it has fewer); confidence is their mean."""
    spoken = [s for s in segments if s.text.strip()]
    most = min(depth, max((len(s.alternatives) for s in spoken), default=0) or 1)
    joined = []
    for k in range(most):
        picks = [s.alternatives[k] if k < len(s.alternatives) else Alternative(s.text, s.confidence) for s in spoken]
        text = " ".join(a.text.strip() for a in picks)
        joined.append(Alternative(text, sum(a.confidence for a in picks) / max(len(picks), 1)))
    return joined
